"""What `boardmcp bench` measures, one function per figure. `run_bench` in run.py strings them together."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host_tools.bench.client import (
    HANDSHAKE,
    MODERN,
    BenchClientError,
    Endpoint,
    Series,
    Speaker,
    check_result,
    exchange_checked,
    exchange_once,
    run_series,
)
from host_tools.bench.targets import BenchBoard, wait_serving
from host_tools.emulator.runner import EMULATOR_HEAP_BYTES, RUN_MAIN, BoardError
from host_tools.profiles import Profile

Progress = Callable[[str], None]
MODES = ("keep-alive", "new connection", "8 concurrent")
CONCURRENCY = 8
HEAP_SCAN_TOP = 32 * 1024  # free_heap_needed() looks from here down (-1 beyond it)
# Names a sensor-reading tool is recognised by (read-only, no required arguments).
_SENSOR_WORDS = ("sensor", "temperature", "humidity", "pressure", "environment", "read")


@dataclass
class Workload:
    """The request kinds of one server in one era, as bytes per concurrent client."""

    speaker: Speaker
    kinds: dict[str, list[bytes]] = field(default_factory=dict)
    closing: dict[str, list[bytes]] = field(default_factory=dict)
    sensor_tool: str | None = None


def pick_sensor_tool(tools: list[dict[str, Any]]) -> str | None:
    """The tool that reads a sensor: read-only, callable without arguments, named like one."""
    for tool in tools:
        name = tool["name"]
        if name in ("system_info", "led"):
            continue
        read_only = (tool.get("annotations") or {}).get("readOnlyHint")
        required = (tool.get("inputSchema") or {}).get("required") or []
        if read_only and not required and any(w in name.lower() for w in _SENSOR_WORDS):
            return name
    return None


def workload(endpoint: Endpoint, era: str) -> Workload:
    """Open the era, list the tools, and build every kind's request bytes (checked once each)."""
    speaker = Speaker(endpoint, era)
    speaker.open()
    tools = exchange_checked(endpoint.port, speaker.request("tools/list", {}))["tools"]
    work = Workload(speaker, sensor_tool=pick_sensor_tool(tools))
    builders: dict[str, Callable[[int, bool], bytes]] = {
        "tools/list": lambda rid, close: speaker.request("tools/list", {}, rid, close=close),
        "tools/call system_info": lambda rid, close: speaker.request(
            "tools/call", {"name": "system_info", "arguments": {}}, rid, close=close
        ),
    }
    if work.sensor_tool:
        tool = work.sensor_tool
        builders[f"tools/call {tool}"] = lambda rid, close: speaker.request(
            "tools/call", {"name": tool, "arguments": {}}, rid, close=close
        )
    # The hello goes last: in the handshake era every `initialize` opens a session, and the board
    # ends the least recently used one, which would be this workload's.
    builders["server/discover" if era == MODERN else "initialize"] = lambda rid, close: speaker.hello(rid, close=close)
    for kind, build in builders.items():
        work.kinds[kind] = [build(rid, False) for rid in range(1, CONCURRENCY + 1)]
        work.closing[kind] = [build(rid, True) for rid in range(1, CONCURRENCY + 1)]
        exchange_checked(endpoint.port, work.kinds[kind][0])
    return work


# A floor server's row: the keep-alive system_info request, which it answers with a canned result.
FLOOR_ROW = (MODERN, "tools/call system_info", "keep-alive")
# Each series runs in this many parts, the servers' order reversed from one part to the next.
ROUNDS = 2


@dataclass
class Matrix:
    """One server's series, by (era, kind, mode), and the sensor tool it was found to have per era."""

    series: dict[tuple[str, str, str], Series] = field(default_factory=dict)
    sensors: dict[str, str | None] = field(default_factory=dict)


def latency_matrix(
    servers: dict[str, Endpoint], count: int, time_cap: float, progress: Progress, floor: Endpoint | None = None
) -> tuple[dict[str, Matrix], Series | None]:
    """Every (era, kind, mode) series against each server, the servers taking turns: each series
    runs in ROUNDS parts, the servers' order reversed from one part to the next (A B, B A), so a
    change in what else the machine runs while they are measured weighs on them alike. The
    `floor` server, if given, takes its turns in FLOOR_ROW with the request of the first
    server's; its series is returned too."""
    matrices = {name: Matrix() for name in servers}
    floor_series = None
    for era in (MODERN, HANDSHAKE):
        works = {name: workload(endpoint, era) for name, endpoint in servers.items()}
        for name, work in works.items():
            matrices[name].sensors[era] = work.sensor_tool
        for key in dict.fromkeys(kind_key(k) for w in works.values() for k in w.kinds):
            kinds = {name: kind for name, work in works.items() if (kind := _kind_for(work, key)) is not None}
            for mode in MODES:
                runs = {name: _series_run(servers[name], works[name], kind, mode) for name, kind in kinds.items()}
                first = next(iter(kinds))
                floor_here = floor if (era, kinds[first], mode) == FLOOR_ROW else None
                if floor_here is not None:
                    runs["floor"] = _floor_run(floor_here, works[first].kinds[kinds[first]][0])
                done = interleaved(runs, count, time_cap)
                for name, kind in kinds.items():
                    matrices[name].series[(era, kind, mode)] = done[name]
                    _report(progress, name, era, kind, mode, done[name])
                if floor_here is not None:
                    floor_series = done["floor"]
                    _report(progress, "floor", era, kinds[first], mode, floor_series)
    return matrices, floor_series


def kind_key(kind: str) -> str:
    """A request kind as servers are compared on it: the sensor tool has a different name on each."""
    if kind.startswith("tools/call ") and kind != "tools/call system_info":
        return "tools/call <sensor>"
    return kind


def _kind_for(work: Workload, key: str) -> str | None:
    return next((kind for kind in work.kinds if kind_key(kind) == key), None)


def _floor_run(floor: Endpoint, request: bytes) -> Callable[[int, float], Series]:
    return lambda n, cap: run_series(floor.port, [[request]], count=n, time_cap=cap)


def _series_run(endpoint: Endpoint, work: Workload, kind: str, mode: str) -> Callable[[int, float], Series]:
    # One part of a (kind, mode) series against one server: n requests within cap seconds.
    if mode == "keep-alive":
        workers, reconnect = [work.kinds[kind][:1]], False
    elif mode == "new connection":
        workers, reconnect = [work.closing[kind][:1]], True
    else:
        workers, reconnect = [[r] for r in work.kinds[kind]], False

    def run(n: int, cap: float) -> Series:
        exchange_checked(endpoint.port, work.kinds[kind][0])  # the previous series has let go
        return run_series(endpoint.port, workers, count=n, reconnect=reconnect, time_cap=cap)

    return run


def interleaved(runs: dict[str, Callable[[int, float], Series]], count: int, time_cap: float) -> dict[str, Series]:
    """Each run's series of `count` requests (within `time_cap` s), in ROUNDS parts taken in turn,
    the order reversed from one part to the next; the parts are joined."""
    joined = {name: Series() for name in runs}
    names = list(runs)
    for i in range(ROUNDS):
        n = count // ROUNDS + (1 if i < count % ROUNDS else 0)
        for name in names if i % 2 == 0 else reversed(names):
            part = runs[name](n, time_cap / ROUNDS)
            whole = joined[name]
            whole.latencies_ns += part.latencies_ns
            whole.failures += part.failures
            whole.wall_s += part.wall_s
            whole.first_failure = whole.first_failure or part.first_failure
    return joined


def _report(progress: Progress, server: str, era: str, kind: str, mode: str, series: Series) -> None:
    note = f", {series.failures} FAILED ({series.first_failure})" if series.failures else ""
    progress(
        f"{server} {era} {kind:28} {mode:14} median {series.median_ms:7.3f} ms  "
        f"p99 {series.p99_ms:7.3f} ms  {series.rate:8.0f} req/s{note}"
    )


# -- heap ----------------------------------------------------------------------------------------


def allocation_per_request(board: BenchBoard, count: int, progress: Progress) -> dict[str, int]:
    """Heap bytes one request of each kind allocates on a warm keep-alive connection: the VM's
    cumulative allocation counter (`micropython.mem_total()`, bytes asked of the heap, so it holds
    whatever the GC or the firmware's own gc.collect() calls do) across `count` requests, less an
    empty window's (the stats connection's own cost)."""

    def window(requests: list[bytes]) -> int:
        begin = board.stats("m")
        if requests:
            series = run_series(board.endpoint.port, [requests], count=count)
            if series.failures:
                raise BenchClientError(f"allocation window failed: {series.first_failure}")
        return board.stats("m").total - begin.total

    empty = min(window([]) for _ in range(3))
    out: dict[str, int] = {}
    for era in (MODERN, HANDSHAKE):
        work = workload(board.endpoint, era)
        for kind, requests in work.kinds.items():
            run_series(board.endpoint.port, [requests[:1]], count=3)  # warm: first-use caches
            per = (window(requests[:1]) - empty) / count
            out[f"{era} {kind}"] = round(per)
            progress(f"heap: {era} {kind}: {per:,.0f} B allocated per request")
    return out


def free_heap_needed(
    board: BenchBoard,
    kinds: dict[str, bytes],
    progress: Progress,
    step: int = 512,
    top: int = HEAP_SCAN_TOP,
    rounds: int = 3,
) -> dict[str, int]:
    """For each kind, the free heap above idle (bytes, to `step`) from which one request on a new
    connection always succeeded: ballast fills the rest of the heap, for every amount from `top`
    down in `step`s, and the answer is one step above the largest amount that failed in any of
    `rounds` scans (-1 when even `top` failed). The peak the request reaches above idle,
    fragmentation included.

    Scanned, not bisected: more free heap can fail where less succeeds, as the ballast leaves the
    free heap in different pieces (measured on the esp32s3: tools/list served with 4 KB and 16 KB
    free, not with 8 KB or 12 KB), so a bisection's answer depended on where it happened to look.
    Every try starts from the same state: caches dropped, then the request served once unballasted
    (its code loaded, as on a board that has served it before)."""
    out: dict[str, int] = {}
    for kind, request in kinds.items():
        worst = 0
        for _ in range(rounds):
            leave = top
            while leave > 0 and _served_with(board, request, leave):
                leave -= step
            if leave == top:
                worst = -1
                break
            worst = max(worst, leave + step if leave > 0 else 0)
        out[kind] = worst
        progress(f"heap: {kind}: needs {worst:,} B free above idle")
    board.stats("r")
    return out


def _served_with(board: BenchBoard, request: bytes, leave: int) -> bool:
    board.stats("u")
    _answered(board, request)  # unballasted, to load its code: the try below decides
    board.stats(f"b{leave}")
    ok = _answered(board, request)
    board.stats("r")
    return ok


def _answered(board: BenchBoard, request: bytes) -> bool:
    # Did the request, on a new connection, get a successful answer?
    try:
        status, _, body = exchange_once(board.endpoint.port, request, timeout=5)
        check_result(status, body)
    except (OSError, BenchClientError, ValueError):
        return False
    return True


def mixed_workers(endpoint: Endpoint) -> list[list[bytes]]:
    """Two clients, one per protocol era, cycling through every kind (and the LED)."""
    workers = []
    for era in (MODERN, HANDSHAKE):
        work = workload(endpoint, era)
        cycle = [reqs[0] for reqs in work.kinds.values()]
        cycle.append(work.speaker.request("tools/call", {"name": "led", "arguments": {"state": "toggle"}}, 2))
        workers.append(cycle)
    return workers


def serves_mixed(profile: Profile, workdir: Path, vm_heap: int, count: int) -> tuple[bool, str]:
    """Does the deployed firmware (plain main.py) with this VM heap serve `count` mixed requests?"""
    board = BenchBoard(profile, workdir, vm_heap=vm_heap, probe=False)
    try:
        board.start()
    except BoardError as exc:
        return False, str(exc).splitlines()[0]
    try:
        series = run_series(board.endpoint.port, mixed_workers(board.endpoint), count=count, time_cap=120)
    except (OSError, BenchClientError, ValueError) as exc:
        return False, f"setup failed: {exc}"
    finally:
        board.stop()
    if series.failures or len(series.latencies_ns) < count:
        return False, series.first_failure or "incomplete"
    return True, ""


def smallest_heap(
    profile: Profile, workdir: Path, count: int, sim_bytes: int, progress: Progress, step: int = 2048
) -> int | None:
    """Bisect the VM's -X heapsize in `step`s: the least at which the board serves `count` mixed
    requests with no failure (None if even the profile's heap does not)."""
    hi = (profile.heap_bytes + EMULATOR_HEAP_BYTES + step - 1) // step * step
    lo = sim_bytes // step * step
    ok, why = serves_mixed(profile, workdir, hi, count)
    progress(f"min heap: -X heapsize={hi // 1024} KB: {'serves' if ok else 'FAILS: ' + why}")
    if not ok:
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        ok, why = serves_mixed(profile, workdir, mid, count)
        progress(f"min heap: -X heapsize={mid // 1024} KB: {'serves' if ok else 'fails (' + why[:80] + ')'}")
        if ok:
            hi = mid
        else:
            lo = mid
    return hi


# -- footprint, boot, instructions --------------------------------------------------------------


def deployed_bytes(fs: Path) -> dict[str, int]:
    """Sizes of what a deploy writes: every .mpy of the package, and main.py."""
    sizes = {p.relative_to(fs).as_posix(): p.stat().st_size for p in sorted((fs / "boardmcp").rglob("*.mpy"))}
    sizes["main.py"] = (fs / "main.py").stat().st_size
    return sizes


def boot_to_serving(profile: Profile, workdir: Path, runs: int) -> tuple[float, float]:
    """Median seconds from starting the VM on the deployed files to the first answered
    `server/discover`, and the median of an empty VM run (`-c pass`) on this host."""
    board = BenchBoard(profile, workdir, probe=False)
    board.board.stage()
    fs = board.board.workdir / "fs"
    boots, empties = [], []
    for _ in range(runs):
        argv, env = board.board.vm_command(run_main=False)
        started = time.perf_counter()
        subprocess.run([argv[0], "-c", "pass"], env=env, cwd=fs, check=True)
        empties.append(time.perf_counter() - started)
        argv += RUN_MAIN
        proc = subprocess.Popen(
            argv, cwd=fs, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            boots.append(wait_serving(board.endpoint, proc, timeout=30, poll=0.001))
        finally:
            proc.kill()
            proc.wait()
    return sorted(boots)[runs // 2], sorted(empties)[runs // 2]
