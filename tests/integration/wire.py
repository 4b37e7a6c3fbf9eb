"""Raw HTTP/1.1 exchanges with a board: exact bytes in, status, headers and JSON out."""

import json
import socket
from typing import Any

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
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return parse_response(data)


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
