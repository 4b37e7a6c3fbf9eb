"""Find boardmcp boards on the LAN: they announce the mDNS / DNS-SD service `_mcp._tcp`.

    for board in discover(timeout=3.0):
        print(board.hostname, board.url)

`interfaces` limits where the query goes (e.g. ["127.0.0.1"] for emulated boards only).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from zeroconf import InterfaceChoice, ServiceBrowser, ServiceListener, Zeroconf

SERVICE = "_mcp._tcp.local."


@dataclass(frozen=True)
class Found:
    """One board that answered: where its MCP endpoint is and whether it wants a token."""

    hostname: str
    address: str
    port: int
    path: str
    auth: str

    @property
    def url(self) -> str:
        """The MCP endpoint."""
        return f"http://{self.address}:{self.port}{self.path}"


class _Collector(ServiceListener):
    def __init__(self) -> None:
        self.names: list[str] = []
        self.lock = threading.Lock()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self.lock:
            if name not in self.names:
                self.names.append(name)

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.add_service(zc, type_, name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass


def discover(timeout: float = 3.0, interfaces: list[str] | None = None) -> list[Found]:
    """Browse for `_mcp._tcp` for `timeout` seconds; return the boards found, sorted by hostname."""
    zc = Zeroconf(interfaces=interfaces or InterfaceChoice.All)
    try:
        collector = _Collector()
        browser = ServiceBrowser(zc, SERVICE, collector)
        time.sleep(timeout)
        browser.cancel()
        found = []
        with collector.lock:
            names = list(collector.names)
        for name in names:
            info = zc.get_service_info(SERVICE, name, timeout=2000)
            if info is None or not info.port:
                continue
            props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
            addresses = info.parsed_addresses()
            found.append(
                Found(
                    hostname=(info.server or name).removesuffix(".").removesuffix(".local"),
                    address=addresses[0] if addresses else (info.server or "").removesuffix("."),
                    port=info.port,
                    path=props.get("path", "/mcp"),
                    auth=props.get("auth", "bearer"),
                )
            )
        return sorted(found, key=lambda f: f.hostname)
    finally:
        zc.close()
