"""Raw HTTP/1.1 exchanges with a board: exact bytes in, status, headers and JSON out."""

import json
import os
import socket
import struct
from base64 import b64encode
from typing import Any

import serial

from host_tools.emulator.runner import EmulatedBoard


def post(
    board: EmulatedBoard,
    body: bytes | dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    auth: bool = True,
) -> tuple[int, dict[str, str], Any]:
    """POST one body to the board's MCP endpoint on a fresh connection.

    Returns (status, lower-cased headers, decoded JSON body or None).
    """
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if auth and board.token:
        h["Authorization"] = f"Bearer {board.token}"
    h.update(headers or {})
    head = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{board.port}\r\nContent-Length: {len(data)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "Connection: close\r\n\r\n"
    return raw_exchange(board.port, head.encode() + data)


HANDSHAKE = "2025-11-25"


def open_session(board: EmulatedBoard, version: str = HANDSHAKE) -> dict[str, str]:
    """Initialize a handshake-era session; return the headers later requests must carry."""
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "wire", "version": "1"}},
    }
    status, headers, reply = post(board, init)
    assert status == 200 and reply["result"]["protocolVersion"] == version, reply
    return {"Mcp-Session-Id": headers["mcp-session-id"], "MCP-Protocol-Version": version}


def raw_exchange(port: int, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], Any]:
    """Send raw bytes, read the response until the server closes; parse status, headers, JSON."""
    return parse_response(exchange(port, request, timeout))


def exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes on a new connection; return what comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return read_until_closed(s)


def read_until_closed(s: socket.socket, *, reset_ends: bool = False) -> bytes:
    """What the peer sends until it closes; with reset_ends, a reset ends it too (keeping what
    came before) instead of raising ConnectionResetError."""
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        if not reset_ends:
            raise
    return data


def parse_response(data: bytes) -> tuple[int, dict[str, str], Any]:
    """Split one HTTP response into (status, lower-cased headers, body).

    The body is the decoded JSON (None when empty) or, for an SSE response, the list of
    JSON-RPC messages its events carried, in order.
    """
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    if headers.get("content-type") == "text/event-stream":
        return status, headers, sse_messages(body)
    length = int(headers.get("content-length", len(body)))
    return status, headers, json.loads(body[:length]) if length else None


def dechunk(body: bytes) -> bytes:
    """Undo HTTP/1.1 chunked transfer coding (up to the last chunk received)."""
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2 :]
    return out


def sse_messages(body: bytes) -> list[Any]:
    """The JSON messages of an SSE stream's `data:` lines (comments and other fields skipped)."""
    return [json.loads(line[5:]) for line in body.split(b"\r\n") if line.startswith(b"data:") and line[5:].strip()]


def request_bytes(
    board: EmulatedBoard,
    body: bytes | dict[str, Any] | None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> bytes:
    """One HTTP/1.1 request to the MCP endpoint (keep-alive), with auth and the usual headers."""
    data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    h = {"Host": f"127.0.0.1:{board.port}", "Accept": "application/json, text/event-stream"}
    if body is not None:
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(data))
    if board.token:
        h["Authorization"] = f"Bearer {board.token}"
    h.update(headers or {})
    head = f"{method} /mcp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return head.encode() + data


class Stream:
    """A connection that reads responses incrementally: one JSON response, or SSE events as
    they arrive (chunked), so tests can act while a stream is open."""

    def __init__(self, board: EmulatedBoard, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", board.port), timeout=timeout)
        self.board = board
        self.buf = b""
        self.status = 0
        self.headers: dict[str, str] = {}

    def send(self, body: bytes | dict[str, Any] | None, headers: dict[str, str] | None = None, method: str = "POST"):
        """Send one request; read the status line and headers of its response."""
        self.sock.sendall(request_bytes(self.board, body, headers, method))
        head = self._until(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        return self

    def json(self) -> Any:
        """The body of a Content-Length response, decoded."""
        length = int(self.headers["content-length"])
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return json.loads(body) if length else None

    def event(self) -> Any | None:
        """The next SSE event's JSON message; None when the stream ended (last chunk)."""
        while True:
            size = int(self._until(b"\r\n"), 16)
            if size == 0:
                self._until(b"\r\n")
                return None
            while len(self.buf) < size + 2:
                self._fill()
            chunk, self.buf = self.buf[:size], self.buf[size + 2 :]
            data = [line[5:] for line in chunk.split(b"\r\n") if line.startswith(b"data:")]
            if data and data[0].strip():
                return json.loads(data[0])

    def closed(self) -> bool:
        """True when the server has closed the connection (after what is buffered)."""
        try:
            return not self.sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            return False

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        out, _, self.buf = self.buf.partition(marker)
        return out


# -- WebSocket, by hand ---------------------------------------------------------------------------


def ws_upgrade(board: EmulatedBoard, extra: str = "") -> tuple[socket.socket, bytes]:
    """Open /ws with a raw socket; return it and what the board sent (its response head first)."""
    s = socket.create_connection(("127.0.0.1", board.port), timeout=10)
    key = b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{board.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {board.token}\r\n"
            f"{extra}\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    return s, head + b"\r\n\r\n" + rest


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = b"\x11\x22\x33\x44") -> bytes:
    """One client frame (masked unless mask is None)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    masked = 0x80 if mask else 0
    head = struct.pack("!BB", b0, masked | n) if n < 126 else struct.pack("!BBH", b0, masked | 126, n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _ws_frame(s: socket.socket, data: bytes) -> tuple[int, bytes, bytes]:
    # (first byte: FIN and opcode, payload, bytes read past the frame) of the next frame.

    def need(n: int) -> bytes:
        nonlocal data
        while len(data) < n:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        return data

    n = need(2)[1] & 0x7F
    start = 2
    if n == 126:
        n, start = int.from_bytes(need(4)[2:4]), 4
    elif n == 127:
        n, start = int.from_bytes(need(10)[2:10]), 10
    need(start + n)
    return data[0] & 0x8F, data[start : start + n], data[start + n :]


def ws_read_frame(s: socket.socket, data: bytes) -> tuple[int, bytes, bytes]:
    """(opcode, payload, bytes read past the frame) of the next frame from the board."""
    b0, payload, rest = _ws_frame(s, data)
    return b0 & 0x0F, payload, rest


def ws_read_message(s: socket.socket, data: bytes) -> tuple[int, bytes, int, bytes]:
    """(opcode, payload, frames, bytes read past it) of the next message or control frame from
    the board, a fragmented message reassembled. Fails if another message's frames come
    between its fragments (RFC 6455 section 5.4 allows only control frames there)."""
    b0, payload, data = _ws_frame(s, data)
    opcode, frames = b0 & 0x0F, 1
    if opcode >= 8:
        return opcode, payload, frames, data
    assert opcode in (1, 2), f"a message starts with opcode {opcode}"
    fin = b0 & 0x80
    while not fin:
        b0, more, data = _ws_frame(s, data)
        if b0 & 0x0F >= 8:
            continue  # a control frame between fragments (a ping the test does not answer)
        assert b0 & 0x0F == 0, f"opcode {b0 & 0x0F} inside a fragmented message, after {payload[:200]!r}"
        fin = b0 & 0x80
        payload += more
        frames += 1
    return opcode, payload, frames, data


# -- the serial console ----------------------------------------------------------------------------


class Console:
    """The board's console as a line-oriented JSON-RPC peer that skips everything else."""

    def __init__(self, path: str) -> None:
        self.port = serial.Serial(path, timeout=10)
        self.port.reset_input_buffer()
        self.skipped: list[bytes] = []

    def send(self, data: bytes | dict[str, Any]) -> None:
        self.port.write((data if isinstance(data, bytes) else json.dumps(data).encode()) + b"\n")

    def receive(self) -> dict[str, Any]:
        while True:
            line = self.port.readline()
            assert line.endswith(b"\n"), f"no line within the timeout; skipped {self.skipped}"
            try:
                msg = json.loads(line)
            except ValueError:
                self.skipped.append(line)
                continue
            if isinstance(msg, dict) and msg.get("jsonrpc") == "2.0":
                return msg
            self.skipped.append(line)

    def call(self, method: str, params: dict[str, Any] | None = None, rid: Any = 1) -> dict[str, Any]:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return self.receive()

    def close(self) -> None:
        self.port.close()
