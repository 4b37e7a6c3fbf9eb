"""A private Mosquitto broker on loopback, for tests and `boardmcp bench --gateway`.

Debian's `mosquitto` (`apt-get install mosquitto`; .ci/run installs it) with a generated config:
one MQTT 5 listener on 127.0.0.1, no persistence, anonymous access unless `users` are given,
TLS with `tls=True` (a throwaway CA and a server certificate for 127.0.0.1, made with openssl).

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
    lines (e.g. "max_inflight_messages 1": told to MQTT 5 clients as Receive Maximum). `tls`: the
    listener speaks TLS only, with a server certificate that `ca` (a PEM file) verifies."""

    def __init__(
        self,
        workdir: Path,
        port: int = 0,
        users: dict[str, str] | None = None,
        options: tuple[str, ...] = (),
        tls: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.users = dict(users or {})
        self.options = options
        self.tls = tls
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def ca(self) -> Path:
        """The CA certificate that verifies the broker's (with `tls`), PEM."""
        return self.workdir / "ca.pem"

    @property
    def ca_der(self) -> Path:
        """The same, DER (what a board's mbedtls reads in every build)."""
        return self.workdir / "ca.der"

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
        if self.tls:
            lines += self._certificates()
        lines += self.options
        conf.write_text("\n".join(lines) + "\n")
        log = (self.workdir / "mosquitto.log").open("ab")
        self._proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stdout=log, stderr=log)
        log.close()
        why = wait_listening(self._proc, self.port, timeout)
        if why is not None:
            self.stop()
            raise BrokerError(f"mosquitto {why}:\n{self.log}")

    def _certificates(self) -> list[str]:
        # A CA, and a server certificate it signs for 127.0.0.1 (an IP SAN: clients check it).
        def openssl(*args: str | Path) -> None:
            subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

        d = self.workdir
        if not (d / "server.pem").exists():
            key = ("-newkey", "rsa:2048", "-nodes")
            openssl(
                "req", "-x509", *key, "-keyout", d / "ca.key", "-out", self.ca, "-days", "2", "-subj", "/CN=test CA"
            )
            openssl("req", *key, "-keyout", d / "server.key", "-out", d / "server.csr", "-subj", "/CN=127.0.0.1")
            (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
            openssl(
                "x509", "-req", "-in", d / "server.csr", "-CA", self.ca, "-CAkey", d / "ca.key", "-CAcreateserial",
                "-out", d / "server.pem", "-days", "2", "-extfile", d / "san.ext",
            )  # fmt: skip
            openssl("x509", "-in", self.ca, "-outform", "DER", "-out", self.ca_der)
        return [f"cafile {self.ca}", f"certfile {d / 'server.pem'}", f"keyfile {d / 'server.key'}"]

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
