"""`boardmcp bench`: measure the firmware on emulated boards beside FastMCP, write the report.

run_bench(BenchOptions(board="esp32s3", level="full"), progress=print)
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from host_tools.bench import callgrind, measure
from host_tools.bench.client import MODERN, Endpoint, Series, Speaker
from host_tools.bench.targets import BenchBoard, FastMCPServer, FloorServer
from host_tools.emulator.runner import EMULATOR_HEAP_BYTES, find_micropython
from host_tools.profiles import Profile, load_profile, repo_root

# The instruction count is also taken on this profile: the cheapest chip, whose heap makes the
# firmware collect early and serve one request at a time (app.TIGHT_HEAP), which costs per call
# what a roomy board does not pay.
TIGHT_BOARD = "esp32"


@dataclass(frozen=True)
class Level:
    """How much a run measures: requests per series, its time cap, and which slow parts run."""

    count: int
    time_cap: float
    alloc_window: int
    mixed: int
    boots: int
    callgrind: tuple[int, int] | None
    bisect: bool
    heap_scan: tuple[int, int]  # free heap needed: scans, step (bytes)


LEVELS = {
    "full": Level(
        count=1000,
        time_cap=4.0,
        alloc_window=20,
        mixed=500,
        boots=5,
        callgrind=(5, 45),
        bisect=True,
        heap_scan=(3, 512),
    ),
    "quick": Level(
        count=200,
        time_cap=1.0,
        alloc_window=10,
        mixed=500,
        boots=3,
        callgrind=(2, 12),
        bisect=True,
        heap_scan=(1, 512),
    ),
    # Just shows the harness works end to end (the test suite runs it): tiny counts, no bisection.
    "smoke": Level(
        count=10,
        time_cap=1.0,
        alloc_window=3,
        mixed=40,
        boots=1,
        callgrind=None,
        bisect=False,
        heap_scan=(1, 4096),
    ),
}


@dataclass(frozen=True)
class BenchOptions:
    """What to run and where to write it."""

    board: str = "esp32s3"
    level: str = "full"
    out_md: Path = field(default_factory=lambda: repo_root() / "docs" / "BENCHMARKS.md")
    out_png: Path = field(default_factory=lambda: repo_root() / "docs" / "benchmarks-latency.png")
    workdir: Path = field(default_factory=lambda: repo_root() / "build" / "bench")
    command: str = "make bench"
    fastmcp: bool = True


@dataclass
class Results:
    """Everything one run measured (see report.py for how it is shown)."""

    profile: Profile
    level: str
    latency: dict[str, dict[tuple[str, str, str], Series]] = field(default_factory=dict)
    sensors: dict[str, dict[str, str | None]] = field(default_factory=dict)
    idle: dict[str, int] = field(default_factory=dict)
    alloc: dict[str, int] = field(default_factory=dict)
    free_needed: dict[str, int] = field(default_factory=dict)
    min_heap: int | None = None
    min_heap_note: str = ""
    deployed: dict[str, int] = field(default_factory=dict)
    boot_s: float = 0.0
    vm_start_s: float = 0.0
    fastmcp_boot_s: float = 0.0
    fastmcp_memory_kb: dict[str, int] = field(default_factory=dict)
    floor: Series | None = None  # the keep-alive system_info request against board/floor.py
    instructions: callgrind.RequestCost | None = None  # the keep-alive system_info call
    instructions_note: str = ""
    floor_instructions: int | None = None  # the same request against board/floor.py
    sensor_instructions: callgrind.RequestCost | None = None  # the keep-alive call of the board's sensor tool
    tight_instructions: int | None = None  # the same call on TIGHT_BOARD
    tight_instructions_note: str = ""
    vm_binary: str = ""
    machine: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0


def run_bench(options: BenchOptions, progress: Callable[[str], None]) -> Results:
    """Measure everything the level asks for, write the Markdown report and the chart."""
    from host_tools.bench import report  # noqa: PLC0415  (matplotlib loads only when writing)

    started = time.perf_counter()
    level = LEVELS[options.level]
    profile = load_profile(options.board)
    work = options.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    res = Results(profile, options.level, machine=machine_facts(), vm_binary=callgrind.find_vm_binary())

    progress(f"booting {profile.name} with the stats probe ({profile.heap_bytes // 1024} KB heap + sim)")
    with BenchBoard(profile, work / "board") as board:
        idle = board.stats("c")
        res.idle = {
            "vm_and_probe": idle.vm_and_probe,
            "sim": idle.sim,
            "stats_server": idle.stats_server,
            "firmware": idle.alloc - idle.vm_and_probe - idle.sim - idle.stats_server,
            "vm_heap": board.vm_heap,
        }
        progress(f"idle: firmware {res.idle['firmware']:,} B live; sim {idle.sim:,} B (counted apart)")
        _latency(res, options, board, level, work, progress)
        modern = measure.workload(board.endpoint, MODERN)
        rounds, step = level.heap_scan
        kinds = {k: v[0] for k, v in modern.kinds.items()}
        res.free_needed = measure.free_heap_needed(board, kinds, progress, step=step, rounds=rounds)
        res.alloc = measure.allocation_per_request(board, level.alloc_window, progress)

    if level.bisect:
        res.min_heap = measure.smallest_heap(profile, work / "minheap", level.mixed, res.idle["sim"], progress)
        res.min_heap_note = f"{level.mixed} mixed requests"
    else:
        ok, why = measure.serves_mixed(profile, work / "minheap", profile.heap_bytes + EMULATOR_HEAP_BYTES, level.mixed)
        res.min_heap_note = f"not bisected at this level; the profile's heap serves {level.mixed} mixed: {ok} {why}"
        if not ok:
            raise measure.BenchClientError(f"mixed workload failed: {why}")

    res.boot_s, res.vm_start_s = measure.boot_to_serving(profile, work / "boot", level.boots)
    res.deployed = measure.deployed_bytes(work / "boot" / "board" / "fs")
    progress(f"boot: {res.boot_s * 1000:.0f} ms to serving (an empty VM run takes {res.vm_start_s * 1000:.0f} ms)")

    if level.callgrind is None:
        res.instructions_note = "not measured at this level"
    elif (why := callgrind.prerequisite()) is not None:
        res.instructions_note = why
        progress(f"callgrind: skipped: {why}")
    else:
        _count_instructions(res, profile, work / "callgrind", level.callgrind, progress)

    res.elapsed_s = time.perf_counter() - started
    report.write(res, options)
    progress(f"wrote {options.out_md} and {options.out_png} in {res.elapsed_s:.0f} s")
    return res


def _latency(
    res: Results, options: BenchOptions, board: BenchBoard, level: Level, work: Path, progress: Callable[[str], None]
) -> None:
    # The latency matrix: the board and FastMCP taking turns, and the floor in its row.
    with contextlib.ExitStack() as stack:
        servers = {"board": board.endpoint}
        fastmcp = None
        if options.fastmcp:
            progress("starting FastMCP (CPython, stateless JSON)")
            fastmcp = stack.enter_context(FastMCPServer(work / "fastmcp.log"))
            res.fastmcp_boot_s = fastmcp.boot_s
            servers["fastmcp"] = fastmcp.endpoint
        progress("starting the floor: a canned answer on the same VM, no MCP work (board/floor.py)")
        floor = stack.enter_context(FloorServer(work / "floor.log"))
        progress(f"latency: {', '.join([*servers, 'floor'])} taking turns, {measure.ROUNDS} parts a series")
        matrices, res.floor = measure.latency_matrix(
            servers, level.count, level.time_cap, progress, floor=floor.endpoint
        )
        if fastmcp is not None:
            res.fastmcp_memory_kb = fastmcp.memory_kb()
    for name, matrix in matrices.items():
        res.latency[name], res.sensors[name] = matrix.series, matrix.sensors


def _count_instructions(
    res: Results, profile: Profile, work: Path, counts: tuple[int, int], progress: Callable[[str], None]
) -> None:
    # The keep-alive tools/call system_info under callgrind: on the board (with where its
    # instructions go), on the latency floor, and on TIGHT_BOARD; and the sensor tool's call.
    def call(endpoint: Endpoint) -> bytes:
        return Speaker(endpoint, MODERN).call("system_info")

    progress("callgrind: booting two boards under valgrind (this takes a minute)")
    boards = callgrind.board_launches(profile, work / "board")
    res.instructions = callgrind.request_cost(boards, call, *counts, progress)
    progress(f"callgrind: {res.instructions.total:,} instructions per tools/call")
    floors = callgrind.floor_launches(work / "floor", boards[0].endpoint.token)
    res.floor_instructions = callgrind.request_cost(floors, call, *counts, progress).total
    progress(f"callgrind: the floor: {res.floor_instructions:,} instructions per request")
    sensor = res.sensors.get("board", {}).get(MODERN)
    if sensor is not None:

        def read(endpoint: Endpoint) -> bytes:
            return Speaker(endpoint, MODERN).call(sensor)

        boards = callgrind.board_launches(profile, work / "sensor")
        res.sensor_instructions = callgrind.request_cost(boards, read, *counts, progress)
        progress(f"callgrind: {res.sensor_instructions.total:,} instructions per tools/call {sensor}")
    if profile.name == TIGHT_BOARD:
        return
    progress(f"callgrind: the same on the {TIGHT_BOARD} profile (tight heap)")
    try:
        tight = callgrind.board_launches(load_profile(TIGHT_BOARD), work / "tight")
        res.tight_instructions = callgrind.request_cost(tight, call, *counts, progress).total
    except measure.BenchClientError as e:
        res.tight_instructions_note = str(e)
        progress(f"callgrind: {TIGHT_BOARD}: not measured: {e}")


def machine_facts() -> dict[str, str]:
    """CPU, cores, OS, Python and MicroPython versions, and the commit measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mpy = subprocess.run(
        [str(find_micropython()), "-c", "import sys; print(sys.version.split('; ')[-1])"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(_cores()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "micropython": mpy,
        "commit": _git("rev-parse", "--short=12", "HEAD")
        + (" (uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no") else ""),
    }


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, check=False)
    return proc.stdout.strip()
