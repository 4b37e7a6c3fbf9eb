"""A private Mosquitto broker on loopback, for tests and `boardmcp bench --gateway`.

Debian's `mosquitto` (`apt-get install mosquitto`; .ci/run installs it) with a generated config:
one MQTT 5 listener on 127.0.0.1, no persistence, anonymous access unless `users` are given.

    with Mosquitto(workdir) as broker:
        print(broker.port)
        broker.restart()   # the same port again, retained messages gone
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from host_tools.emulator.runner import free_port
from host_tools.processes import wait_listening

# Debian installs the broker in /usr/sbin, which is not on every user's PATH.
_SEARCH = "/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin"


class BrokerError(RuntimeError):
    """Mosquitto is missing or did not start."""


def find_mosquitto(name: str = "mosquitto") -> Path:
    """The mosquitto executable (or one of its tools, e.g. mosquitto_passwd)."""
    found = shutil.which(name) or shutil.which(name, path=_SEARCH)
    if found is None:
        raise BrokerError(f"{name} not found: install Debian's mosquitto (apt-get install mosquitto)")
    return Path(found)


class Mosquitto:
    """A mosquitto process serving MQTT on 127.0.0.1:`port` (0: a free one) until stop().
    `users` ({name: password}) turns anonymous access off; `options` are more mosquitto.conf
    lines (e.g. "max_inflight_messages 1": told to MQTT 5 clients as Receive Maximum)."""

    def __init__(
        self, workdir: Path, port: int = 0, users: dict[str, str] | None = None, options: tuple[str, ...] = ()
    ) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.users = dict(users or {})
        self.options = options
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        """What the broker logged so far."""
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 10.0) -> None:
        """Write the config and start the broker; return once it accepts connections."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr", "log_type all"]
        lines.append("set_tcp_nodelay true")  # else each PUBACK + PUBLISH pair waits on a delayed ACK
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, which cannot read our 0700 workdir
        if self.users:
            passwd = self.workdir / "passwd"
            passwd.write_text("")
            passwd.chmod(0o600)
            for name, password in self.users.items():
                subprocess.run([find_mosquitto("mosquitto_passwd"), "-b", passwd, name, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        lines += self.options
        conf.write_text("\n".join(lines) + "\n")
        log = (self.workdir / "mosquitto.log").open("ab")
        self._proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=log, stderr=log)
        log.close()
        why = wait_listening(self._proc, self.port, timeout)
        if why is not None:
            self.stop()
            raise BrokerError(f"mosquitto {why}:\n{self.log}")

    def stop(self) -> None:
        """Kill the broker (as a crash would: clients see their connection drop)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def restart(self) -> None:
        """Kill the broker and start a fresh one on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
