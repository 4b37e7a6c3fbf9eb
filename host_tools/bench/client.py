"""One fast client for every server the bench measures: raw HTTP/1.1 on loopback sockets.

Requests are built once as bytes (`Speaker`), then `run_series` replays them from one thread
with a selector, so the client costs the same few microseconds per request against every server:

    speaker = Speaker(Endpoint(port, token), MODERN)
    speaker.open()
    series = run_series(port, [[speaker.call("system_info")]], count=1000)
    series.median_ms, series.p99_ms, series.rate
"""

from __future__ import annotations

import json
import selectors
import socket
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MODERN = "2026-07-28"
HANDSHAKE = "2025-11-25"
_META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
_IS_ERROR = (b'"isError": true', b'"isError":true')


class BenchClientError(RuntimeError):
    """A server answered something other than a successful MCP result."""


@dataclass(frozen=True)
class Endpoint:
    """Where an MCP server listens on loopback, and its bearer token (None: no auth)."""

    port: int
    token: str | None
    path: str = "/mcp"


class Speaker:
    """Builds the exact request bytes for one endpoint in one protocol era.

    The modern era (2026-07-28) carries `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and the
    `params._meta` envelope on every request; the handshake era needs `open()` first, which runs
    `initialize` and keeps the `Mcp-Session-Id` it returns (stateless servers return none).
    """

    def __init__(self, endpoint: Endpoint, era: str) -> None:
        self.endpoint = endpoint
        self.era = era
        self.session: str | None = None

    def open(self) -> None:
        """Start talking: the handshake era's `initialize` + `notifications/initialized`."""
        if self.era == MODERN:
            return
        deadline = time.perf_counter() + 3.0
        while (answer := exchange_once(self.endpoint.port, self.hello()))[0] == 503 and time.perf_counter() < deadline:
            time.sleep(0.02)
        status, head, body = answer
        check_result(status, body)
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"mcp-session-id":
                self.session = value.strip().decode()
        note = self.request("notifications/initialized", None, rid=None)
        status, _, _ = exchange_once(self.endpoint.port, note)
        if status != 202:
            raise BenchClientError(f"notifications/initialized got HTTP {status}")

    def hello(self, rid: int = 1, *, close: bool = False) -> bytes:
        """The era's first request: `server/discover` (modern) or `initialize` (handshake)."""
        if self.era == MODERN:
            return self.request("server/discover", {}, rid, close=close)
        params = {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
        return self.request("initialize", params, rid, close=close)

    def call(self, tool: str, arguments: dict[str, Any] | None = None, rid: int = 1) -> bytes:
        """A `tools/call` of `tool`."""
        return self.request("tools/call", {"name": tool, "arguments": arguments or {}}, rid)

    def request(self, method: str, params: dict[str, Any] | None, rid: int | None = 1, *, close: bool = False) -> bytes:
        """One POST carrying a JSON-RPC request (or a notification when `rid` is None)."""
        headers = ["Content-Type: application/json", "Accept: application/json, text/event-stream"]
        if self.endpoint.token:
            headers.append(f"Authorization: Bearer {self.endpoint.token}")
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if rid is not None:
            message["id"] = rid
        if self.era == MODERN:
            headers += [f"MCP-Protocol-Version: {MODERN}", f"Mcp-Method: {method}"]
            if method == "tools/call" and params:
                headers.append(f"Mcp-Name: {params['name']}")
            message["params"] = {**(params or {}), "_meta": _META}
        else:
            if method != "initialize":
                headers.append(f"MCP-Protocol-Version: {HANDSHAKE}")
                if self.session:
                    headers.append(f"Mcp-Session-Id: {self.session}")
            if params is not None:
                message["params"] = params
        body = json.dumps(message, separators=(",", ":")).encode()
        if close:
            headers.append("Connection: close")
        head = f"POST {self.endpoint.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.endpoint.port}\r\n"
        head += f"Content-Length: {len(body)}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n"
        return head.encode() + body


def parse_response(buf: bytearray) -> tuple[int, bytes, bytes, int, bool] | None:
    """One complete response at the start of `buf`: (status, head, body, bytes used, server closes),
    or None while incomplete. Handles Content-Length and chunked bodies."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end])
    lower = head.lower()
    start = end + 4
    at = lower.find(b"\ncontent-length:")
    if at >= 0:
        eol = lower.find(b"\r", at + 16)
        stop = start + int(lower[at + 16 : eol if eol >= 0 else None])
        if len(buf) < stop:
            return None
        body = bytes(buf[start:stop])
    elif b"transfer-encoding: chunked" in lower:
        last = buf.find(b"0\r\n\r\n", start)
        if last < 0:
            return None
        stop = last + 5
        body = _dechunk(bytes(buf[start:stop]))
    else:
        stop, body = start, b""
    return int(head[9:12]), head, body, stop, b"\nconnection: close" in lower


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def is_success(status: int, body: bytes) -> bool:
    """A cheap check for the timed loop: HTTP 200 with a JSON-RPC result that is no tool error."""
    return status == 200 and b'"result"' in body and not any(e in body for e in _IS_ERROR)


def check_result(status: int, body: bytes) -> dict[str, Any]:
    """Decode a response fully; raise BenchClientError unless it is a successful result."""
    text = body.decode(errors="replace")
    if body.startswith((b"event:", b"data:", b"id:", b":")):
        lines = [line[5:] for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
        text = lines[-1] if lines else "{}"
    reply = json.loads(text) if text.strip() else {}
    result = reply.get("result")
    if status != 200 or not isinstance(result, dict) or result.get("isError"):
        raise BenchClientError(f"HTTP {status}: {text[:300]}")
    return result


def exchange_once(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, bytes, bytes]:
    """Send one request on a fresh connection; return (status, head, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(request)
        buf = bytearray()
        while (parsed := parse_response(buf)) is None:
            chunk = s.recv(65536)
            if not chunk:
                raise BenchClientError(f"connection closed after {len(buf)} bytes")
            buf += chunk
    return parsed[0], parsed[1], parsed[2]


def exchange_checked(port: int, request: bytes, settle: float = 3.0) -> dict[str, Any]:
    """One request on a fresh connection, decoded and checked. A 503 (the server still holds the
    connections of a previous series) is retried for up to `settle` seconds."""
    deadline = time.perf_counter() + settle
    while True:
        status, _, body = exchange_once(port, request)
        if status != 503 or time.perf_counter() > deadline:
            return check_result(status, body)
        time.sleep(0.02)


@dataclass
class Series:
    """Latencies (ns, one per completed request), failures and wall time of one series."""

    latencies_ns: list[int] = field(default_factory=list)
    failures: int = 0
    wall_s: float = 0.0
    first_failure: str = ""

    @property
    def median_ms(self) -> float:
        """Median latency in milliseconds."""
        return statistics.median(self.latencies_ns) / 1e6 if self.latencies_ns else float("nan")

    @property
    def p99_ms(self) -> float:
        """99th percentile latency in milliseconds."""
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6

    @property
    def rate(self) -> float:
        """Completed requests per second of wall time (the client's own cost included)."""
        return len(self.latencies_ns) / self.wall_s if self.wall_s else 0.0


class _Worker:
    def __init__(self, cycle: Sequence[bytes]) -> None:
        self.cycle = cycle
        self.next = 0
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.t0 = 0


def run_series(
    port: int,
    workers: Sequence[Sequence[bytes]],
    *,
    count: int,
    reconnect: bool = False,
    time_cap: float = 30.0,
    timeout: float = 5.0,
) -> Series:
    """Replay requests until `count` completed (or `time_cap` seconds passed).

    One concurrent client per entry of `workers`, each cycling through its own request bytes on
    one keep-alive connection, or on a new connection per request when `reconnect`. A failed
    request (error, closed connection, `timeout` without an answer) is counted, not retried.
    """
    series = Series()
    sel = selectors.DefaultSelector()
    pending = [_Worker(cycle) for cycle in workers]
    issued = 0

    def send(w: _Worker) -> None:
        nonlocal issued
        issued += 1
        w.t0 = time.perf_counter_ns()
        if w.sock is None:
            w.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            w.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sel.register(w.sock, selectors.EVENT_READ, w)
        w.sock.sendall(w.cycle[w.next % len(w.cycle)])
        w.next += 1

    def drop(w: _Worker) -> None:
        if w.sock is not None:
            sel.unregister(w.sock)
            w.sock.close()
            w.sock = None
        w.buf.clear()

    def fail(w: _Worker, why: str) -> None:
        series.failures += 1
        series.first_failure = series.first_failure or why
        drop(w)

    def proceed(w: _Worker) -> None:
        while issued < count and time.perf_counter() < cap:
            try:
                send(w)
            except OSError as exc:
                fail(w, f"send: {exc}")
            else:
                return
        drop(w)

    if not reconnect:
        # Keep-alive series measure the steady state: connections are opened before the clock starts.
        for w in pending:
            w.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            w.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sel.register(w.sock, selectors.EVENT_READ, w)
    started = time.perf_counter()
    cap = started + time_cap
    for w in pending:
        proceed(w)
    while any(w.sock is not None for w in pending):
        events = sel.select(timeout)
        if not events:
            for w in pending:
                if w.sock is not None:
                    fail(w, f"no answer within {timeout:g} s")
            break
        for key, _ in events:
            w = key.data
            try:
                chunk = w.sock.recv(65536)
            except OSError as exc:
                chunk, why = b"", f"recv: {exc}"
            else:
                why = "connection closed before a complete response"
            if not chunk:
                fail(w, why)
                proceed(w)
                continue
            w.buf += chunk
            parsed = parse_response(w.buf)
            if parsed is None:
                continue
            status, _, body, used, closes = parsed
            series.latencies_ns.append(time.perf_counter_ns() - w.t0)
            if not is_success(status, body):
                series.failures += 1
                series.first_failure = series.first_failure or f"HTTP {status}: {body[:200]!r}"
            del w.buf[:used]
            if reconnect or closes:
                drop(w)
            proceed(w)
    series.wall_s = time.perf_counter() - started
    sel.close()
    return series
