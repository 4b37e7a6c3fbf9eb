"""`boardmcp gateway` as a child process, for tests and the benchmark. It logs to its workdir:
`with GatewayProcess(broker_port, workdir) as gw: print(gw.url)`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from host_tools.emulator.runner import free_port


class GatewayProcess:
    """The gateway CLI on 127.0.0.1:`port` (0: a free one), federating the broker on `broker_port`;
    its output goes to workdir/gateway.log."""

    def __init__(self, broker_port: int, workdir: Path, port: int = 0, token: str | None = None) -> None:
        self.broker_port = broker_port
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.token = token
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The gateway's MCP endpoint."""
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def log(self) -> str:
        """What the gateway printed so far."""
        path = self.workdir / "gateway.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 30.0) -> None:
        """Start the gateway; return once its HTTP port accepts connections."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "host_tools", "gateway", "--broker", f"127.0.0.1:{self.broker_port}"]
        argv += ["--port", str(self.port)] + (["--token", self.token] if self.token else [])
        with (self.workdir / "gateway.log").open("ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self._proc.returncode}:\n{self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the gateway did not listen within {timeout:g} s:\n{self.log}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the gateway (SIGTERM; it says "disconnected" to the boards on its way out)."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
