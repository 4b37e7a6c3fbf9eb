"""The servers a bench run measures: emulated boards (optionally with the stats probe) and FastMCP.

with BenchBoard(load_profile("esp32s3"), Path("build/bench/b")) as b:
    b.endpoint, b.stats("c").alloc
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from host_tools import processes
from host_tools.bench.client import MODERN, BenchClientError, Endpoint, Speaker, check_result, exchange_once
from host_tools.emulator.runner import EMULATOR_HEAP_BYTES, EmulatedBoard, find_micropython, free_port
from host_tools.profiles import Profile
from host_tools.stage import default_firmware_dir

PROBE = Path(__file__).parent / "board" / "probe.py"
FLOOR = Path(__file__).parent / "board" / "floor.py"
# The probe (its code and its stats server: 8,064 B measured, see tests/host/test_bench_probe.py)
# is bench apparatus that no deployed board carries: a board with it gets this much more heap, as
# the VM gets EMULATOR_HEAP_BYTES for the simulated hardware and its 64-bit words, so the firmware
# still sees the chip's budget.
PROBE_HEAP_BYTES = 8 * 1024


@dataclasses.dataclass(frozen=True)
class HeapStats:
    """One answer of the probe's stats port (bytes)."""

    alloc: int
    free: int
    total: int
    vm_and_probe: int
    sim: int
    stats_server: int
    largest_free: int  # the largest block an allocation can have: 0 unless the command was "f"


class BenchBoard:
    """An emulated board for the bench. `vm_heap` sets the VM's whole `-X heapsize` (the profile's
    heap plus the emulator's allowances by default); `probe` stages the stats probe as main.py (and adds
    PROBE_HEAP_BYTES for it), else the real main.py runs alone, as deployed. `http_options` and
    `config_options` are EmulatedBoard's."""

    def __init__(
        self,
        profile: Profile,
        workdir: Path,
        *,
        vm_heap: int | None = None,
        probe: bool = True,
        http_options: dict[str, Any] | None = None,
        config_options: dict[str, Any] | None = None,
    ) -> None:
        heap = (vm_heap if vm_heap is not None else profile.heap_bytes + EMULATOR_HEAP_BYTES) - EMULATOR_HEAP_BYTES
        if probe:
            heap += PROBE_HEAP_BYTES
        self.vm_heap = heap + EMULATOR_HEAP_BYTES
        self.stats_port = free_port() if probe else 0
        firmware = workdir / "firmware"
        shutil.rmtree(firmware, ignore_errors=True)
        shutil.copytree(default_firmware_dir(), firmware, ignore=shutil.ignore_patterns("__pycache__", "*.pyi"))
        if probe:
            source = PROBE.read_text().replace("STATS_PORT = 0", f"STATS_PORT = {self.stats_port}", 1)
            (firmware / "main.py").write_text(source)
        self.board = EmulatedBoard(
            dataclasses.replace(profile, heap_bytes=heap),
            workdir=workdir / "board",
            firmware_dir=firmware,
            http_options=http_options,
            config_options=config_options,
        )

    @property
    def endpoint(self) -> Endpoint:
        """Where the board serves MCP."""
        return Endpoint(self.board.port, self.board.token)

    def start(self) -> None:
        """Boot the board (raises BoardError if it does not come up)."""
        self.board.start()

    def stop(self) -> None:
        """Stop the board."""
        self.board.stop()

    def stats(self, command: str) -> HeapStats:
        """Send one probe command (see board/probe.py) and return the figures it reports."""
        with socket.create_connection(("127.0.0.1", self.stats_port), timeout=10) as s:
            s.sendall(command.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(256)
                if not chunk:
                    raise BenchClientError(f"stats port closed after {data!r}")
                data += chunk
        return HeapStats(*(int(x) for x in data.split()))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def wait_serving(endpoint: Endpoint, proc: subprocess.Popen[bytes], timeout: float, poll: float = 0.002) -> float:
    """Poll `server/discover` until it succeeds; return the seconds waited. Raises if `proc` ends."""
    started = time.perf_counter()
    hello = Speaker(endpoint, MODERN).hello()
    while True:
        try:
            status, _, body = exchange_once(endpoint.port, hello, timeout=max(1.0, poll))
            check_result(status, body)
        except (OSError, BenchClientError, ValueError):
            if proc.poll() is not None:
                raise BenchClientError(f"the server exited with status {proc.returncode} before serving") from None
            if time.perf_counter() - started > timeout:
                raise BenchClientError(f"not serving within {timeout:g} s") from None
            time.sleep(poll)
        else:
            return time.perf_counter() - started


class _ServerProcess:
    """A server in a process of its own on a loopback port, its output in `log`; a subclass
    gives its command line (`argv`)."""

    token = ""  # what its endpoint sends as the bearer token
    boot_timeout_s = 30.0

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.boot_s = 0.0

    @property
    def endpoint(self) -> Endpoint:
        """Where it serves."""
        return Endpoint(self.port, self.token)

    def argv(self) -> list[str]:
        """The command that starts it."""
        raise NotImplementedError

    def start(self) -> None:
        """Start it and wait until it answers (the wait is its boot-to-serving time)."""
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.boot_s = wait_serving(self.endpoint, self.proc, timeout=self.boot_timeout_s)

    def stop(self) -> None:
        """Terminate it."""
        if self.proc is not None:
            processes.stop(self.proc)
            self.proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class FastMCPServer(_ServerProcess):
    """The comparison: host_tools/bench/fastmcp_server.py on this CPython, token on."""

    boot_timeout_s = 60.0

    def __init__(self, log: Path) -> None:
        super().__init__(log)
        self.token = secrets.token_urlsafe(24)

    def argv(self) -> list[str]:
        """uvicorn serving FastMCP. "--token=…" in one word: a urlsafe token may begin with "-",
        which argparse would take for an option (CI once saw the server exit with status 2 for that)."""
        return [
            sys.executable,
            "-m",
            "host_tools.bench.fastmcp_server",
            "--port",
            str(self.port),
            f"--token={self.token}",
        ]

    def memory_kb(self) -> dict[str, int]:
        """The process's resident set now (VmRSS) and at its peak (VmHWM), in KiB."""
        assert self.proc is not None
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
        return fields


class FloorServer(_ServerProcess):
    """The latency floor: board/floor.py (a canned answer, no MCP) on the firmware's VM."""

    def argv(self) -> list[str]:
        """floor.py on the firmware's MicroPython."""
        return [str(find_micropython()), str(FLOOR), str(self.port)]
