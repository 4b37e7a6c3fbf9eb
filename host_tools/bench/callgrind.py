"""Instruction counts under valgrind's callgrind: what one request costs the VM, and where it goes.

A server runs under callgrind twice, once serving a few keep-alive requests and once many; boot,
startup and teardown cancel out in the difference, which is divided by the count:

    call = lambda endpoint: Speaker(endpoint, MODERN).call("system_info")
    cost = request_cost(board_launches(profile, workdir), call, 5, 45, progress)
    cost.total, cost.parts[HEAP_WALKS]

Counts are deterministic to about 1% (the timed tasks, such as the HTTP reaper, run by the clock),
so they compare across commits where wall-clock figures do not.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from host_tools.bench.client import BenchClientError, Endpoint, run_series
from host_tools.bench.targets import BenchBoard, FloorServer, wait_serving
from host_tools.emulator.runner import find_micropython
from host_tools.profiles import Profile

Progress = Callable[[str], None]

# Where a request's instructions go: the VM's C functions that do each kind of work, each counted
# with everything it calls. Parts can nest: a collection runs inside whatever allocation set it
# off, and json.loads looks up every string it makes among the interned ones.
HEAP_WALKS = "heap walks (`gc.mem_free()`, `gc.mem_alloc()`)"
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (HEAP_WALKS, ("gc_info",)),
    ("garbage collection", ("gc_collect",)),
    ("parsing JSON (`json.loads`)", ("mod_json_load",)),
    ("writing JSON (`json.dump`, `json.dumps`)", ("mod_json_dump", "mod_json_dumps")),
    ("looking up each new `str` among the interned strings", ("qstr_find_strn",)),
    ("byte-string searches (`find`, `count`)", ("str_finder", "str_count")),
    ("name lookups (globals, attributes, methods)", ("mp_load_global", "mp_load_method_maybe")),
)


@dataclass(frozen=True)
class RequestCost:
    """Instructions (callgrind `Ir`) per request, and per part of PARTS (by its label)."""

    total: int
    parts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Launch:
    """One server process to run under callgrind: its command, environment and directory, and
    where it serves once up."""

    argv: list[str]
    env: dict[str, str] | None
    cwd: Path
    endpoint: Endpoint
    workdir: Path


def prerequisite() -> str | None:
    """Why instructions cannot be counted here, or None when valgrind is present."""
    if shutil.which("valgrind") is None:
        return "valgrind not found (Debian: apt-get install valgrind)"
    return None


def board_launches(profile: Profile, workdir: Path) -> list[Launch]:
    """Two emulated boards of `profile` running the deployed files (no probe, no watchdog: under
    valgrind the loop runs ~50x slower than the watchdog expects)."""
    launches = []
    for i in range(2):
        board = BenchBoard(profile, workdir / f"board-{i}", probe=False, config_options={"watchdog_ms": 0})
        board.board.stage()
        argv, env = board.board.vm_command(run_main=True)
        launches.append(Launch(argv, env, board.board.workdir / "fs", board.endpoint, board.board.workdir))
    return launches


def floor_launches(workdir: Path, token: str | None) -> list[Launch]:
    """Two latency-floor servers (board/floor.py: a canned answer, no MCP) on the firmware's VM.
    Requests to them carry `token` (which they ignore), so they are the board's, byte for byte."""
    launches = []
    for i in range(2):
        where = workdir / f"floor-{i}"
        where.mkdir(parents=True, exist_ok=True)
        server = FloorServer(where / "floor.log")  # for its port and command: valgrind runs it
        launches.append(Launch(server.argv(), None, where, Endpoint(server.port, token), where))
    return launches


def request_cost(
    launches: Sequence[Launch], request: Callable[[Endpoint], bytes], small: int, large: int, progress: Progress
) -> RequestCost:
    """What one request (`request(endpoint)`: its bytes for a server) costs: the first launch
    serves `small` keep-alive copies of it, the second `large`, and the difference is divided by
    `large - small`."""
    procs = []
    try:
        for launch in launches:
            out = launch.workdir / "callgrind.out"
            # The unix VM is a CPython extension (micropython_run*.so) behind a Python launcher script.
            vm = Path(launch.argv[0])
            python = [] if _is_elf(vm) else [sys.executable]
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *python, *launch.argv]
            with (launch.workdir / "valgrind.log").open("wb") as log:
                proc = subprocess.Popen(
                    cmd, cwd=launch.cwd, env=launch.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
                )
            procs.append((proc, out))
        for (proc, _), launch, n in zip(procs, launches, (small, large), strict=True):
            wait_serving(launch.endpoint, proc, timeout=300, poll=0.5)
            progress(f"callgrind: serving under valgrind; {n} requests")
            series = run_series(launch.endpoint.port, [[request(launch.endpoint)]], count=n, time_cap=600, timeout=60)
            if series.failures:
                raise BenchClientError(f"under callgrind: {series.first_failure}")
            # SIGTERM, not SIGINT: the unix VM raises KeyboardInterrupt from inside its signal
            # handler, wherever it is, and one caught mid-collection left the VM unable to exit.
            # Callgrind writes its counts on a fatal signal too.
            os.kill(proc.pid, signal.SIGTERM)
        counts = []
        for proc, out in procs:
            try:
                proc.wait(300)
            except subprocess.TimeoutExpired:
                raise BenchClientError("the VM did not exit under valgrind within 300 s of SIGTERM") from None
            counts.append(read_counts(out))
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    (few, few_parts), (many, many_parts) = counts
    n = large - small
    return RequestCost(
        round((many - few) / n), {label: round((many_parts[label] - few_parts[label]) / n) for label, _ in PARTS}
    )


def read_counts(out: Path) -> tuple[int, dict[str, int]]:
    """A callgrind output file's total `Ir`, and each part of PARTS with what it calls (the cost of
    every call into one of its functions from outside them)."""
    names: dict[str, str] = {}  # callgrind's name compression: "(12) name" once, then "(12)"
    group = {fn: label for label, fns in PARTS for fn in fns}
    parts = dict.fromkeys((label for label, _ in PARTS), 0)
    total = None
    caller = callee = ""
    count_next = False
    for line in out.read_text(errors="replace").splitlines():
        key, eq, value = line.partition("=")
        if eq and key in ("fn", "cfn"):
            name = _name(value, names)
            if key == "fn":
                caller = name
            else:
                callee = name
            continue
        if line.startswith("calls="):
            # The next line is the call's inclusive cost. A part's own calls among its functions
            # (recursion included) are inside a call already counted.
            label = group.get(callee)
            count_next = label is not None and group.get(caller) != label
            continue
        if count_next:
            parts[group[callee]] += int(line.split()[1])
            count_next = False
        elif line.startswith(("totals:", "summary:")):
            total = int(line.split()[1])
    if total is None:
        raise BenchClientError(f"no totals in {out}")
    return total, parts


def _name(value: str, names: dict[str, str]) -> str:
    # A function's name without callgrind's recursion suffix ("'2"), its compression resolved.
    value = value.strip()
    if value.startswith("("):
        ref, _, rest = value.partition(")")
        if rest:
            names[ref] = rest.strip()
        value = names.get(ref, ref)
    return value.partition("'")[0]


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def find_vm_binary() -> str:
    """Where the MicroPython VM's machine code lives (for the report)."""
    micropython = find_micropython()
    if _is_elf(micropython):
        return str(micropython)
    import micropython_run  # type: ignore[import-not-found]  # noqa: PLC0415

    return f"{micropython_run.__file__} (loaded by {micropython}, a CPython launcher)"
