"""`boardmcp`: the host-side command line for boardmcp boards, real or emulated.

Each verb is one `_Verb` (name, help, how to add its arguments, what it runs), so new verbs
(flash, deploy, provision, discover, bridge, bench, test) slot in by adding an entry to VERBS.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from host_tools.emulator.runner import BoardError, EmulatedBoard
from host_tools.profiles import ProfileError, list_profiles, load_profile, repo_root
from host_tools.stage import StageError

DEFAULT_BOARD = "esp32s3"


@dataclass(frozen=True)
class _Verb:
    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _progress(message: str) -> None:
    print(f"boardmcp: {message}", file=sys.stderr, flush=True)


# -- boards ------------------------------------------------------------------------------------


def _boards_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _boards(args: argparse.Namespace) -> int:
    for name in list_profiles():
        profile = load_profile(name)
        print(f"{name:12} {profile.chip:9} {profile.title}")
    return 0


# -- emulate -----------------------------------------------------------------------------------


def _emulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--board", default=DEFAULT_BOARD, help=f"board profile name or path to one (default: {DEFAULT_BOARD})"
    )
    parser.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--no-token", action="store_true", help="serve without a bearer token (no auth)")
    parser.add_argument("--workdir", type=Path, help="where the board's files live (default: build/<board>)")
    parser.add_argument(
        "--firmware", type=Path, metavar="DIR", help="stage firmware from DIR instead of the repo's firmware/"
    )


def _emulate(args: argparse.Namespace) -> int:
    profile = load_profile(args.board)
    workdir = args.workdir or repo_root() / "build" / profile.name
    board = EmulatedBoard(
        profile,
        workdir=workdir,
        port=args.port,
        token=None if args.no_token else "",
        firmware_dir=args.firmware,
        progress=_progress,
    )
    # Ctrl-C (or a TERM from a supervisor) ends the wait below; stop() then kills every child.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        board.start()
    except BoardError as exc:
        _progress(str(exc))
        return 1
    try:
        print(f"MCP endpoint:  {board.url}")
        print(f"Console (pty): {board.console}")
        print(f'               e.g. mpremote connect {board.console} exec "print(1)"')
        if board.token:
            print(f"Auth header:   Authorization: Bearer {board.token}")
        print("Press Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        _progress("stopping")
        board.stop()
    return 0


VERBS: tuple[_Verb, ...] = (
    _Verb(
        "emulate",
        "run a board profile on the emulated board (MicroPython unix VM + simulated hardware)",
        "Stage the firmware exactly as `deploy` lays it out on a chip, boot it on the MicroPython\n"
        "unix VM with simulated machine/network/esp32 modules, and serve MCP on 127.0.0.1.\n"
        "The console is a pty that behaves like the chip's serial port: mpremote, picocom work.",
        _emulate_arguments,
        _emulate,
    ),
    _Verb(
        "boards",
        "list the board profiles",
        "List the board profiles in boards/.",
        _boards_arguments,
        _boards,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The `boardmcp` argument parser with every verb as a subcommand."""
    parser = argparse.ArgumentParser(
        prog="boardmcp",
        description="Turn an ESP32 running MicroPython into an MCP server, and work with it from the host.",
        epilog="Run `boardmcp <command> --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for verb in VERBS:
        verb_parser = sub.add_parser(
            verb.name,
            help=verb.help,
            description=verb.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        verb.add_arguments(verb_parser)
        verb_parser.set_defaults(run=verb.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `boardmcp` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except (ProfileError, StageError) as exc:
        print(f"boardmcp: {exc}", file=sys.stderr)
        return 2
    return status
