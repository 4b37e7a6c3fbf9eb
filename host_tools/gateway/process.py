"""`boardmcp gateway` as a child process, for tests and the benchmark. It logs to its workdir:
`with GatewayProcess(broker_port, workdir) as gw: print(gw.url)`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

from host_tools.emulator.runner import free_port
from host_tools.processes import stop, wait_listening


class GatewayProcess:
    """The gateway CLI on 127.0.0.1:`port` (0: a free one), federating the broker on `broker_port`;
    its output goes to workdir/gateway.log; `expose`, `broker_options` (e.g. ["--ca", path]): more
    `boardmcp gateway` options."""

    def __init__(
        self,
        broker_port: int,
        workdir: Path,
        port: int = 0,
        token: str | None = None,
        expose: str | None = None,
        broker_options: tuple[str, ...] = (),
    ) -> None:
        self.broker_port = broker_port
        self.expose = expose
        self.broker_options = broker_options
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
        argv += ["--port", str(self.port)] + ([f"--token={self.token}"] if self.token else [])
        argv += ["--expose", self.expose] if self.expose else []
        argv += self.broker_options
        with (self.workdir / "gateway.log").open("ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        why = wait_listening(self._proc, self.port, timeout)
        if why is not None:
            self.stop()
            raise RuntimeError(f"the gateway {why}:\n{self.log}")

    def stop(self) -> None:
        """Stop the gateway (SIGTERM; it says "disconnected" to the boards on its way out)."""
        if self._proc is not None:
            stop(self._proc)
            self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
