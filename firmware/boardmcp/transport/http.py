"""Streamable HTTP transport: HTTP/1.1 with keep-alive on asyncio, MCP on POST /mcp.

Reads each request in chunks into one per-connection buffer, parses it in place and
answers with a single write (a separate header write stalls keep-alive clients on
Nagle + delayed ACK). Every read has a deadline, so a slow client stalls only itself.

    http = HTTPServer(server, guard, "0.0.0.0", 80, request_timeout_ms=10000, idle_timeout_ms=30000)
    await http.start()
"""

import asyncio
import gc
import json
import sys
import time

from micropython import const

from .. import jsonrpc
from ..jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, Error

BUF_SIZE = const(2048)  # request line + headers must fit; small bodies are parsed in place
MAX_HEADERS = const(32)
MAX_BODY = const(8192)  # a larger body needs a contiguous block a small heap may not have
CHUNK = const(1024)  # streamed responses go out in chunks of about this size
MAX_CONNECTIONS = const(8)
LINGER_MS = const(1000)  # draining unread input after a refusal, before closing
MAX_BATCH = const(16)  # messages in one 2025-03-26 batch
MAX_STREAMS = const(3)  # open GET streams; each holds a connection
STREAM_KEEPALIVE_MS = const(15000)

_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n"
)
_CLOSE_RETRY = b"Connection: close\r\nRetry-After: 1\r\n"
_SCRATCH = bytearray(16)  # idle streams read into this only to notice the client leaving

_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
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


class _NoSession(Exception):
    # A handshake-era request without a live session: 400 (none named) or 404 (unknown, ended).
    def __init__(self, status, reason):
        self.status = status
        self.reason = reason


def _problem(reason):
    # Body of an HTTP-level refusal: a JSON-RPC error without id, as the MCP spec allows.
    return jsonrpc.error(None, INVALID_REQUEST, reason)


class HTTPServer:
    """Serves MCP over Streamable HTTP on one path."""

    def __init__(self, server, guard, host, port, path="/mcp", request_timeout_ms=10000, idle_timeout_ms=30000):
        self.server = server
        self.request_timeout_ms = request_timeout_ms  # from the first byte to the last of one request
        self.idle_timeout_ms = idle_timeout_ms  # keep-alive wait for the next request
        self.guard = guard
        self.host = host
        self.port = port
        self.path = path
        self.active = 0
        self.streams = 0
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
            try:
                await _send(writer, 503, _problem("Too many connections; retry shortly"), _CLOSE_RETRY)
                await _discard_input(reader, memoryview(_SCRATCH))
            except OSError:
                pass
            await _close(writer)
            return
        self.active += 1
        filled = 0
        _no_delay(writer)
        try:
            buf = bytearray(BUF_SIZE)
            mv = memoryview(buf)
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
        except MemoryError:
            # Not even a buffer for this connection: refuse it, and let the others go on.
            gc.collect()
            try:
                await _send(writer, 503, _problem("Out of memory on the board; retry"), b"Connection: close\r\n")
            except OSError:
                pass
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
                wait = self.idle_timeout_ms if filled == 0 else self.request_timeout_ms
            else:
                wait = time.ticks_diff(deadline, time.ticks_ms())
            n = await _read_into(reader, mv[filled:], wait)
            if n == 0:
                if filled:
                    raise _Closed()
                return -1
            if deadline is None:
                deadline = time.ticks_add(time.ticks_ms(), self.request_timeout_ms)
            filled += n
            head_end = buf.find(b"\r\n\r\n", max(0, filled - n - 3), filled)
        if deadline is None:
            deadline = time.ticks_add(time.ticks_ms(), self.request_timeout_ms)
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
            body = (buf, body_start, end)
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
            body = (big, 0, length)
            end = filled  # everything buffered belonged to this body

        keep = headers.get("connection", "").lower() != "close"
        keep = await self._dispatch(reader, writer, method, target, headers, body, keep)
        body = None
        # Move any pipelined bytes of the next request to the front of the buffer.
        rest = filled - end
        if rest > 0:
            buf[0:rest] = buf[end:filled]
        return rest if keep else -1

    async def _dispatch(self, reader, writer, method, target, headers, body, keep):
        # Answer one parsed request; return False when the connection must close after it.
        extra = b"" if keep else b"Connection: close\r\n"
        if target == "/ws" or target.startswith("/ws?"):
            gc.collect()  # so the module loads into low holes, not across the largest free block
            from . import ws  # loaded on the first WebSocket client only

            return await ws.upgrade(self, reader, writer, method, headers, body[0])  # GET: body[0] is our buffer
        q = target.find("?")
        if (target if q < 0 else target[:q]) != self.path:
            await _send(writer, 404, _problem("Not found: MCP is served at " + self.path), extra)
            return keep
        refusal = self.guard.check(headers)
        if refusal is not None:
            status, reason = refusal
            if status == 401:
                extra += b'WWW-Authenticate: Bearer realm="boardmcp"\r\n'
            await _send(writer, status, _problem(reason), extra)
            return keep
        modern = self.server.is_modern(headers.get("mcp-protocol-version"))
        if method == "POST":
            return await self._post(reader, writer, headers, body, modern, extra, keep)
        if method == "GET" and not modern:
            return await self._get_stream(reader, writer, headers, extra, keep)
        if method == "DELETE" and not modern:
            return await self._delete(writer, headers, extra, keep)
        # Revision 2026-07-28 has no standalone stream and no sessions: 405 tells clients so.
        allow = b"Allow: POST\r\n" if modern else b"Allow: GET, POST, DELETE\r\n"
        await _send(writer, 405, _problem("Method not allowed"), extra + allow)
        return keep

    def _session(self, headers):
        # Handshake era: the session a request names; _NoSession when it names none or a dead one.
        sid = headers.get("mcp-session-id")
        if sid is None:
            raise _NoSession(400, "Mcp-Session-Id header required: send initialize first")
        session = self.server.find_session(sid)
        if session is None:
            raise _NoSession(404, "Session not found or ended: initialize again")
        return session

    async def _post(self, reader, writer, headers, body, modern, extra, keep):
        ctype = headers.get("content-type", "")
        if not ctype.lower().startswith("application/json"):
            await _send(writer, 415, _problem("Content-Type must be application/json"), extra)
            return keep
        accept = headers.get("accept")
        if accept is not None and not _accepts(accept):
            await _send(writer, 406, _problem("Accept must include application/json and text/event-stream"), extra)
            return keep
        server = self.server
        rid = None
        session = None
        opened = None  # the session this request creates (initialize)
        reply = _Reply(reader, writer, extra)
        try:
            msg, kind = jsonrpc.decode(body[0], body[1], body[2])
            body = None
            if isinstance(msg, list):  # a batch
                status, payload = await self._batch(msg, modern, None if modern else self._session(headers))
                await _send(writer, status, payload, extra)
                return keep
            if kind == jsonrpc.REQUEST:
                rid = msg["id"]
            if not modern:
                if kind == jsonrpc.REQUEST and msg["method"] == "initialize" and "mcp-session-id" not in headers:
                    session = opened = server.new_session()
                else:
                    session = self._session(headers)
            if kind != jsonrpc.REQUEST:
                server.accept(msg, kind == jsonrpc.RESPONSE, modern, session, headers if modern else None)
                await _send(writer, 202, None, extra)
                return keep
            result = await server.handle(msg, modern, session, reply, headers if modern else None)
            if result is None:
                return reply.abandon() and keep  # cancelled: nothing more is sent for it
            if opened is not None:
                reply.extra += b"Mcp-Session-Id: " + opened.id.encode() + b"\r\n"
                opened = None
            payload = jsonrpc.result_pieces(rid, result) if jsonrpc.is_large(result) else jsonrpc.result(rid, result)
            status = 200
        except Error as e:
            status = _MODERN_STATUS.get(e.code, 200) if modern else (400 if e.code in (-32700, -32600) else 200)
            payload = jsonrpc.error(rid if rid is not None else e.id, e.code, e.message, e.data)
        except _NoSession as e:
            status, payload = e.status, jsonrpc.error(rid, INVALID_REQUEST, e.reason)
        except MemoryError:
            body = None
            gc.collect()
            status, payload = 200, jsonrpc.error(rid, INTERNAL_ERROR, "Out of memory on the board; retry")
        except Exception as e:
            sys.print_exception(e)
            status, payload = 200, jsonrpc.error(rid, INTERNAL_ERROR, "Internal error: " + type(e).__name__)
        finally:
            if opened is not None:
                server.end_session(opened.id)  # initialize failed: no session
        await reply.finish(status, payload)
        return keep

    async def _batch(self, items, modern, session):
        # Revision 2025-03-26 lets a POST carry an array of messages; the answers go back as an
        # array in one JSON body (nothing streams), or 202 when nothing needed an answer.
        if modern or session is None or session.version != "2025-03-26":
            raise Error(INVALID_REQUEST, "Invalid request: batches are only allowed on revision 2025-03-26")
        if len(items) > MAX_BATCH:
            raise Error(INVALID_REQUEST, "Invalid request: at most %d messages per batch" % MAX_BATCH)
        answers = []
        for item in items:
            rid = None
            try:
                msg, kind = jsonrpc.classify(item)
                if kind != jsonrpc.REQUEST:
                    self.server.accept(msg, kind == jsonrpc.RESPONSE, False, session)
                    continue
                rid = msg["id"]
                if msg["method"] == "initialize":
                    raise Error(INVALID_REQUEST, "Invalid request: initialize cannot be batched")
                result = await self.server.handle(msg, False, session)
                if result is not None:
                    answers.append(jsonrpc.result(rid, result))
            except Error as e:
                answers.append(jsonrpc.error(rid if rid is not None else e.id, e.code, e.message, e.data))
        if not answers:
            return 202, None
        return 200, b"[" + b",".join(answers) + b"]"

    async def _get_stream(self, reader, writer, headers, extra, keep):
        # Handshake era: the session's standalone SSE stream for server-initiated messages.
        try:
            session = self._session(headers)
        except _NoSession as e:
            await _send(writer, e.status, _problem(e.reason), extra)
            return keep
        if "text/event-stream" not in headers.get("accept", "text/event-stream"):
            await _send(writer, 406, _problem("Accept must include text/event-stream"), extra)
            return keep
        if session.stream is not None:
            await _send(writer, 409, _problem("This session already has a GET stream"), extra)
            return keep
        if self.streams >= MAX_STREAMS:
            await _send(writer, 503, _problem("Too many open streams; retry later"), extra + b"Retry-After: 5\r\n")
            return keep
        reply = _Reply(reader, writer, b"Connection: close\r\n")
        self.streams += 1
        session.stream = reply
        try:
            await reply.open()
            while not session.ended:
                if await reply.idle(STREAM_KEEPALIVE_MS):
                    break
        finally:
            self.streams -= 1
            if session.stream is reply:
                session.stream = None
        await reply.finish(0, None)
        return False

    async def _delete(self, writer, headers, extra, keep):
        try:
            self.server.end_session(self._session(headers).id)
            await _send(writer, 200, None, extra)
        except _NoSession as e:
            await _send(writer, e.status, _problem(e.reason), extra)
        return keep


class _Reply:
    """One request's way back: a JSON response, or an SSE stream (chunked, so the connection
    stays reusable) from the first message sent ahead of the result. It is the `out` that the
    server hands to handlers (see context.py)."""

    def __init__(self, reader, writer, extra):
        self.reader = reader
        self.writer = writer
        self.extra = extra
        self.sse = False
        self._waiter = None

    async def open(self):
        """Commit to SSE: send the status line and headers."""
        self.sse = True
        self.writer.write(_SSE_HEAD + self.extra + b"\r\n")
        await self.writer.drain()

    async def send(self, msg):
        """Write one JSON-RPC message as an SSE event."""
        if not self.sse:
            self.sse = True
            self.writer.write(_SSE_HEAD + self.extra + b"\r\n" + _chunk(_event(json.dumps(msg))))
        else:
            self.writer.write(_chunk(_event(json.dumps(msg))))
        await self.writer.drain()

    async def idle(self, ms):
        """Wait up to ms for the client to leave; else send an SSE comment to keep the stream
        (and NAT and proxies) alive. True when the client is gone or stop() was called."""
        self._waiter = asyncio.current_task()
        try:
            n = await asyncio.wait_for_ms(self.reader.readinto(_SCRATCH), ms)
        except asyncio.TimeoutError:
            self.writer.write(_chunk(b": keep-alive\r\n\r\n"))
            await self.writer.drain()
            return False
        except (asyncio.CancelledError, OSError):
            return True
        finally:
            self._waiter = None
        return n == 0

    def stop(self):
        """End a pending idle() now (the session or subscription is over)."""
        if self._waiter is not None:
            self._waiter.cancel()

    def abandon(self):
        """A cancelled request: end its SSE stream, or drop the connection if nothing was sent."""
        if self.sse:
            self.writer.write(b"0\r\n\r\n")
            return True
        return False

    async def finish(self, status, payload):
        """Send the final response (bytes, or str pieces to stream): as the last SSE event if
        streaming, else as JSON."""
        if not self.sse:
            if isinstance(payload, (bytes, bytearray)):
                await _send(self.writer, status, payload, self.extra)
            elif payload is not None:
                await _send_pieces(self.writer, status, payload, self.extra)
            return
        if payload is not None and not isinstance(payload, (bytes, bytearray)):
            payload = "".join(payload)
        last = _chunk(_event(payload)) if payload is not None else b""
        self.writer.write(last + b"0\r\n\r\n")
        await self.writer.drain()


def _no_delay(writer):
    # Streamed responses are several writes; without TCP_NODELAY, Nagle's algorithm holds the
    # last one back until the client's delayed ACK (~40 ms). IPPROTO_TCP=6, TCP_NODELAY=1.
    try:
        writer.s.setsockopt(6, 1, 1)  # pyright: ignore[reportAttributeAccessIssue]
    except (AttributeError, OSError):
        pass


def _accepts(accept):
    accept = accept.lower()
    for t in ("application/json", "text/event-stream", "*/*", "application/*"):
        if t in accept:
            return True
    return False


def _event(data):
    if isinstance(data, str):
        data = data.encode()
    return b"event: message\r\ndata: " + data + b"\r\n\r\n"


def _chunk(data):
    return ("%x\r\n" % len(data)).encode() + data + b"\r\n"


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


async def _send_pieces(writer, status, pieces, extra):
    # A large JSON response, chunked: pieces are gathered into chunks of about CHUNK bytes, so
    # the biggest allocation is one chunk (or one list item), never the whole response.
    head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n" % (
        status,
        _REASONS.get(status, ""),
    )
    writer.write(head.encode() + extra + b"\r\n")
    acc = bytearray()
    for piece in pieces:
        acc.extend(piece.encode())
        if len(acc) >= CHUNK:
            writer.write(_chunk(acc))
            await writer.drain()
            acc = bytearray()
    writer.write(_chunk(acc) + b"0\r\n\r\n")
    await writer.drain()


async def _close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except OSError:
        pass
