"""`boardmcp`: the host-side command line for boardmcp boards, real or emulated.

Each verb is one `_Verb` (name, help, how to add its arguments, what it runs), so new verbs
(flash, deploy, provision, discover, bridge, bench, test) slot in by adding an entry to VERBS.
"""

from __future__ import annotations

import argparse
import dataclasses
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
        print(f"{name:10} {profile.chip:9} {profile.title}")
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


# -- bench ---------------------------------------------------------------------------------------


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--board", default=DEFAULT_BOARD, help=f"board profile name or path to one (default: {DEFAULT_BOARD})"
    )
    level = parser.add_mutually_exclusive_group()
    level.add_argument("--quick", action="store_const", dest="level", const="quick", help="fewer requests (minutes)")
    level.add_argument(
        "--smoke", action="store_const", dest="level", const="smoke", help="a few requests: shows the harness works"
    )
    parser.add_argument("--no-fastmcp", action="store_true", help="skip the FastMCP comparison")
    parser.add_argument(
        "--out", type=Path, help="the Markdown report (default: docs/BENCHMARKS.md; the chart goes beside it)"
    )
    parser.add_argument("--workdir", type=Path, help="where the boards' files live (default: build/bench)")
    parser.set_defaults(level="full")


def _bench(args: argparse.Namespace) -> int:
    from host_tools.bench.client import BenchClientError  # noqa: PLC0415  (matplotlib etc. only for bench)
    from host_tools.bench.run import BenchOptions, run_bench  # noqa: PLC0415

    options = BenchOptions(board=args.board, level=args.level, fastmcp=not args.no_fastmcp)
    command = "make bench" if args.level == "full" else f"boardmcp bench --{args.level}"
    options = dataclasses.replace(options, command=command)
    if args.out:
        options = dataclasses.replace(options, out_md=args.out, out_png=args.out.with_name(options.out_png.name))
    if args.workdir:
        options = dataclasses.replace(options, workdir=args.workdir)
    try:
        run_bench(options, _progress)
    except (BoardError, BenchClientError, OSError) as exc:
        _progress(f"bench failed: {exc}")
        return 1
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
        "bench",
        "measure the firmware on emulated boards beside FastMCP; write docs/BENCHMARKS.md",
        "Boot emulated boards and measure, over loopback, latency and throughput (keep-alive, a new\n"
        "connection per request, 8 concurrent clients) in both protocol eras, heap per request and at\n"
        "idle, the smallest working heap, deployed .mpy bytes, boot time and callgrind instructions per\n"
        "tools/call; the same requests against a FastMCP server. Needs valgrind for the instruction count.",
        _bench_arguments,
        _bench,
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
