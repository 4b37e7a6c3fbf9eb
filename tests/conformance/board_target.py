"""The board under test, however it is reached: an emulated board this run starts, a board on the
LAN (http://HOST[:PORT]), or a board on a serial console (serial:/dev/tty...).

    target = Target.parse("http://192.168.1.23", token="s3cret", profile=load_profile("esp32s3"))
    with target.client("ws", "modern") as c:
        c.request("tools/list")
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from board_client import Client

from host_tools.bridge import HTTPLink, Link, SerialLink, WebSocketLink, with_path
from host_tools.profiles import Profile

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class Target:
    """Where the board is: `url` (its MCP endpoint over HTTP; WebSocket beside it at /ws) and/or a
    serial `port`; its bearer `token` (None: sent none); the `profile` it was deployed with."""

    kind: str  # emulated, http, serial
    profile: Profile
    url: str | None = None
    port: str | None = None
    token: str | None = None
    destructive: bool = False  # checks that drive outputs may run

    @classmethod
    def parse(cls, spec: str, profile: Profile, token: str | None, destructive: bool = False) -> Target:
        """A target from `--target` (not `emulated`, which the fixture starts itself)."""
        if spec.startswith(("http://", "https://")):
            return cls("http", profile, url=with_path(spec, "/mcp"), token=token, destructive=destructive)
        if spec.startswith("serial:"):
            return cls("serial", profile, port=spec.removeprefix("serial:"), destructive=destructive)
        raise ValueError(f"--target must be emulated, http://HOST[:PORT] or serial:/dev/tty..., not {spec!r}")

    @property
    def transports(self) -> tuple[str, ...]:
        """The transports this target offers: HTTP and WebSocket with a URL, serial with a port."""
        return (("http", "ws") if self.url else ()) + (("serial",) if self.port else ())

    @property
    def local(self) -> bool:
        """The HTTP endpoint is on this machine."""
        return self.url is not None and urlsplit(self.url).hostname in LOCAL_HOSTS

    @property
    def host_port(self) -> tuple[str, int]:
        """The HTTP endpoint's host and port."""
        assert self.url is not None
        parts = urlsplit(self.url)
        return parts.hostname or "", parts.port or 80

    def link(self, transport: str) -> Link:
        """A fresh bridge link to the board over `transport`."""
        if transport == "http":
            assert self.url is not None
            return HTTPLink(self.url, self.token, log=lambda _m: None)
        if transport == "ws":
            assert self.url is not None
            parts = urlsplit(self.url)
            return WebSocketLink(f"ws://{parts.netloc}/ws", self.token)
        assert self.port is not None
        return SerialLink(self.port)

    def client(self, transport: str, era: str) -> Client:
        """A connected client over `transport` in `era` (initialized in the handshake era)."""
        return Client.open(self.link(transport), transport, era)

    # -- raw HTTP, for what a well-behaved client never sends ------------------------------------

    def http(
        self,
        body: bytes | dict[str, Any] | None,
        headers: dict[str, str] | None = None,
        *,
        method: str = "POST",
        auth: bool = True,
        path: str | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One HTTP/1.1 request on a fresh connection, exactly as given (plus Host, auth and the
        usual headers unless `headers` overrides them). Returns (status, lower-cased headers, JSON
        body or None; for an SSE reply, the list of its messages)."""
        host, port = self.host_port
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        h = {"Host": f"{host}:{port}", "Accept": "application/json, text/event-stream"}
        if body is not None:
            h |= {"Content-Type": "application/json", "Content-Length": str(len(data))}
        if auth and self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h |= headers or {}
        h["Connection"] = "close"
        head = f"{method} {path or urlsplit(self.url or '').path} HTTP/1.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        return self.exchange(head.encode() + data)

    def exchange(self, request: bytes, timeout: float = 15) -> tuple[int, dict[str, str], Any]:
        """Send raw bytes; read the response until the board closes the connection."""
        with socket.create_connection(self.host_port, timeout=timeout) as s:
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return _parse_response(data)


def _parse_response(data: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    if headers.get("content-type", "").startswith("text/event-stream"):
        events = [line[5:] for line in body.split(b"\n") if line.startswith(b"data:") and line[5:].strip()]
        return status, headers, [json.loads(e) for e in events]
    length = int(headers.get("content-length", len(body)))
    return status, headers, json.loads(body[:length]) if length else None


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out
