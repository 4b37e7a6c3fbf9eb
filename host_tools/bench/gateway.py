"""`boardmcp bench --gateway`: MCP over MQTT and the fleet gateway, measured; writes
docs/GATEWAY-BENCH.md.

On one machine, through a private Mosquitto on loopback: how long the gateway takes to find 20
boards (booting after it, and already present when it starts), the latency of a tool call
through the gateway (official SDK client, Streamable HTTP) with 1 and with 20 boards present, of
a fan-out to 20 boards, of the same call straight to the board over MQTT and over HTTP; and
what MCP over MQTT costs a board in heap, per profile (importing the module, the `MQTT` object,
and whether HTTP sessions still get their `tools/list` while the gateway holds an MQTT session).
The file is wholly generated: what it says about the method is written here.

    run_gateway_bench(Path("docs/GATEWAY-BENCH.md"), Path("build/bench-gateway"), "quick", progress=print)
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mcp.client.client import Client

from host_tools.emulator.runner import SIM_HEAP_BYTES, WORD_HEAP_BYTES, EmulatedBoard
from host_tools.gateway.broker import Mosquitto
from host_tools.gateway.fleet import Fleet
from host_tools.gateway.process import GatewayProcess
from host_tools.profiles import load_profile, repo_root

BOARDS = 20
PROFILE = "esp32s3"
HEAP_PROFILES = ("esp32s3", "esp32c3")  # the roomiest and the tightest
SESSIONS = 100  # HTTP sessions per heap row
CALLS = {"full": 500, "quick": 200, "smoke": 20}  # timed calls per latency row, by `boardmcp bench` level
_HEAP_PROBE = """
import gc
import boardmcp.app, boardmcp.server, boardmcp.transport.http  # what a serving board holds
import boardmcp.transport.stream  # loaded anyway on boards that serve the console
gc.collect(); a = gc.mem_free()
from boardmcp.transport import mqtt
gc.collect(); b = gc.mem_free()
from boardmcp.registry import Registry
from boardmcp.server import Server
srv = Server(Registry(), "x")
gc.collect(); c = gc.mem_free()
m = mqtt.MQTT(srv, {"broker": "127.0.0.1"}, "boardmcp-0000")
gc.collect(); d = gc.mem_free()
print("HEAP", a - b, c - d)
"""


# Headings docs/BENCHMARKS.md finds its gateway figures under (report.py).
DISCOVERY_SECTION = "Discovery"
LATENCY_SECTION = "Latency of one `tools/call` (`system_info`), sequential"


def _board(broker: Mosquitto, workdir: Path, name: str, mqtt: bool = True, profile: str = PROFILE) -> EmulatedBoard:
    cfg = {"broker": "127.0.0.1", "port": broker.port, "server_id": f"id-{name}", "server_name": f"boardmcp/{name}"}
    return EmulatedBoard(load_profile(profile), workdir=workdir / name, token=None, mqtt=cfg if mqtt else None)


async def _timed(calls: int, fn: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(5):  # warm up
        await fn()
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _row(what: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=20)
    return f"| {what} | {len(ms)} | {statistics.median(ms):.2f} | {q[18]:.2f} |"


async def _until_listed(url: str, names: list[str], timeout: float = 120.0) -> float:
    # Seconds until the gateway lists every board's tools.
    t = time.perf_counter()
    async with Client(url, mode="legacy") as c, asyncio.timeout(timeout):
        while True:
            listed = {tool.name for tool in (await c.list_tools()).tools}
            if all(f"{n}.system_info" in listed for n in names):
                return time.perf_counter() - t
            await asyncio.sleep(0.05)


async def _gateway_calls(url: str, tool: str, calls: int) -> list[float]:
    async with Client(url, mode="legacy") as c:
        return await _timed(calls, lambda: c.call_tool(tool, {}))


async def _mqtt_calls(port: int, name: str, calls: int) -> list[float]:
    fleet = Fleet("127.0.0.1", port)
    task = asyncio.create_task(fleet.run())
    try:
        boards = await fleet.wait_for(lambda b: name in b, 60)
        board = boards[name]
        return await _timed(calls, lambda: board.request("tools/call", {"name": "system_info", "arguments": {}}))
    finally:
        await fleet.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _http_calls(board: EmulatedBoard, calls: int) -> list[float]:
    async with Client(board.url, mode="legacy") as c:
        return await _timed(calls, lambda: c.call_tool("system_info", {}))


def _http_sessions(board: EmulatedBoard, n: int) -> int:
    # Of n sequential official-SDK sessions (initialize, tools/list), how many got their list.
    async def one() -> bool:
        try:
            async with Client(board.url, mode="legacy") as c:
                return bool((await c.list_tools()).tools)
        except Exception:
            return False

    async def all_of() -> int:
        return sum([await one() for _ in range(n)])

    return asyncio.run(all_of())


def _heap_row(broker: Mosquitto, gateway_url: str, workdir: Path, profile: str) -> str:
    # One profile: a board with MQTT (the gateway holds a session with it) and one without.
    name = f"heap-{profile}"
    with _board(broker, workdir, name, profile=profile) as board:
        asyncio.run(_until_listed(gateway_url, [name]))
        imported, instance = _heap_probe(board)
        on = _http_sessions(board, SESSIONS)
    with _board(broker, workdir, f"plain-{profile}", mqtt=False, profile=profile) as plain:
        off = _http_sessions(plain, SESSIONS)
    heap_kb = load_profile(profile).heap_bytes // 1024
    return f"| `{profile}` ({heap_kb} KB) | {imported} | {instance} | {on}/{SESSIONS} | {off}/{SESSIONS} |"


def _heap_probe(board: EmulatedBoard) -> tuple[int, int]:
    # gc.mem_free() around importing the module, then around building the MQTT object. In a copy
    # of the board's filesystem: a Registry writes its catalog files afresh, and the board may
    # still be serving from them.
    argv, env = board.vm_command(run_main=False)
    with tempfile.TemporaryDirectory() as tmp:
        fs = shutil.copytree(board.workdir / "fs", Path(tmp) / "fs")
        done = subprocess.run([*argv, "-c", _HEAP_PROBE], cwd=fs, env=env, capture_output=True, text=True, check=True)
    out = done.stdout
    imported, instance = out.split("HEAP", 1)[1].split()[:2]
    return int(imported), int(instance)


def run_gateway_bench(out: Path, workdir: Path, level: str, progress: Callable[[str], None]) -> None:
    """Measure and write the report to `out`; `level`: full, quick or smoke (CALLS)."""
    calls = CALLS[level]
    command = "boardmcp bench --gateway" + ("" if level == "full" else f" --{level}")
    names = [f"b{i:02d}" for i in range(BOARDS)]
    rows: list[str] = []
    with Mosquitto(workdir / "broker") as broker, contextlib.ExitStack() as stack:
        gw = stack.enter_context(GatewayProcess(broker.port, workdir / "gateway"))
        progress("1 board")
        first = _board(broker, workdir, names[0])
        stack.callback(first.stop)
        first.start()
        asyncio.run(_until_listed(gw.url, names[:1]))
        one = asyncio.run(_gateway_calls(gw.url, "b00.system_info", calls))
        rows.append(_row("through the gateway, 1 board present (`b00.system_info`)", one))
        mqtt = asyncio.run(_mqtt_calls(broker.port, "b00", calls))
        rows.append(_row("straight to the board over MQTT (the gateway's own client, no HTTP)", mqtt))
        rows.append(_row("straight to the board over HTTP (no MQTT)", asyncio.run(_http_calls(first, calls))))

        progress(f"booting {BOARDS - 1} more boards")
        rest = [_board(broker, workdir, n) for n in names[1:]]
        for b in rest:
            stack.callback(b.stop)
        t = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda b: b.start(60.0), rest))
        booted = time.perf_counter() - t
        after_boot = asyncio.run(_until_listed(gw.url, names))
        many = asyncio.run(_gateway_calls(gw.url, "b00.system_info", calls))
        rows.append(_row(f"through the gateway, {BOARDS} boards present (`b00.system_info`)", many))
        fan = asyncio.run(_gateway_calls(gw.url, "all.system_info", max(20, calls // 10)))
        rows.append(_row(f"fan-out to {BOARDS} boards (`all.system_info`)", fan))

        progress("a fresh gateway finding the boards already present")
        t = time.perf_counter()
        with GatewayProcess(broker.port, workdir / "gateway-cold") as cold:
            cold_s = time.perf_counter() - t + asyncio.run(_until_listed(cold.url, names))

        heap_rows = []
        for profile in HEAP_PROFILES:
            progress(f"heap on {profile}")
            heap_rows.append(_heap_row(broker, gw.url, workdir, profile))

    lines = [
        "# MCP over MQTT and the fleet gateway: measurements",
        "",
        f"Written by `{command}` ({platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, Mosquitto on loopback, emulated `{PROFILE}` boards: the real firmware on the "
        "MicroPython unix VM). Timings on a shared 2-core machine: compare them with each other, not with a chip "
        "on Wi-Fi.",
        "",
        f"## {DISCOVERY_SECTION}",
        "",
        "| what | seconds |",
        "|---|---|",
        f"| {BOARDS - 1} boards boot (4 at a time) beside a running gateway | {booted:.1f} |",
        f"| then until the gateway lists all {BOARDS} boards' tools | {after_boot:.2f} |",
        f"| a gateway started with {BOARDS} boards already on the broker, until it lists them all | {cold_s:.2f} |",
        "",
        f"## {LATENCY_SECTION}",
        "",
        "| path | calls | median ms | p95 ms |",
        "|---|---|---|---|",
        *rows,
        "",
        "## Heap on the board (MicroPython, `gc.mem_free()`)",
        "",
        "Per profile: bytes taken by importing `boardmcp/transport/mqtt` (.mpy; `stream` already loaded, as for "
        "the console) and by one `MQTT` object (its 1 KB packet buffer, topics), each measured around a "
        "`gc.collect()` in a VM of its own; and how many of "
        f"{SESSIONS} sequential official-SDK sessions over HTTP (`initialize`, `tools/list`) got their list on a "
        "serving board with MQTT (connected, the gateway holding a session with it) and on one without.",
        "",
        "| profile (heap) | import | `MQTT` object | HTTP sessions, MQTT on | MQTT off |",
        "|---|---|---|---|---|",
        *heap_rows,
        "",
        f"Boards without an `mqtt` section in config.json never import the module. The emulator's VM has "
        f"{SIM_HEAP_BYTES // 1024} KB on top of the profile's heap for the simulated hardware and "
        f"{WORD_HEAP_BYTES / 1024:.1f} KB for its 64-bit words; the numbers are the firmware's, on the 64-bit VM.",
        "",
    ]
    out.write_text("\n".join(lines))
    progress(f"wrote {out}")


def default_out() -> Path:
    """Where the report goes by default."""
    return repo_root() / "docs" / "GATEWAY-BENCH.md"
