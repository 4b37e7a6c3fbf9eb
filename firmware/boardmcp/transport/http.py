"""Streamable HTTP transport: HTTP/1.1 with keep-alive on asyncio, MCP on POST /mcp.

Reads each request in chunks into one per-connection buffer, parses it in place and
answers with a single write (a separate header write stalls keep-alive clients on
Nagle + delayed ACK). Every read and write has a deadline, enforced by one reaper task
for all connections, so a slow client stalls only itself and no read allocates a timer.
Connections are taken by an accept loop of its own: one beyond the limit, or one the heap
has no room for, gets a prebuilt 503 and is closed there, with no task or stream made for it.

    http = HTTPServer(server, guard, "0.0.0.0", 80, request_timeout_ms=10000, idle_timeout_ms=30000)
    await http.start()
"""

import asyncio
import gc
import socket
import sys
import time

from micropython import const

from .. import jsonrpc, ratelimit
from ..jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, Error
from ..registry import is_coroutine
from . import buffers

BUF_SIZE = const(2048)  # request line + headers must fit; small bodies are parsed in place
# A fragmented heap may have the bytes for BUF_SIZE but no block that large: a connection then
# gets this much (an MCP client's request head is about 500 B). A head that does not fit it is
# refused as out of memory (503), not as too large (431).
MIN_BUF_SIZE = const(1024)
MAX_HEADERS = const(32)
MAX_BODY = const(8192)  # a larger body needs a contiguous block a small heap may not have
CHUNK = const(1024)  # streamed responses go out in chunks of about this size
MAX_CONNECTIONS = const(8)
LINGER_MS = const(1000)  # draining unread input after a refusal, before closing
MAX_LINGERING = const(8)  # refused connections drained before closing; more are closed at once
BACKLOG = const(4)
ACCEPT_PAUSE_MS = const(10)  # after a failed accept (no socket free): let the others run first
REAP_MS = const(100)  # how often connection deadlines are checked

_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n"
)
_CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
_JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
_EVENT = b"event: message\r\ndata: "
_CLOSE_RETRY = b"Connection: close\r\nRetry-After: 1\r\n"
_SCRATCH = bytearray(16)  # idle streams read into this only to notice the client leaving
_NOTHING = bytearray(0)  # a read into this returns once the socket is readable, taking nothing
# A request's body, as the transport hands it on: None when it is in the connection's buffer
# (after the head: see _decoded), else one of these or a block of its own (a bytearray).
_NO_BODY = b""
_NO_ROOM = bytearray(0)  # a body the heap had no block for, read and dropped (HTTPServer._big_body)


# Reason phrases, after "\n<status> ": one bytes object, where a dict of them cost ~1.5 KB of heap.
_REASONS = (
    b"\n200 OK\n202 Accepted\n400 Bad Request\n401 Unauthorized\n403 Forbidden\n404 Not Found"
    b"\n405 Method Not Allowed\n406 Not Acceptable\n409 Conflict\n413 Content Too Large"
    b"\n415 Unsupported Media Type\n429 Too Many Requests\n431 Request Header Fields Too Large"
    b"\n501 Not Implemented\n503 Service Unavailable\n"
)

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


class Headers:
    """A request's header fields, looked up on demand by lower-case name (bytes).

    Only the fields a request asks for are ever sliced out: a dict of every header would
    cost heap on every request. The head is kept as bytes, where an index is an offset: on a
    str every index-taking find() or startswith() walks the UTF-8 from the start (measured on the
    VM: 10% of a tools/call's instructions). Its field names are lower-cased (check_fields() does
    that in the connection's buffer, before the head is copied out), its values are as sent:
    one copy of the head serves both. Values come back as str. A repeated field is joined
    with ", " (RFC 9110), so a duplicated routing header never matches. Valid while its request
    is being served. A connection reuses one for each of its requests (read(), clear()).
    """

    def __init__(self, head=b"", start=0):
        self.read(head, start)
        # The request line's method and target (_parse_head), its body's length (_body_length)
        # and the MCP era the fields name (HTTPServer._admit), for the transport's use.
        self.method = self.target = None
        self.length = 0
        self.modern = False

    def read(self, head, start):
        """Take a request head (bytes, field names lower-cased); its header lines begin at
        `start` ("\r\n")."""
        self.head = head
        self.start = start + 2

    def clear(self):
        """Let the last request's head go (an idle connection holds none)."""
        self.head = b""
        self.target = None

    # Few locals in each method: a call whose frame fits the C stack allocates nothing.

    def _find(self, name, i):
        # Where the value of the next field called `name` begins (just past its colon), looking
        # from i on; -1 when there is none.
        head = self.head
        n = len(name)
        i = head.find(name, i)
        # A name starts a line and ends at its colon (bytes compare as ints: no constant object).
        while i >= 0 and not (head[i - 1] == 10 and i + n < len(head) and head[i + n] == 58):
            i = head.find(name, i + n)
        return i if i < 0 else i + n + 1

    def get(self, name, default=None):
        """The field's value as str (surrounding whitespace removed), or default when absent."""
        value = self.raw(name)
        return default if value is None else str(value, "utf-8")  # the head is valid UTF-8 (_parse_head)

    def raw(self, name):
        """The field's value as bytes, as get() finds it, or None when absent. A str would cost
        one object more and a search of the interned strings (each about 1% of a tools/call)."""
        i = self._find(name, self.start)
        value = None
        while i >= 0:
            e = self._end(i)
            a = self._skip(i, e)  # a local: nested in the call, it made this frame too big for the C stack
            value = self.head[a:e] if value is None else value + b", " + self.head[a:e]
            i = self._find(name, e)
        return value

    def number(self, name):
        """The value of the field called `name` as an int, making no string: None when there is
        no such field, -1 unless it is one field of decimal digits (RFC 9110's 1*DIGIT)."""
        i = self._only(name)
        if i < 0:
            return None if i == -1 else -1
        e = self._end(i)
        return -1 if i == e else _digits(self.head, i, e)

    def equals(self, name, text):
        """Whether get(name) == text (None: the field is absent), making no string."""
        i = self._find(name, self.start)
        if i < 0 or not isinstance(text, str):
            return i < 0 and text is None
        e = self._end(i)
        i = self._skip(i, e)
        if e - i == len(text) and self._find(name, e) < 0:
            # MicroPython's bytes.startswith() takes a str and compares its UTF-8 bytes; with
            # as many bytes as text has characters, that is the whole comparison.
            return self.head.startswith(text, i)  # pyright: ignore[reportArgumentType]
        return self.get(name) == text  # non-ASCII text, a repeated field, or not equal

    def which(self, name, texts):
        """The index of the first of `texts` (ASCII str) that the field called `name` equals, as
        equals() compares; -1 when it equals none, None when there is no such field. One look
        for the field, however many texts."""
        i = self._only(name)
        if i < 0:
            return None if i == -1 else -1  # repeated: joined with ", ", it equals no single text
        return _which(self.head, i, self._end(i), texts)

    def _only(self, name):
        # Where the value of the one field called `name` starts (past leading whitespace; it
        # ends at _end()): -1 when there is no such field, -2 when there is more than one.
        i = self._find(name, self.start)
        if i < 0:
            return -1
        e = self._end(i)
        return -2 if self._find(name, e) >= 0 else self._skip(i, e)

    def _end(self, a):
        # Where the value that starts at a ends, trailing whitespace excluded.
        head = self.head
        e = head.find(b"\r\n", a)
        if e < 0:
            e = len(head)
        while e > a and (head[e - 1] == 32 or head[e - 1] == 9):  # space, tab
            e -= 1
        return e

    def _skip(self, a, e):
        # Past the leading whitespace of the value at a (which ends at e).
        head = self.head
        while a < e and (head[a] == 32 or head[a] == 9):
            a += 1
        return a

    def has(self, name, token):
        """Whether any field called `name` contains `token` (lower-case bytes), case-insensitively.
        Unlike get(), it makes no string (but for a value with upper-case letters)."""
        i = self._find(name, self.start)
        while i >= 0:
            e = self._end(i)
            if self.head.find(token, i, e) >= 0 or (_cased(self.head, i, e) and self._folded(i, e).find(token) >= 0):
                return True
            i = self._find(name, e)
        return False

    def starts(self, name, prefix):
        """Whether the first field called `name` begins with `prefix` (lower-case bytes),
        case-insensitively. It makes no string (but for a value with upper-case letters)."""
        i = self._find(name, self.start)
        if i < 0:
            return False
        e = self._end(i)
        i = self._skip(i, e)
        return self.head.startswith(prefix, i) or (_cased(self.head, i, e) and self._folded(i, e).startswith(prefix))

    def _folded(self, a, e):
        # The value at head[a:e], lower-cased: a rare client's "Close" or "Application/JSON".
        return self.head[a:e].lower()

    def __contains__(self, name):
        return self._find(name, self.start) >= 0


def _which(head, i, e, texts):
    # The index of the first of texts (ASCII str) that head[i:e] is, or -1 (bytes.startswith()
    # takes a str on MicroPython: see Headers.equals).
    for k in range(len(texts)):
        if len(texts[k]) == e - i and head.startswith(texts[k], i):  # pyright: ignore[reportArgumentType]
            return k
    return -1


def _body_length(headers):
    # The request's body length, from Content-Length (kept as headers.length); _Reject when it
    # cannot be served.
    if b"transfer-encoding" in headers:
        raise _Reject(501, "Chunked request bodies are not supported; send Content-Length")
    length = headers.number(b"content-length")
    if length is None:
        length = 0
    elif length < 0:
        raise _Reject(400, "Invalid Content-Length")
    if length > MAX_BODY:
        # Refused unread: the body is never pulled into memory.
        raise _Reject(413, "Request body larger than %d bytes" % MAX_BODY)
    headers.length = length
    return length


_METHODS = ((b"POST", "POST"), (b"GET", "GET"), (b"DELETE", "DELETE"))  # no string per request


def _digits(head, i, e):
    # head[i:e] as a decimal number; -1 if it holds anything but digits. A number past 10**9 is
    # returned as it stands: large enough for any bound, and still a small int.
    n = 0
    while i < e:
        c = head[i] - 48  # "0"
        if c < 0 or c > 9:
            return -1
        n = n * 10 + c
        if n > 1000000000:
            return n
        i += 1
    return n


def _decoded(conn, body):
    # The request's message, parsed from its body: in the connection's buffer after the head
    # (None: no tuple made per request to say where), or a block of its own.
    if body is not None:
        return jsonrpc.decode(body, 0, len(body))
    start = len(conn.headers.head) + 4
    return jsonrpc.decode(conn.buf, start, start + conn.headers.length)


def _parse_head(conn, mv, head_end):
    # Request line and header block -> conn.headers (with the method and target). Raises
    # _Reject when malformed. (Split in small functions, as on every per-request path: a frame of more
    # than about 11 words, locals plus stack, is heap allocated on every call.)
    eol = conn.buf.find(b"\r\n", 0, head_end)
    if eol < 0:
        eol = head_end
    check_fields(conn.buf, eol, head_end)
    head = bytes(mv[:head_end])
    _check_utf8(head)
    _request_line(conn, head, eol)
    conn.headers.read(head, eol)


def _request_line(conn, head, eol):
    # The request's method and target; _Reject unless the line is "METHOD TARGET HTTP/1.x".
    sp1 = head.find(b" ", 0, eol)
    sp2 = head.find(b" ", sp1 + 1, eol)
    if sp1 <= 0 or sp2 < 0 or not head.startswith(b"HTTP/1.", sp2 + 1) or head.find(b" ", sp2 + 1, eol) >= 0:
        raise _Reject(400, "Malformed request line")
    conn.headers.method = _method(head, sp1)
    conn.headers.target = str(head[sp1 + 1 : sp2], "utf-8")


def _check_utf8(head):
    # str() checks in C and shares the bytes' buffer: one small object, where a Python-level
    # scan for non-ASCII bytes (max(head)) took five times as long on the VM.
    try:
        str(head, "utf-8")
    except UnicodeError:
        raise _Reject(400, "Header fields must be ASCII/UTF-8")


def check_fields(buf, i, end):
    """Check the header lines of the request head in buf (a bytearray; from i, at the request
    line's end, to end) and lower-case their names in place. Each needs a name and a colon with
    no space before it (RFC 9112); MAX_HEADERS of them at most. _Reject when they are not so.

    Field names are case-insensitive: lower-cased here, in the buffer the head is read into,
    the one copy of the head that a request keeps serves for names and values alike.
    """
    count = 0
    while i < end:
        e = buf.find(b"\r\n", i + 2, end)
        if e < 0:
            e = end
        c = buf.find(b":", i + 2, e)
        if c <= i + 2 or buf[c - 1] == 32 or buf[c - 1] == 9:
            raise _Reject(400, "Malformed header line")
        count += 1
        if count > MAX_HEADERS:
            raise _Reject(431, "Too many header fields (at most %d)" % MAX_HEADERS)
        _lower(buf, i + 2, c)
        i = e


def _lower(buf, a, e):
    # ASCII letters of buf[a:e] to lower case, in place (bytes compare as ints; of the loops
    # tried on the VM, this one took the least time: about 0.1 us a byte).
    while a < e:
        c = buf[a]
        if c < 91 and c > 64:
            buf[a] = c + 32
        a += 1


def _cased(head, a, e):
    # Whether head[a:e] holds an upper-case ASCII letter.
    for i in range(a, e):
        if 64 < head[i] < 91:
            return True
    return False


def _method(head, sp1):
    # The request method: a constant for the ones served, no string per request.
    for raw, name in _METHODS:
        if sp1 == len(raw) and head.startswith(raw):
            return name
    return str(head[:sp1], "utf-8")


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
        self._conns = []  # open connections, whose deadlines _reap() enforces
        # A BUF_SIZE buffer (and its memoryview) no connection holds, kept for the next request:
        # a heap with room for one now may lack a block that large later.
        self._spare = self._spare_mv = None
        self._sock = None
        self._acceptor = None
        self._reaper = None
        self._busy = None  # the whole 503 for a connection that cannot be taken
        # Refused sockets being drained (see _refuse), when each is closed regardless, and
        # whether its client has sent anything yet.
        self._lingering = []
        self._linger_until = []
        self._linger_heard = []

    async def start(self):
        """Bind and start accepting connections."""
        body = _problem("Too many connections or out of memory; retry shortly")
        head = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        self._busy = (head % len(body)) + _CLOSE_RETRY + b"\r\n" + body
        ai = socket.getaddrinfo(self.host, self.port)[0]
        sock = socket.socket(ai[0], socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(ai[-1])
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()  # e.g. the port is taken: no socket left behind
            raise
        self._sock = sock
        self._acceptor = asyncio.create_task(self._accept(sock))
        self._reaper = asyncio.create_task(self._reap())

    def serving(self):
        """False once the accept loop or the reaper has ended: closed, or ended by an error
        neither was built to survive (a bug); the board cannot serve as it should after that."""
        for task in (self._acceptor, self._reaper):
            if task is None or task.done():
                return False
        return True

    def close(self):
        """Stop accepting connections."""
        for task in (self._acceptor, self._reaper):
            if task is not None:
                task.cancel()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        while self._lingering:
            self._unlinger(len(self._lingering) - 1)

    async def _accept(self, sock):
        # asyncio.start_server's loop makes a stream, a dict and a task for every connection
        # before the server sees it, and dies when the heap runs out there (a connection storm).
        # This one checks the limit first, and only refuses what it cannot take.
        ready = asyncio.StreamReader(sock)
        nothing = bytearray(0)
        while True:
            try:
                await ready.readinto(nothing)  # returns once a connection is waiting
            except OSError:
                pass  # some ports report a listening socket's read as an error: it is ready all the same
            try:
                client, peer = sock.accept()
            except OSError:
                # Nothing waiting after all, or no socket free for it (it stays queued).
                await asyncio.sleep_ms(ACCEPT_PAUSE_MS)
                continue
            except MemoryError:
                # The OS took the connection but the heap had no room for it; try again later.
                gc.collect()
                await asyncio.sleep_ms(ACCEPT_PAUSE_MS)
                continue
            if self.active >= MAX_CONNECTIONS or not self._take(client, peer):
                self._refuse(client)

    def _take(self, client, peer):
        # Start serving a connection; on a full heap, once more after unloading the tools
        # modules. False when there is no room for it even then.
        self.active += 1
        try:
            client.setblocking(False)
            try:
                asyncio.create_task(self._serve_connection(asyncio.StreamReader(client), peer))  # noqa: RUF006
            except MemoryError:
                if not self.server.registry.reclaim():
                    raise
                asyncio.create_task(self._serve_connection(asyncio.StreamReader(client), peer))  # noqa: RUF006
            return True
        except MemoryError:
            self.active -= 1
            gc.collect()
            return False

    def _refuse(self, client):
        # The prebuilt 503, written without waiting (it fits a fresh socket's send buffer). Then
        # the socket lingers before it is closed, because closing on unread input makes the
        # kernel reset the connection, which can destroy the 503 before the client reads it: the
        # reaper reads what the client sends and closes once it has gone quiet (or closed, or
        # LINGER_MS passed). Past MAX_LINGERING a refusal is closed at once.
        try:
            client.setblocking(False)
            client.write(self._busy)
            if len(self._lingering) < MAX_LINGERING:
                self._lingering.append(client)
                self._linger_until.append(time.ticks_add(time.ticks_ms(), LINGER_MS))
                self._linger_heard.append(False)
                return
        except (OSError, MemoryError):
            pass
        client.close()

    async def _reap(self):
        # One task checks every connection's deadline: a per-read wait_for would allocate a
        # task, a closure and (on timeout) an exception for every request. It must outlive a
        # full heap (nothing would time out after it): it allocates nothing itself (no
        # iterators), and a MemoryError from what it calls waits for the next round.
        while True:
            await asyncio.sleep_ms(REAP_MS)
            try:
                now = time.ticks_ms()
                self.server.overdue(now)
                self._reap_once(now)
            except MemoryError:
                gc.collect()

    def _reap_once(self, now):
        conns = self._conns
        i = len(conns)
        while i:
            i -= 1
            conn = conns[i]
            if conn.deadline is not None and time.ticks_diff(now, conn.deadline) >= 0:
                conn.deadline = None
                conn.task.cancel()
        i = len(self._lingering)
        while i:
            i -= 1
            got = _drain(self._lingering[i])
            if got < 0 or (got == 0 and self._linger_heard[i]) or time.ticks_diff(now, self._linger_until[i]) >= 0:
                self._unlinger(i)
            elif got:
                self._linger_heard[i] = True

    def _unlinger(self, i):
        self._lingering.pop(i).close()
        self._linger_until.pop(i)
        self._linger_heard.pop(i)

    def _lend(self, conn):
        # conn's buffer (and memoryview) for the request about to be read: the spare, else a new
        # one (MemoryError when not even MIN_BUF_SIZE is to be had). Returns the buffer.
        buf = self._spare
        if buf is not None:
            conn.buf, conn.mv = buf, self._spare_mv
            self._spare = self._spare_mv = None
            return buf
        buf = self._new_buffer()
        conn.buf = buf
        conn.mv = memoryview(buf)
        return buf

    def _new_buffer(self):
        # Apart from _lend(), whose usual path (the spare) then fits the C stack with no try.
        try:
            return bytearray(BUF_SIZE)
        except MemoryError:
            self.server.registry.reclaim()  # the tools modules make room; they load again
        try:
            return bytearray(BUF_SIZE)
        except MemoryError:
            return bytearray(MIN_BUF_SIZE)

    def _release(self, conn):
        # A connection between requests, or done, holds no buffer; the spare is kept.
        if conn.buf is not None and self._spare is None and len(conn.buf) == BUF_SIZE:
            self._spare, self._spare_mv = conn.buf, conn.mv
        conn.buf = conn.mv = None

    async def _serve_connection(self, stream, peer):
        # The accept loop has counted this connection in self.active.
        conn = None
        refused = False
        try:
            conn = _Conn(stream, self.request_timeout_ms, peer)
            self._conns.append(conn)
            filled = 0
            while filled >= 0:
                try:
                    filled = await self._one_request(conn, filled)
                except _Reject as r:
                    await conn.send(r.status, _problem(r.reason), b"Connection: close\r\n")
                    self._pass(conn)
                    await conn.discard()
                    break
                finally:
                    self._pass(conn)
        except MemoryError:
            # No room for this connection's buffer or its request: refused as the accept loop
            # refuses (the 503, then the reaper drains and closes it); the others go on, and
            # the client's retry finds the tools modules' heap free.
            self.server.registry.reclaim()
            refused = True
        except (_Closed, OSError, asyncio.CancelledError):
            pass  # the client went away or missed a deadline: nothing to answer
        finally:
            self.active -= 1
            if conn is not None:
                self._conns.remove(conn)
                self._release(conn)
            if refused and not (conn is not None and conn.upgraded):
                self._refuse(stream.s)  # pyright: ignore[reportAttributeAccessIssue]
            else:
                await _close(stream)

    async def _one_request(self, conn, filled):
        # Serve one request; return how many bytes of the next one are already buffered, or -1
        # to close the connection. A coroutine per request, not a loop in the connection's task:
        # the GC scans a suspended coroutine's whole frame, stale stack slots too, and an idle
        # connection's would keep the last request's buffer alive.
        conn.expire(self.request_timeout_ms if filled else self.idle_timeout_ms)
        buf = conn.buf
        server = self.server
        if buf is None:
            # Idle connections hold no buffer: it is taken once the request's first bytes are in,
            # with the request's turn (see Server.turn).
            await conn.stream.readinto(_NOTHING)
            conn.turn = server.turn() or await server.wait_turn()
            buf = self._lend(conn)
        else:
            # A pipelined request: the other connections get their turn first (a response the
            # socket took at once did not yield).
            await asyncio.sleep_ms(0)
            conn.turn = server.turn() or await server.wait_turn()
        mv = conn.mv
        head_end = buf.find(b"\r\n\r\n", 0, filled) if filled else -1
        first = filled == 0
        while head_end < 0:
            if filled == len(buf):
                if filled < BUF_SIZE:
                    raise MemoryError()  # a buffer cut short by the heap: refused as out of memory
                raise _Reject(431, "Request header fields too large")
            # The socket is readable (or was just read): what it holds is taken without a trip
            # through the scheduler, which would cost a coroutine and an I/O-queue entry.
            part = mv[filled:]
            n = conn.sock.readinto(part)
            if n is None:  # nothing yet
                n = await self._more(conn, part)
            if not n:
                if filled:
                    raise _Closed()
                return -1
            if first:  # the request's deadline runs from its first byte
                conn.expire(self.request_timeout_ms)
                first = False
            filled += n
            head_end = buf.find(b"\r\n\r\n", max(0, filled - n - 3), filled)
        _parse_head(conn, mv, head_end)
        body_start = head_end + 4
        end = body_start + _body_length(conn.headers)
        if end == body_start:
            body = _NO_BODY
        elif end <= len(buf):
            while filled < end:
                part = mv[filled:]
                n = conn.sock.readinto(part)  # the body usually came with the head
                if n is None:
                    n = await self._more(conn, part)
                if not n:
                    raise _Closed()
                filled += n
            body = None  # where it is: see _decoded
        else:
            body = await self._big_body(conn, mv[body_start:filled], end - body_start)
            end = filled  # everything buffered belonged to this body
        conn.deadline = None  # a handler may take its time; writes set their own deadline

        conn.reply.begin(not conn.headers.has(b"connection", b"close"))
        buf = mv = part = None  # the handler may be a GET stream, which gives the buffer up
        conn.pipelined = filled > end  # bytes of the next request follow this one's in the buffer
        try:
            keep = self._route(conn, body)
            if type(keep) is not bool:  # the answer waits on something: a coroutine
                keep = await keep
        except BaseException as e:  # a POST's are answered (see _failed)
            keep = await self._failed(conn, e)
        body = None
        conn.done()
        if not keep:
            return -1
        # Move any pipelined bytes of the next request to the front of the buffer.
        rest = filled - end
        if rest > 0:
            buf = conn.buf
            buf[0:rest] = buf[end:filled]
        else:
            self._release(conn)
        return rest

    async def _big_body(self, conn, start, length):
        # A body longer than the connection's buffer (start: its part already read) in a block of
        # its own. Without room for one, even after unloading the tools modules, it is read and
        # dropped: _NO_ROOM, which _message answers as out of memory (as for a body too large to
        # parse), and the connection serves on.
        have = len(start)
        try:
            big = bytearray(length)
        except MemoryError:
            self.server.registry.reclaim()
            try:
                big = bytearray(length)
            except MemoryError:
                big = None
        into = None
        if big is not None:
            big[:have] = start
            into = memoryview(big)
        while have < length:
            # Into the body's block, or (dropped) through the connection's buffer.
            part = into[have:] if into is not None else conn.mv[: min(len(conn.mv), length - have)]
            n = await self._more(conn, part)
            if not n:
                raise _Closed()
            have += n
        return _NO_ROOM if big is None else big

    async def _more(self, conn, part):
        # More of a request that came in pieces, read without the request's turn (a client slow
        # to send must not hold back the others), which is taken again once the bytes are in.
        self._pass(conn)
        n = await conn.stream.readinto(part)
        conn.turn = self.server.turn() or await self.server.wait_turn()
        return n

    def _pass(self, conn):
        # Give the request's turn back: it is done, or it waits on its client from here on.
        if conn.turn:
            self.server.done(conn.turn)
            conn.turn = 0

    def _route(self, conn, body):
        # The coroutine that answers one parsed request (it returns False when the connection
        # must close after it): chosen here without one of its own. The request's state is on
        # conn (see _Conn).
        wait = ratelimit.wait_s(conn.peer)
        if wait:
            return _sent(conn, 429, _problem("Too many requests; slow down"), b"Retry-After: %d\r\n" % wait)
        path = _path(conn.headers.target)
        if path == "/ws":
            self._pass(conn)  # a WebSocket takes a turn for each of its requests
            gc.collect()  # so the module loads into low holes, not across the largest free block
            return self.server.registry.cold("transport.ws.upgrade")(self, conn)  # first WebSocket client
        if path != self.path:
            return _sent(conn, 404, _problem("Not found: MCP is served at " + self.path), b"")
        return self._admit(conn, body)

    def _admit(self, conn, body):
        # A request for MCP: the Guard's checks, then its era and method.
        refusal = self.guard.check(conn.headers.raw)
        if refusal is not None:
            return _refused(conn, refusal)
        conn.headers.modern = self.server.is_modern(conn.headers)
        method = conn.headers.method
        if method == "POST":
            return self._post(conn, body)
        if method == "GET" and not conn.headers.modern:
            return self.server.registry.cold("transport.http_session.get_stream")(self, conn)
        if method == "DELETE" and not conn.headers.modern:
            return self.server.registry.cold("transport.http_session.delete")(self, conn)
        # Revision 2026-07-28 has no standalone stream and no sessions: 405 tells clients so.
        allow = b"Allow: POST\r\n" if conn.headers.modern else b"Allow: GET, POST, DELETE\r\n"
        return _sent(conn, 405, _problem("Method not allowed"), allow)

    def _session(self, headers):
        # Handshake era: the session a request names; _NoSession when it names none or a dead one.
        sid = headers.get(b"mcp-session-id")
        if sid is None:
            raise _NoSession(400, "Mcp-Session-Id header required: send initialize first")
        session = self.server.find_session(sid)
        if session is None:
            raise _NoSession(404, "Session not found or ended: initialize again")
        return session

    # A POST's JSON-RPC message, answered by plain functions that return keep-alive (a bool), or
    # a coroutine giving it when the answer waits (a handler that awaits, a socket that did not
    # take the response at once). Their exceptions are answered by _failed(), in
    # _one_request(): a POST's coroutine with the try this needs was 352 B per request.

    def _post(self, conn, body):
        headers = conn.headers
        if not headers.starts(b"content-type", b"application/json"):
            return _sent(conn, 415, _problem("Content-Type must be application/json"), b"")
        if b"accept" in headers and not _accepts(headers):
            return _sent(conn, 406, _problem("Accept must include application/json and text/event-stream"), b"")
        conn.reply.posted = True  # from here, an exception is answered as a JSON-RPC error
        return self._message(conn, body)

    def _message(self, conn, body):
        if body is _NO_ROOM:
            raise MemoryError()  # its body had no room: answered as a body too large to parse
        msg, kind = _decoded(conn, body)
        if not conn.pipelined:
            # The message is parsed: the buffer is not needed until the connection's next
            # request, and the handler may wait (an async tool, a response the socket does not
            # take at once). Held across those waits, it made every other connection's request
            # allocate one of its own: on a fragmented heap, 503 (esp32 soak: 376 of 4,000).
            self._release(conn)
        if isinstance(msg, list):
            return self.server.registry.cold("transport.http_session.batch")(self, conn, msg)
        if kind == jsonrpc.REQUEST:
            conn.reply.rid = msg["id"]
            return self._request(conn, msg)
        return self._notified(conn, msg, kind)

    def _request(self, conn, msg):
        result = self.server.handle(msg, self._context(conn, msg))
        if is_coroutine(result):  # a handler that waits
            return self._later(conn, result)
        return self._answer(conn, result)

    def _context(self, conn, msg):
        # The request's Context; in the handshake era, with its session, or the one an
        # initialize opens (which _failed ends if the request fails).
        reply = conn.reply
        if conn.headers.modern:
            return self.server.context(True, None, reply, conn.headers)
        if msg["method"] == "initialize" and b"mcp-session-id" not in conn.headers:
            session = reply.opened = self.server.new_session()
        else:
            session = self._session(conn.headers)
        return self.server.context(False, session, reply, None)

    def _notified(self, conn, msg, kind):
        # A notification, or a response to a request of the server's: accepted, 202.
        headers = conn.headers
        session = None if headers.modern else self._session(headers)
        self.server.accept(msg, kind == jsonrpc.RESPONSE, headers.modern, session, headers if headers.modern else None)
        return _sent(conn, 202, None, b"")

    async def _later(self, conn, result):
        self._pass(conn)
        keep = self._answer(conn, await result)
        return keep if type(keep) is bool else await keep

    def _answer(self, conn, result):
        reply = conn.reply
        if result is None:
            return reply.abandon() and reply.keep  # cancelled: nothing more is sent for it
        if reply.opened is not None:
            reply.extra += b"Mcp-Session-Id: " + reply.opened.id.encode() + b"\r\n"
            reply.opened = None
        return reply.finish(reply.rid, result)

    async def _failed(self, conn, e):
        # An exception out of a request's answer: a POST's message gets a JSON-RPC error (and
        # a session its initialize opened is ended); anything else is the connection's end.
        reply = conn.reply
        if reply.opened is not None:
            self.server.end_session(reply.opened.id)  # initialize failed: no session
            reply.opened = None
        if not reply.posted or isinstance(e, (_Closed, _Reject, OSError)) or not isinstance(e, Exception):
            raise e  # the connection is over (part of a response may be out): no answer can follow
        rid = reply.rid
        if isinstance(e, Error):
            if conn.headers.modern:
                status = _MODERN_STATUS.get(e.code, 200)
            else:
                status = 400 if e.code in (-32700, -32600) else 200
            payload = jsonrpc.error(rid if rid is not None else e.id, e.code, e.message, e.data)
        elif isinstance(e, _NoSession):
            status, payload = e.status, jsonrpc.error(rid, INVALID_REQUEST, e.reason)
        elif isinstance(e, MemoryError):
            self.server.registry.reclaim()  # so that the retry the error asks for finds room
            status, payload = 200, jsonrpc.error(rid, INTERNAL_ERROR, "Out of memory on the board; retry")
        else:
            sys.print_exception(e)
            status, payload = 200, jsonrpc.error(rid, INTERNAL_ERROR, "Internal error: " + type(e).__name__)
        await reply.fail(status, payload)
        return reply.keep


class _Conn:
    """One client connection: its buffer, and the deadline the server's reaper enforces
    (None while a handler runs, which may take its time).

    The request being served is kept in objects the connection reuses for each of its requests
    (they cost no heap after the first): `headers`, its head (request line, fields, era), and
    `reply`, its way back (keep-alive, the header lines every response to it carries). Passed
    as arguments, they made the request's functions too big for the C stack, and as objects made
    per request they cost 600 B. At most 12 attributes each: a 13th grows an object's table
    from 12 slots to 17 (a larger block for every new connection, on a heap that may not have it).
    """

    upgraded = False  # a WebSocket now: no HTTP response may be written on it

    def __init__(self, stream, timeout_ms, peer):
        self.stream = stream
        # The port's Stream keeps its socket in .s: read directly when it is known to hold data.
        self.sock = stream.s  # pyright: ignore[reportAttributeAccessIssue]
        self.peer = peer  # the client's address, as the port's accept() gives it
        self.buf = self.mv = None  # while a request is read and served (see HTTPServer._lend)
        self.task = asyncio.current_task()
        self.deadline = None
        self.pipelined = False  # while a request is served: the buffer holds the next one's start
        self.turn = 0  # the ticket of the request's turn while it holds one (Server.turn)
        self.timeout_ms = timeout_ms  # for each write to be taken by the client
        self.headers = Headers()
        self.reply = _Reply(self)
        _no_delay(stream)

    def done(self):
        """The request is answered: let go of what it held (an idle connection holds nothing)."""
        self.headers.clear()

    def expire(self, ms):
        """Cancel this connection's task if it is still reading or writing in ms."""
        self.deadline = time.ticks_add(time.ticks_ms(), ms)

    async def drain(self):
        """Wait until the socket has taken what was written (within the write deadline)."""
        held = self.deadline
        self.expire(self.timeout_ms)
        await self.stream.drain()
        self.deadline = held

    async def send(self, status, payload, extra=b""):
        """One whole response: status line, headers and a JSON body (bytes, or None)."""
        _respond(self.stream, status, payload, extra)
        await self.drain()

    async def discard(self):
        # Closing with unread input makes the kernel send RST, which can destroy the refusal we
        # just sent before the client reads it. Drain briefly (bounded in time) first.
        self.expire(LINGER_MS)
        try:
            while await self.stream.readinto(self.mv):
                pass
        except (OSError, asyncio.CancelledError):
            pass
        self.deadline = None


class _Reply:
    """One request's way back: a JSON response, or an SSE stream (chunked, so the connection
    stays reusable) from the first message sent ahead of the result. It is the `out` that the
    server hands to handlers (see context.py)."""

    _waiter = None  # on the class: an instance gets its own only when it idles (a GET stream)

    def __init__(self, conn):
        self.conn = conn
        self.begin(True)

    def begin(self, keep):
        """Answer a new request (a connection has one _Reply, for each of its requests)."""
        self.keep = keep  # the connection stays open after the response
        self.extra = b"" if keep else b"Connection: close\r\n"  # header lines every response carries
        self.sse = False
        # A POST's JSON-RPC message: its id once read, and the session its initialize opened.
        self.posted = False
        self.rid = self.opened = None

    async def open(self):
        """Commit to SSE: send the status line and headers."""
        self.sse = True
        self.conn.stream.write(_SSE_HEAD + self.extra + b"\r\n")
        await self.conn.drain()

    async def send(self, msg):
        """Write one JSON-RPC message as an SSE event."""
        out = buffers.stream()
        jsonrpc.dump(msg, out)
        self._event(out, False)
        await self.conn.drain()

    async def idle(self, ms):
        """Wait up to ms for the client to leave; else send an SSE comment to keep the stream
        (and NAT and proxies) alive. True when the client is gone or stop() was called."""
        self._waiter = asyncio.current_task()
        try:
            n = await asyncio.wait_for_ms(self.conn.stream.readinto(_SCRATCH), ms)
        except asyncio.TimeoutError:
            self.conn.stream.write(b"10\r\n: keep-alive\r\n\r\n\r\n")
            await self.conn.drain()
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
            try:
                self.conn.stream.write(b"0\r\n\r\n")
            except OSError:
                return False  # the client has gone (the usual reason for a cancel): close
            return True
        return False

    def finish(self, rid, result):
        """Send the request's result: the last SSE event if streaming, else a JSON response
        (chunked, item by item, when it holds long lists). Returns keep-alive when the socket
        took it at once (the usual case), else a coroutine giving it once the client has."""
        if not self.sse and jsonrpc.is_large(result):
            return self._pieces(rid, result)
        out = buffers.stream()
        jsonrpc.dump_result(out, rid, result)
        if self.sse:
            self._event(out, True)
        else:
            self._json(out)
        return self._sent() if self.conn.stream.out_buf else self.keep  # pyright: ignore[reportAttributeAccessIssue]

    async def _sent(self):
        await self.conn.drain()
        return self.keep

    def _json(self, out):
        # The JSON in `out` as a whole 200 response, its head put straight into the output
        # buffer: formatted, it was a string per response (153 B on the VM). (Apart from
        # finish(): a frame of more than 11 words is heap allocated on every call.)
        n = out.tell()
        pos = buffers.put_int(buffers.put(0, _JSON_HEAD), n)
        pos = buffers.put(buffers.put(pos, b"\r\n"), self.extra)
        buffers.send(self.conn.stream.write, buffers.put(pos, b"\r\n"), out, n, b"")
        buffers.release(n)

    async def fail(self, status, payload):
        """Send an error response (bytes): the last SSE event if streaming, else with this status."""
        if self.sse:
            out = buffers.stream()
            out.write(payload)
            self._event(out, True)
            await self.conn.drain()
        else:
            await self.conn.send(status, payload, self.extra)

    async def end(self):
        """Close the SSE stream."""
        self.conn.stream.write(b"0\r\n\r\n")
        await self.conn.drain()

    def _event(self, out, last):
        # The JSON in `out` as one SSE event in one chunk (the HTTP head first, on the first).
        n = out.tell()
        size = b"%x\r\n" % (len(_EVENT) + n + 4)
        if self.sse:
            head = size + _EVENT
        else:
            self.sse = True
            head = _SSE_HEAD + self.extra + b"\r\n" + size + _EVENT
        buffers.copy_out(self.conn.stream.write, head, out, n, b"\r\n\r\n\r\n0\r\n\r\n" if last else b"\r\n\r\n\r\n")
        buffers.release(n)

    async def _pieces(self, rid, result):
        # A result holding long lists, chunked: the items are serialised one by one and sent
        # about CHUNK bytes at a time, so the board never holds the whole response. `out` is
        # shared, so it is emptied before every await and rewound after.
        writer = self.conn.stream
        writer.write(_CHUNKED_HEAD + self.extra + b"\r\n")
        out = buffers.stream()
        most = 0
        try:
            for _ in jsonrpc.dump_pieces(out, rid, result):
                n = out.tell()
                if n >= CHUNK:
                    most = max(most, n)
                    buffers.copy_out(writer.write, b"%x\r\n" % n, out, n, b"\r\n")
                    out.seek(0)
                    await self.conn.drain()
                    out.seek(0)
            n = out.tell()
            buffers.copy_out(writer.write, b"%x\r\n" % n, out, n, b"\r\n0\r\n\r\n")
        except MemoryError:
            # Too late for an error response: the status line is out. Ending the connection
            # without the last chunk tells the client the response is incomplete.
            gc.collect()
            raise _Closed()
        buffers.release(max(most, n))
        await self.conn.drain()
        return self.keep


def _drain(sock):
    # Read what a refused client has sent, without waiting: how many reads found data (0:
    # nothing new), or -1 once it has closed its side or the connection failed.
    got = 0
    try:
        while got < 64:  # bounded: a client may never stop sending
            n = sock.readinto(_SCRATCH)
            if n is None:
                return got
            if not n:
                return -1
            got += 1
    except OSError:
        return -1
    return got


def _no_delay(writer):
    # Streamed responses are several writes; without TCP_NODELAY, Nagle's algorithm holds the
    # last one back until the client's delayed ACK (~40 ms). IPPROTO_TCP=6, TCP_NODELAY=1.
    try:
        writer.s.setsockopt(6, 1, 1)  # pyright: ignore[reportAttributeAccessIssue]
    except (AttributeError, OSError):
        pass


def _accepts(headers):
    for t in (b"application/json", b"text/event-stream", b"*/*", b"application/*"):
        if headers.has(b"accept", t):
            return True
    return False


def _respond(writer, status, payload, extra):
    # A whole response (payload: JSON bytes, or None) handed to the socket in one write when it fits.
    n = 0 if payload is None else len(payload)
    i = _REASONS.find(b"\n%d " % status) + 5
    head = b"HTTP/1.1 %d %s\r\n%sContent-Length: %d\r\n%s\r\n" % (
        status,
        _REASONS[i : _REASONS.find(b"\n", i)] if i > 4 else b"",
        b"" if payload is None else b"Content-Type: application/json\r\n",
        n,
        extra,
    )
    if payload is None:
        writer.write(head)
        return
    out = buffers.stream()
    out.write(payload)
    buffers.copy_out(writer.write, head, out, n, b"")
    buffers.release(n)


def _path(target):
    # The request target without its query.
    q = target.find("?")
    return target if q < 0 else target[:q]


async def _sent(conn, status, payload, more):
    # A whole response, as the answer to a request that needs nothing else (a refusal), with
    # `more` header lines than the request's own (conn.reply.extra).
    await conn.send(status, payload, conn.reply.extra + more if more else conn.reply.extra)
    return conn.reply.keep


def _refused(conn, refusal):
    # The answer to a request the Guard refused: (status, reason).
    more = b'WWW-Authenticate: Bearer realm="boardmcp"\r\n' if refusal[0] == 401 else b""
    return _sent(conn, refusal[0], _problem(refusal[1]), more)


async def _close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except OSError:
        pass
