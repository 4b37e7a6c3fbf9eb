"""`boardmcp`: the host-side command line for boardmcp boards, real or emulated.

Each verb is one `_Verb` (name, help, how to add its arguments, what it runs), so new verbs
(bridge, bench, test) slot in by adding an entry to VERBS. The verbs for real boards (flash,
deploy, provision, discover) are thin: the work is in host_tools/device/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from host_tools.bridge import HTTPLink, Link, SerialLink, WebSocketLink, run_bridge
from host_tools.device import DeviceError
from host_tools.device.deploy import deploy
from host_tools.device.discover import discover
from host_tools.device.firmware import cache_dir, fetch_image
from host_tools.device.flash import DEFAULT_BAUD, flash_image
from host_tools.device.ports import Boot, resolve_port, restart_and_watch, wait_for_repl
from host_tools.device.provision import Provisioned, boards_file, provision, save_board, saved_boards
from host_tools.emulator.runner import BoardError, EmulatedBoard
from host_tools.profiles import Profile, ProfileError, list_profiles, load_profile, repo_root
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
    parser.add_argument(
        "--announce", action="store_true", help="announce the board as _mcp._tcp over mDNS on loopback (discover)"
    )
    parser.add_argument("--workdir", type=Path, help="where the board's files live (default: build/<board>)")
    parser.add_argument(
        "--firmware", type=Path, metavar="DIR", help="stage firmware from DIR instead of the repo's firmware/"
    )
    _line_numbers_argument(parser)


def _line_numbers_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--line-numbers",
        action="store_true",
        help="compile with line numbers for tracebacks (mpy-cross -O0: ~5 KB more .mpy, ~2 KB more heap in use)",
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
        announce=args.announce,
        line_numbers=args.line_numbers,
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


# -- real boards: flash, deploy, provision, discover ---------------------------------------------

_PORT_HELP = "the board's serial port (/dev/ttyUSB0, /dev/ttyACM0, an emulated board's pty, or socket://host:port); "
_PORT_HELP += "default: the one ESP32 board found on USB"


def _board_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--board", default=DEFAULT_BOARD, help=f"board profile name or path to one (default: {DEFAULT_BOARD})"
    )
    parser.add_argument("--port", help=_PORT_HELP)
    parser.add_argument(
        "--boot-timeout", type=float, default=60, metavar="S", help="how long to wait for the board to serve (s)"
    )


def _wifi_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--ssid", required=required, help="the Wi-Fi network the board joins")
    parser.add_argument(
        "--password",
        help="its password (default: asked for without echo; empty for an open network); "
        "prefer the prompt: a command line is visible to other users and kept in shell history",
    )


def _password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return str(args.password)
    if not sys.stdin.isatty():
        raise DeviceError("no Wi-Fi password given and no terminal to ask for it", "pass --password")
    return getpass.getpass(f"Wi-Fi password for {args.ssid!r} (empty for an open network): ")


def _step(n: int, total: int, what: str) -> None:
    _progress(f"[{n}/{total}] {what}")


def _deploy_workdir(profile: Profile) -> Path:
    return repo_root() / "build" / profile.name / "deploy"


def _report(boot: Boot, port: str, provisioned: Provisioned | None, ssid: str | None) -> int:
    """Print where the board serves (and with which token), or how to finish its setup."""
    if boot.url is None:
        if ssid is not None:
            raise DeviceError(
                f"the board could not join {ssid!r} ({boot.wifi or 'no Wi-Fi line'}); it opened its setup page instead",
                f"check the network name and password and run `boardmcp provision --port {port} --ssid ...` again",
            )
        print("The board has no Wi-Fi network yet. Either:")
        print(f"  boardmcp provision --port {port} --ssid <network>      (over this cable), or")
        print(f"  {(boot.setup or '').removeprefix('setup: ')}  (from a phone or laptop)")
        return 0
    if provisioned is not None:
        save_board(provisioned.hostname, url=boot.url)
    print(f"MCP endpoint:  {boot.url}")
    if provisioned is not None:
        print(f"               http://{provisioned.hostname}.local/mcp (mDNS name)")
        print(f"Auth header:   Authorization: Bearer {provisioned.token}")
        print(f"               (kept in {boards_file()})")
    return 0


def _flash_arguments(parser: argparse.ArgumentParser) -> None:
    _board_arguments(parser)
    parser.add_argument(
        "--firmware", type=Path, metavar="PATH", help="flash this MicroPython image instead of the profile's"
    )
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD, help=f"esptool's speed (default: {DEFAULT_BAUD})")
    parser.add_argument(
        "--repl-timeout", type=float, default=30, metavar="S", help="how long to wait for MicroPython's REPL (s)"
    )
    _line_numbers_argument(parser)
    _wifi_arguments(parser, required=False)


def _flash(args: argparse.Namespace) -> int:
    profile = load_profile(args.board)
    password = _password(args) if args.ssid else ""
    total = 6
    _step(1, total, f"MicroPython image for {profile.title}")
    image = fetch_image(profile, _progress, local=args.firmware)
    port = resolve_port(args.port)
    _step(2, total, f"erase and write the image at 0x{profile.flash_offset:x}")
    flash_image(profile, port, image, _progress, baud=args.baud)
    _step(3, total, "wait for MicroPython to boot")
    wait_for_repl(port, args.repl_timeout, _progress)
    _step(4, total, "compile and copy the boardmcp firmware")
    deploy(profile, port, _progress, workdir=_deploy_workdir(profile), line_numbers=args.line_numbers)
    provisioned = None
    if args.ssid:
        _step(5, total, "provision Wi-Fi and a bearer token")
        provisioned = provision(profile, port, args.ssid, password, _progress)
    else:
        _step(5, total, "provision: skipped (no --ssid); the board will offer its setup page")
    _step(6, total, "restart and wait for the board to serve")
    return _report(restart_and_watch(port, args.boot_timeout, _progress), port, provisioned, args.ssid)


def _deploy_arguments(parser: argparse.ArgumentParser) -> None:
    _board_arguments(parser)
    parser.add_argument(
        "--firmware", type=Path, metavar="DIR", help="deploy firmware from DIR instead of the repo's firmware/"
    )
    _line_numbers_argument(parser)


def _deploy(args: argparse.Namespace) -> int:
    profile = load_profile(args.board)
    port = resolve_port(args.port)
    _step(1, 2, "compile and copy the boardmcp firmware")
    deploy(
        profile,
        port,
        _progress,
        workdir=_deploy_workdir(profile),
        firmware_dir=args.firmware,
        line_numbers=args.line_numbers,
    )
    _step(2, 2, "restart and wait for the board to serve")
    return _report(restart_and_watch(port, args.boot_timeout, _progress), port, None, None)


def _provision_arguments(parser: argparse.ArgumentParser) -> None:
    _board_arguments(parser)
    _wifi_arguments(parser, required=True)


def _provision(args: argparse.Namespace) -> int:
    profile = load_profile(args.board)
    password = _password(args)
    port = resolve_port(args.port)
    _step(1, 2, "write Wi-Fi credentials and a new bearer token")
    provisioned = provision(profile, port, args.ssid, password, _progress)
    _step(2, 2, "restart and wait for the board to serve")
    return _report(restart_and_watch(port, args.boot_timeout, _progress), port, provisioned, args.ssid)


def _discover_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=3.0, metavar="S", help="how long to listen (default: 3)")
    parser.add_argument(
        "--interface",
        action="append",
        metavar="ADDR",
        help="query only on the interface with this address (repeatable; 127.0.0.1 finds emulated boards)",
    )


def _discover(args: argparse.Namespace) -> int:
    _progress(f"looking for _mcp._tcp on the LAN for {args.timeout:g} s")
    found = discover(args.timeout, args.interface)
    if not found:
        _progress("no boards answered; is the board on this network and serving? (its console prints 'mcp: serving')")
        return 1
    saved = saved_boards()
    for board in found:
        token = "token saved" if saved.get(board.hostname, {}).get("token") else ""
        print(f"{board.hostname:16} {board.url:36} auth={board.auth:7} {token}".rstrip())
    return 0


# -- bridge ------------------------------------------------------------------------------------


def _bridge_arguments(parser: argparse.ArgumentParser) -> None:
    board = parser.add_mutually_exclusive_group(required=True)
    board.add_argument("--url", help="the board's Streamable HTTP endpoint, e.g. http://192.168.1.23/mcp")
    board.add_argument("--ws", metavar="URL", help="the board's WebSocket, e.g. ws://192.168.1.23/ws")
    board.add_argument("--serial", metavar="PORT", help="the board's serial console, e.g. /dev/ttyACM0")
    parser.add_argument(
        "--token",
        default=os.environ.get("BOARDMCP_TOKEN"),
        help="the board's bearer token for --url and --ws (default: $BOARDMCP_TOKEN)",
    )
    parser.add_argument("--baud", type=int, default=115200, help="serial speed (default: 115200)")


def _bridge(args: argparse.Namespace) -> int:
    link: Link
    if args.url:
        link = HTTPLink(args.url, args.token, _progress)
    elif args.ws:
        link = WebSocketLink(args.ws, args.token)
    else:
        link = SerialLink(args.serial, args.baud)
    return asyncio.run(run_bridge(link, _progress))


# -- gateway -----------------------------------------------------------------------------------


def _broker_address(value: str) -> tuple[str, int]:
    # Port 0: the protocol's (1883, or 8883 over TLS).
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "0")
    try:
        return host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not host[:port]: {value}") from None


def _gateway_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        required=True,
        type=_broker_address,
        metavar="HOST[:PORT]",
        help="the MQTT 5 broker (port 1883, 8883 with TLS)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve MCP on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default: 8080)")
    parser.add_argument(
        "--token",
        default=os.environ.get("BOARDMCP_GATEWAY_TOKEN"),
        help="bearer token MCP clients must send (default: $BOARDMCP_GATEWAY_TOKEN; none: no auth)",
    )
    parser.add_argument("--username", help="MQTT username")
    parser.add_argument(
        "--password", default=os.environ.get("BOARDMCP_MQTT_PASSWORD"), help="MQTT password ($BOARDMCP_MQTT_PASSWORD)"
    )
    parser.add_argument(
        "--tls", action="store_true", help="connect to the broker over TLS, verified with the system's CAs (port 8883)"
    )
    parser.add_argument(
        "--ca", type=Path, metavar="PEM", help="over TLS, verified with this CA instead (implies --tls)"
    )
    parser.add_argument("--cert", type=Path, metavar="PEM", help="over TLS, with this client certificate")
    parser.add_argument("--key", type=Path, metavar="PEM", help="the client certificate's key")
    parser.add_argument(
        "--servers", default="#", metavar="FILTER", help="server-name filter, e.g. 'boardmcp/#' (default: '#', all)"
    )
    parser.add_argument(
        "--expose",
        metavar="BOARD",
        help="also serve this board's tools, prompts and resources under their own names (one board, or "
        "clients that expect bare names); BOARD is its prefix, as the `boards` tool lists it",
    )


def _gateway(args: argparse.Namespace) -> int:
    import logging  # noqa: PLC0415
    import ssl  # noqa: PLC0415

    from host_tools.gateway.fleet import Fleet  # noqa: PLC0415  (aiomqtt, uvicorn only for the gateway)
    from host_tools.gateway.server import Gateway  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="boardmcp gateway: %(message)s", stream=sys.stderr)
    host, port = args.broker
    tls = None
    if args.tls or args.ca or args.cert:
        tls = ssl.create_default_context(cafile=args.ca)
        if args.cert:
            tls.load_cert_chain(args.cert, args.key)
        port = port or 8883
    fleet = Fleet(
        host, port or 1883, username=args.username, password=args.password, tls=tls, server_filter=args.servers
    )
    print(f"MCP endpoint:  http://{args.host}:{args.port}/mcp", flush=True)
    print(
        f"Broker:        {host}:{port or 1883}{' (TLS)' if tls else ''} (servers matching {args.servers!r})", flush=True
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Gateway(fleet, expose=args.expose).serve(args.host, args.port, args.token))
    return 0


# -- bench ---------------------------------------------------------------------------------------


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--board", help=f"board profile name or path to one (default: {DEFAULT_BOARD}; esp32 for --soak)"
    )
    level = parser.add_mutually_exclusive_group()
    level.add_argument(
        "--soak",
        action="store_const",
        dest="level",
        const="soak",
        help="instead: mixed requests over HTTP, WebSocket and serial, checking each and the heap (docs/SOAK.md)",
    )
    level.add_argument("--quick", action="store_const", dest="level", const="quick", help="fewer requests (minutes)")
    level.add_argument(
        "--smoke", action="store_const", dest="level", const="smoke", help="a few requests: shows the harness works"
    )
    parser.add_argument("--requests", type=int, default=20000, help="requests in a --soak (default: 20000)")
    parser.add_argument("--no-fastmcp", action="store_true", help="skip the FastMCP comparison")
    parser.add_argument(
        "--gateway",
        action="store_true",
        help="instead: MCP over MQTT and the fleet gateway (20 boards; needs mosquitto); writes docs/GATEWAY-BENCH.md",
    )
    parser.add_argument(
        "--out", type=Path, help="the Markdown report (default: docs/BENCHMARKS.md; the chart goes beside it)"
    )
    parser.add_argument("--workdir", type=Path, help="where the boards' files live (default: build/bench)")
    parser.set_defaults(level="full")


def _bench(args: argparse.Namespace) -> int:
    if args.gateway:
        from host_tools.bench.gateway import default_out, run_gateway_bench  # noqa: PLC0415

        workdir = args.workdir or repo_root() / "build" / "bench-gateway"
        run_gateway_bench(args.out or default_out(), workdir, args.level, _progress)
        return 0
    from host_tools.bench.client import BenchClientError  # noqa: PLC0415  (matplotlib etc. only for bench)

    if args.level == "soak":
        return _soak(args)
    from host_tools.bench.run import BenchOptions, run_bench  # noqa: PLC0415

    options = BenchOptions(board=args.board or DEFAULT_BOARD, level=args.level, fastmcp=not args.no_fastmcp)
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


def _soak(args: argparse.Namespace) -> int:
    from host_tools.bench.client import BenchClientError  # noqa: PLC0415
    from host_tools.bench.soak import SoakOptions, run_soak, with_requests  # noqa: PLC0415

    options = with_requests(SoakOptions(board=args.board or "esp32"), args.requests)
    if args.requests != 20000:
        options = dataclasses.replace(options, command=f"boardmcp bench --soak --requests {args.requests}")
    if args.out:
        options = dataclasses.replace(options, out_md=args.out)
    if args.workdir:
        options = dataclasses.replace(options, workdir=args.workdir)
    try:
        result = run_soak(options, _progress)
    except (BoardError, BenchClientError, OSError) as exc:
        _progress(f"soak failed: {exc}")
        return 1
    return 0 if result.passed else 1


# -- test ----------------------------------------------------------------------------------------


def _test_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", default="emulated", help="emulated (default), http://HOST[:PORT] or serial:/dev/tty..."
    )
    parser.add_argument("--board", help="the board's profile (default: every profile when emulated, else esp32s3)")
    parser.add_argument(
        "--token", default=os.environ.get("BOARDMCP_TOKEN"), help="the board's bearer token (default: $BOARDMCP_TOKEN)"
    )
    parser.add_argument(
        "--destructive",
        action="store_true",
        help="also run checks that drive a real board's outputs (loopback pairs, the LED); emulated boards always do",
    )
    parser.add_argument("--junit", type=Path, metavar="PATH", help="also write JUnit XML here")


def _test(args: argparse.Namespace) -> int:
    import subprocess  # noqa: PLC0415

    argv = [sys.executable, "-m", "pytest", str(repo_root() / "tests" / "conformance"), "-p", "no:cacheprovider"]
    argv += ["--conformance-report", "--tb=short", "--target", args.target]
    argv += ["--board", args.board] if args.board else []
    argv += [f"--token={args.token}"] if args.token else []
    argv += ["--destructive"] if args.destructive else []
    argv += ["--junitxml", str(args.junit)] if args.junit else []
    _progress(f"checking {args.target} (each dot is one check; the report follows)")
    return subprocess.call(argv, cwd=repo_root())


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
        "flash",
        "put MicroPython and boardmcp on a board: erase, write, deploy, provision",
        "Get the board profile's MicroPython image (downloaded once into "
        + str(cache_dir())
        + ",\nsha256-checked; or --firmware PATH), erase the chip and write the image at the chip's offset\n"
        "(esptool), wait for the REPL, compile the firmware with mpy-cross and copy it (mpremote),\n"
        "provision Wi-Fi and a bearer token (with --ssid; else the board opens its setup page),\n"
        "restart, and print the board's MCP URL.\n\n"
        "The chip must be in its bootloader: boards with auto-reset enter it by themselves; otherwise\n"
        "hold BOOT, press RESET, release BOOT.\n\n"
        "  boardmcp flash --board esp32s3 --port /dev/ttyACM0 --ssid home",
        _flash_arguments,
        _flash,
    ),
    _Verb(
        "deploy",
        "copy the boardmcp firmware to a board that runs MicroPython (no erase)",
        "Compile firmware/ with mpy-cross for the board's architecture and copy it with mpremote\n"
        "(unchanged files are skipped, removed modules deleted). The board's config.json (Wi-Fi,\n"
        "token) is kept, and read first: the MQTT transport goes only to a board whose config.json\n"
        'has an "mqtt" section (deploy again after adding one). Then restart the board and print\n'
        "its MCP URL.\n\n"
        "  boardmcp deploy --board esp32c3 --port /dev/ttyACM0",
        _deploy_arguments,
        _deploy,
    ),
    _Verb(
        "provision",
        "give a board its Wi-Fi network and a fresh bearer token, over serial",
        "Write the Wi-Fi credentials and a newly generated bearer token to the board's config.json\n"
        "over the serial port, restart it and print its MCP URL. The password is asked for without\n"
        "echo (or --password) and never printed or logged. The token is kept for MCP clients in\n"
        + str(boards_file())
        + " ($XDG_CONFIG_HOME/boardmcp/boards.json).\n\n"
        "  boardmcp provision --port /dev/ttyACM0 --ssid home",
        _provision_arguments,
        _provision,
    ),
    _Verb(
        "discover",
        "list the boards announcing MCP on the LAN (mDNS _mcp._tcp)",
        "Browse mDNS / DNS-SD for _mcp._tcp and list each board: hostname, MCP URL, whether it\n"
        "wants a bearer token, and whether this host has its token (from `boardmcp provision`).",
        _discover_arguments,
        _discover,
    ),
    _Verb(
        "bridge",
        "serve stdio MCP to a desktop client, forwarding to a board over HTTP, WebSocket or serial",
        "Present the board as a stdio MCP server (what Claude Desktop, Cursor and the SDKs launch),\n"
        "forwarding every message to the board and back. Logs go to stderr; stdout carries MCP only.",
        _bridge_arguments,
        _bridge,
    ),
    _Verb(
        "bench",
        "measure the firmware on emulated boards beside FastMCP; write docs/BENCHMARKS.md",
        "Boot emulated boards and measure, over loopback, latency and throughput (keep-alive, a new\n"
        "connection per request, 8 concurrent clients) in both protocol eras, heap per request and at\n"
        "idle, the smallest working heap, deployed .mpy bytes, boot time and callgrind instructions per\n"
        "tools/call (and where they go); the same requests against a FastMCP server, the two taking turns\n"
        "in every series. Needs valgrind for the instruction count.",
        _bench_arguments,
        _bench,
    ),
    _Verb(
        "test",
        "check a board (emulated, on the LAN, or on serial) against the MCP and hardware contracts",
        "Run the checks in tests/conformance against the target, over every transport it offers\n"
        "(HTTP and WebSocket for a URL, the console for serial:) in both protocol eras: the MCP\n"
        "contract (lifecycle, every advertised method, error codes, HTTP statuses, sessions,\n"
        "Origin/Host, token, size bounds) and the hardware contract of --board's profile (sensors\n"
        "within their datasheet ranges, ADC within range, forbidden pins refused; loopback pairs\n"
        "read back, which drives outputs: --destructive). The official MCP conformance suites run\n"
        "too when the target is on localhost without a token (else the report says why not).\n"
        "`emulated` starts a board of --board (default: one of every profile) and stops it.\n\n"
        "The report lists each check: PASS/FAIL/SKIP, the spec section or datasheet limit it checks,\n"
        "and on failure what to do. Exit status 0 when every check passed or was skipped.\n\n"
        "  boardmcp test                                              # emulated boards, every profile\n"
        "  boardmcp test --target http://192.168.1.23 --board esp32s3 --token s3cret --junit out.xml\n"
        "  boardmcp test --target serial:/dev/ttyACM0 --board esp32c3",
        _test_arguments,
        _test,
    ),
    _Verb(
        "gateway",
        "serve every board on an MQTT broker as one MCP endpoint (Streamable HTTP)",
        "Connect to an MQTT 5 broker as an MCP-over-MQTT client (EMQX's MCP over MQTT specification),\n"
        "find every MCP server by its retained presence, initialize with each, and serve them all as one\n"
        "Streamable HTTP MCP endpoint on /mcp:\n"
        "  <board>.<tool>         a board's tool (board: the last level of its server-name, e.g. boardmcp-1a2b)\n"
        "  <board>.<prompt>       a board's prompt\n"
        "  board://<board>/<uri>  a board's resource (or resource template) at its own <uri>\n"
        "  all.<tool>             that tool on every board at once, results by board\n"
        "  boards                 the boards present\n"
        "--expose BOARD serves one board's entries under their own names as well.\n"
        "Boards appear and vanish as their presence changes; clients are told (list_changed).\n"
        'A board serves MCP over MQTT when its config.json has "mqtt": {"broker": "host", ...}.\n\n'
        "  boardmcp gateway --broker 192.168.1.5 --port 8080",
        _gateway_arguments,
        _gateway,
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
    except DeviceError as exc:
        print(f"boardmcp: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("boardmcp: interrupted", file=sys.stderr)
        return 130
    return status
