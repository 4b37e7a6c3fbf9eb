"""Streamable HTTP transport: HTTP/1.1 with keep-alive on asyncio, MCP on POST /mcp.

Reads each request in chunks into one per-connection buffer, parses it in place and
answers with a single write (a separate header write stalls keep-alive clients on
Nagle + delayed ACK). Every read has a deadline, so a slow client stalls only itself.

    http = HTTPServer(server, guard, "0.0.0.0", 80)
    await http.start()
"""

import asyncio
import gc
import sys
import time

from micropython import const

from .. import jsonrpc
from ..jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, Error

BUF_SIZE = const(2048)  # request line + headers must fit; small bodies are parsed in place
MAX_HEADERS = const(32)
MAX_BODY = const(16384)
MAX_CONNECTIONS = const(8)
REQUEST_TIMEOUT_MS = const(10000)  # from the first byte to the last of one request
IDLE_TIMEOUT_MS = const(30000)  # keep-alive wait for the next request
LINGER_MS = const(1000)  # draining unread input after a refusal, before closing

_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    503: "Service Unavailable",
}

# Modern-era JSON-RPC errors carry their own HTTP status (the handshake era uses 200
# for everything but unreadable bodies).
_MODERN_STATUS = {-32700: 400, -32600: 400, -32601: 404, -32602: 400, -32020: 400, -32021: 400, -32022: 400}


class _Reject(Exception):
    # An HTTP-level refusal; the connection is closed after it is sent.
    def __init__(self, status, reason):
        self.status = status
        self.reason = reason


class _Closed(Exception):
    pass


def _problem(reason):
    # Body of an HTTP-level refusal: a JSON-RPC error without id, as the MCP spec allows.
    return jsonrpc.error(None, INVALID_REQUEST, reason)


class HTTPServer:
    """Serves MCP over Streamable HTTP on one path."""

    def __init__(self, server, guard, host, port, path="/mcp"):
        self.server = server
        self.guard = guard
        self.host = host
        self.port = port
        self.path = path
        self.active = 0
        self._listener = None

    async def start(self):
        """Bind and start accepting connections."""
        self._listener = await asyncio.start_server(self._serve_connection, self.host, self.port, backlog=4)

    def close(self):
        """Stop accepting connections."""
        if self._listener is not None:
            self._listener.close()

    async def _serve_connection(self, reader, writer):
        if self.active >= MAX_CONNECTIONS:
            await _send(writer, 503, _problem("Too many connections; retry shortly"), b"Connection: close\r\n")
            await _close(writer)
            return
        self.active += 1
        buf = bytearray(BUF_SIZE)
        mv = memoryview(buf)
        filled = 0
        try:
            while True:
                try:
                    filled = await self._one_request(reader, writer, buf, mv, filled)
                except _Reject as r:
                    await _send(writer, r.status, _problem(r.reason), b"Connection: close\r\n")
                    await _discard_input(reader, mv)
                    break
                if filled < 0:
                    break
        except (_Closed, OSError, asyncio.TimeoutError):
            pass  # the client went away or stalled: nothing to answer
        finally:
            self.active -= 1
            await _close(writer)

    async def _one_request(self, reader, writer, buf, mv, filled):
        # Serve one request; return how many bytes of the next one are already buffered,
        # or -1 to close the connection.
        head_end = buf.find(b"\r\n\r\n", 0, filled) if filled else -1
        deadline = None
        while head_end < 0:
            if filled == BUF_SIZE:
                raise _Reject(431, "Request header fields too large")
            if deadline is None:
                wait = IDLE_TIMEOUT_MS if filled == 0 else REQUEST_TIMEOUT_MS
            else:
                wait = time.ticks_diff(deadline, time.ticks_ms())
            n = await _read_into(reader, mv[filled:], wait)
            if n == 0:
                if filled:
                    raise _Closed()
                return -1
            if deadline is None:
                deadline = time.ticks_add(time.ticks_ms(), REQUEST_TIMEOUT_MS)
            filled += n
            head_end = buf.find(b"\r\n\r\n", max(0, filled - n - 3), filled)
        if deadline is None:
            deadline = time.ticks_add(time.ticks_ms(), REQUEST_TIMEOUT_MS)
        method, target, headers = _parse_head(buf, head_end)
        body_start = head_end + 4

        if "transfer-encoding" in headers:
            raise _Reject(501, "Chunked request bodies are not supported; send Content-Length")
        length = headers.get("content-length")
        try:
            length = int(length) if length is not None else 0
        except ValueError:
            raise _Reject(400, "Invalid Content-Length")
        if length < 0:
            raise _Reject(400, "Invalid Content-Length")
        if length > MAX_BODY:
            # Refused unread: the body is never pulled into memory.
            raise _Reject(413, "Request body larger than %d bytes" % MAX_BODY)

        end = body_start + length
        if end <= BUF_SIZE:
            while filled < end:
                n = await _read_into(reader, mv[filled:], time.ticks_diff(deadline, time.ticks_ms()))
                if n == 0:
                    raise _Closed()
                filled += n
            body = mv[body_start:end]
        else:
            big = bytearray(length)
            have = filled - body_start
            big[:have] = mv[body_start:filled]  # end > BUF_SIZE >= filled: all of it is body
            bmv = memoryview(big)
            while have < length:
                n = await _read_into(reader, bmv[have:], time.ticks_diff(deadline, time.ticks_ms()))
                if n == 0:
                    raise _Closed()
                have += n
            body = bmv
            end = filled  # everything buffered belonged to this body

        keep = headers.get("connection", "").lower() != "close"
        await self._dispatch(writer, method, target, headers, body, keep)
        body = None
        # Move any pipelined bytes of the next request to the front of the buffer.
        rest = filled - end
        if rest > 0:
            buf[0:rest] = buf[end:filled]
        return rest if keep else -1

    async def _dispatch(self, writer, method, target, headers, body, keep):
        extra = b"" if keep else b"Connection: close\r\n"
        q = target.find("?")
        if (target if q < 0 else target[:q]) != self.path:
            await _send(writer, 404, _problem("Not found: MCP is served at " + self.path), extra)
            return
        refusal = self.guard.check(headers)
        if refusal is not None:
            status, reason = refusal
            if status == 401:
                extra += b'WWW-Authenticate: Bearer realm="boardmcp"\r\n'
            await _send(writer, status, _problem(reason), extra)
            return
        if method != "POST":
            # No standalone SSE stream yet: 405 tells clients to go on without one.
            await _send(writer, 405, _problem("Use POST"), extra + b"Allow: POST\r\n")
            return
        ctype = headers.get("content-type", "")
        if not ctype.lower().startswith("application/json"):
            await _send(writer, 415, _problem("Content-Type must be application/json"), extra)
            return
        status, payload = self._mcp(headers, body)
        await _send(writer, status, payload, extra)

    def _mcp(self, headers, body):
        # One POSTed JSON-RPC message -> (HTTP status, response body or None for 202).
        modern = self.server.is_modern(headers.get("mcp-protocol-version"))
        rid = None
        try:
            msg, kind = jsonrpc.decode(body)
            if kind != jsonrpc.REQUEST:
                self.server.accept(msg, kind == jsonrpc.RESPONSE, modern, headers)
                return 202, None
            rid = msg["id"]
            return 200, jsonrpc.result(rid, self.server.handle(msg, modern, headers))
        except Error as e:
            status = _MODERN_STATUS.get(e.code, 200) if modern else (400 if e.code in (-32700, -32600) else 200)
            return status, jsonrpc.error(rid if rid is not None else e.id, e.code, e.message, e.data)
        except MemoryError:
            gc.collect()
            return 200, jsonrpc.error(rid, INTERNAL_ERROR, "Out of memory on the board; retry")
        except Exception as e:
            sys.print_exception(e)
            return 200, jsonrpc.error(rid, INTERNAL_ERROR, "Internal error: " + type(e).__name__)


def _parse_head(buf, head_end):
    # Request line and headers -> (method, target, {lower-cased name: value}). A repeated
    # header is joined with ", " (RFC 9110), so a duplicated routing header never matches.
    lines = bytes(buf[:head_end]).split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise _Reject(400, "Malformed request line")
    if len(lines) - 1 > MAX_HEADERS:
        raise _Reject(431, "Too many header fields (at most %d)" % MAX_HEADERS)
    headers = {}
    try:
        for line in lines[1:]:
            i = line.find(b":")
            if i <= 0:
                raise _Reject(400, "Malformed header line")
            name = line[:i].strip().lower().decode()
            value = line[i + 1 :].strip().decode()
            old = headers.get(name)
            headers[name] = value if old is None else old + ", " + value
        return parts[0].decode(), parts[1].decode(), headers
    except UnicodeError:
        raise _Reject(400, "Header fields must be ASCII/UTF-8")


async def _read_into(reader, mv, timeout_ms):
    if timeout_ms <= 0:
        raise asyncio.TimeoutError()
    return await asyncio.wait_for_ms(reader.readinto(mv), timeout_ms)


async def _discard_input(reader, mv):
    # Closing with unread input makes the kernel send RST, which can destroy the refusal we
    # just sent before the client reads it. Drain briefly (bounded in time) first.
    deadline = time.ticks_add(time.ticks_ms(), LINGER_MS)
    try:
        while await _read_into(reader, mv, min(200, time.ticks_diff(deadline, time.ticks_ms()))):
            pass
    except (OSError, asyncio.TimeoutError):
        pass


async def _send(writer, status, payload, extra=b""):
    # One write per response: status line, headers and body leave together.
    if payload is None:
        head = "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n" % (status, _REASONS.get(status, ""))
        writer.write(head.encode() + extra + b"\r\n")
    else:
        head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
            status,
            _REASONS.get(status, ""),
            len(payload),
        )
        writer.write(head.encode() + extra + b"\r\n" + payload)
    await writer.drain()


async def _close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except OSError:
        pass
