"""WebSocket transport (RFC 6455) on the HTTP server's port: GET /ws upgrades, subprotocol
`mcp`, one JSON-RPC message per text frame, server notifications on the same socket.

The HTTP server hands an upgrade request over after reading its head; the same Host,
Origin and token rules apply before the upgrade. Frames are read in chunks into the
connection's HTTP buffer and parsed there; a larger message gets one block of exactly its size
(a fragmented one, MAX_MESSAGE, filled in place), never more. A long result goes out as a
fragmented message, about a TCP segment per frame.

    keep = await ws.upgrade(http_server, conn, method, headers)  # conn: the HTTP connection
"""

import asyncio
import binascii
import gc
import hashlib
import struct
import time

from micropython import const

from .. import jsonrpc
from ..jsonrpc import INTERNAL_ERROR
from . import buffers
from .http import _problem
from .stream import Connection

MAX_MESSAGE = const(8192)  # bytes of one message (a frame, or fragments reassembled), as HTTP bodies
MAX_CONNECTIONS = const(3)  # open WebSockets; each holds an HTTP connection slot
PING_INTERVAL_MS = const(30000)  # a quiet connection gets a ping; no answer in as long again: closed
FRAME_TIMEOUT_MS = const(10000)  # from the first byte of a frame to its last
HEAP_RETRY_MS = const(50)  # on a full heap, before trying again to read the next frame
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Opcodes
_CONT = const(0)
_TEXT = const(1)
_BINARY = const(2)
_CLOSE = const(8)
_PING = const(9)
_PONG = const(10)

# Close codes
_NORMAL = const(1000)
_GOING_AWAY = const(1001)
_PROTOCOL_ERROR = const(1002)
_UNSUPPORTED = const(1003)
_TOO_BIG = const(1009)

busy = 0  # WebSockets open now (registry.evict() does not unload this module while any is)


class _Fail(Exception):
    # Fail the connection: send a Close frame with this code, then drop it.
    def __init__(self, code, reason):
        self.code = code
        self.reason = reason


class _Gone(Exception):
    pass


async def upgrade(http, conn):
    """Serve one upgrade request (conn.headers) to its end; return whether the HTTP connection
    stays open. The HTTP connection's buffer (an upgrade GET has no body) is reused for frames."""
    global busy
    headers = conn.headers
    refusal = _refusal(http, headers.method, headers)
    if refusal is not None:
        status, reason, extra = refusal
        await conn.send(status, _problem(reason), extra + b"Connection: close\r\n")
        return False
    if busy >= MAX_CONNECTIONS:
        await conn.send(503, _problem("Too many WebSockets open; retry later"), b"Connection: close\r\n")
        return False
    accept = binascii.b2a_base64(hashlib.sha1(headers.get(b"sec-websocket-key", "").encode() + _GUID).digest()).strip()
    head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
    head += accept + b"\r\n"
    if "mcp" in [p.strip() for p in headers.get(b"sec-websocket-protocol", "").split(",")]:
        head += b"Sec-WebSocket-Protocol: mcp\r\n"
    busy += 1  # counted first: unloading the cached code to make room keeps this module
    try:
        # Made before the 101 goes out: without heap for it, even once the cached code is
        # unloaded (that code is never the reason a request is refused), the client gets a 503.
        try:
            ws = WebSocket(http.server, conn)
        except MemoryError:
            if not http.server.registry.reclaim():
                raise
            ws = WebSocket(http.server, conn)
        conn.upgraded = True  # from here on no HTTP response may follow, even after a MemoryError
        try:
            conn.stream.write(head + b"\r\n")
            await conn.drain()
            await ws.run()
        finally:
            ws.close()
    finally:
        busy -= 1
    return False


def _refusal(http, method, headers):
    # None when this is an acceptable upgrade request, else (status, reason, extra headers).
    refusal = http.guard.check(headers.raw)
    if refusal is not None:
        extra = b'WWW-Authenticate: Bearer realm="boardmcp"\r\n' if refusal[0] == 401 else b""
        return refusal[0], refusal[1], extra
    if method != "GET" or headers.get(b"upgrade", "").lower() != "websocket":
        return 426, "WebSocket upgrade required: GET with Upgrade: websocket", b"Upgrade: websocket\r\n"
    if "upgrade" not in headers.get(b"connection", "").lower():
        return 400, "Connection: Upgrade required", b""
    if headers.get(b"sec-websocket-version") != "13":
        return 426, "Unsupported WebSocket version; use 13", b"Sec-WebSocket-Version: 13\r\n"
    if headers.get(b"content-length", "0") != "0":
        return 400, "An upgrade request has no body", b""
    key = headers.get(b"sec-websocket-key", "")
    try:
        ok = len(binascii.a2b_base64(key)) == 16
    except ValueError:
        ok = False
    if not ok:
        return 400, "Invalid Sec-WebSocket-Key", b""
    return None


class WebSocket(Connection):
    """One open WebSocket: reads frames, answers control frames, passes messages to MCP."""

    def __init__(self, server, conn):
        super().__init__(server)
        self.conn = conn  # the HTTP connection it was upgraded from
        self.reader = self.writer = conn.stream
        self.buf = conn.buf
        self.mv = conn.mv
        self.pos = 0  # buf[pos:filled] is read but not yet parsed
        self.filled = 0
        self.frag = None  # a fragmented message being reassembled (or a large one being read)
        self.frag_len = 0

    async def write(self, data, opcode):
        """Send one control frame (ping, pong, close)."""
        if self.closed:
            raise OSError("connection closed")
        frame = struct.pack("!BB", 0x80 | opcode, len(data)) + data
        try:
            self.writer.write(frame)  # one write per frame
            await self.writer.drain()
        except MemoryError:
            self._abort()

    async def write_part(self, out, n, first, last):
        """One frame of a text message: the whole message, or a fragment of a long one."""
        if self.closed:
            raise OSError("connection closed")
        b0 = (0x80 if last else 0) | (_TEXT if first else _CONT)
        if n < 126:
            head = struct.pack("!BB", b0, n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, 126, n)
        else:
            head = struct.pack("!BBII", b0, 127, 0, n)
        try:
            buffers.copy_out(self.writer.write, head, out, n, b"")
            await self.writer.drain()
        except MemoryError:
            self._abort()

    def _abort(self):
        # Out of memory in the middle of sending a frame: part of it may be out, and a stream
        # of frames cannot be put right after that. Close the socket at once (the reader then
        # ends the connection) and tell the caller the peer is gone.
        self.closed = True
        self.writer.s.close()  # pyright: ignore[reportAttributeAccessIssue]
        raise OSError("out of memory while sending a frame: connection closed")

    async def keepalive(self):
        """A ping keeps NATs open while a listen stream is quiet."""
        await self.write(b"", _PING)

    async def run(self):
        """Serve frames until the peer closes, fails the protocol or goes silent."""
        code = _NORMAL
        reason = b""
        try:
            waited = 0
            while True:
                try:
                    frame = self._frame()
                except MemoryError:
                    # No heap even for the next frame's reader (a coroutine): unload the cached
                    # code (Registry.reclaim), or else wait for the requests in flight to free
                    # some (sleep_ms allocates nothing); after FRAME_TIMEOUT_MS, give up.
                    if not self.server.registry.reclaim():
                        if waited >= FRAME_TIMEOUT_MS:
                            raise
                        await asyncio.sleep_ms(HEAP_RETRY_MS)
                        waited += HEAP_RETRY_MS
                    continue
                waited = 0
                if not await frame:
                    break
        except _Fail as f:
            code, reason = f.code, f.reason.encode()
        except (_Gone, OSError, asyncio.TimeoutError):
            return
        if not self.closed:
            self.frag = None
            try:
                await self.write(struct.pack("!H", code) + reason, _CLOSE)
            except OSError:
                return
            self.closed = True
            # Unread input at close makes the kernel reset the connection, which can destroy
            # the Close frame before the client reads it: drain briefly first.
            await self.conn.discard()

    async def _frame(self):
        # Read and act on one frame; False once the closing handshake is done.
        buf = self.buf
        try:
            await self._need(2, PING_INTERVAL_MS)
        except asyncio.TimeoutError:
            await self.keepalive()
            await self._need(2, PING_INTERVAL_MS)  # a live client has answered (pong) by now
        deadline = time.ticks_add(time.ticks_ms(), FRAME_TIMEOUT_MS)
        b0 = buf[self.pos]
        b1 = buf[self.pos + 1]
        opcode = b0 & 0x0F
        fin = b0 & 0x80
        n = b1 & 0x7F
        if b0 & 0x70:
            raise _Fail(_PROTOCOL_ERROR, "reserved bits set")
        if not b1 & 0x80:
            raise _Fail(_PROTOCOL_ERROR, "client frames must be masked")
        size = 6 if n < 126 else (8 if n == 126 else 14)
        await self._need(size, time.ticks_diff(deadline, time.ticks_ms()))
        p = self.pos
        if n == 126:
            n = (buf[p + 2] << 8) | buf[p + 3]
        elif n == 127:
            n = 0
            for i in range(p + 2, p + 10):
                n = (n << 8) | buf[i]
        mask = bytes(self.mv[p + size - 4 : p + size])
        self.pos = p + size

        if opcode >= _CLOSE:
            if not fin or n > 125:
                raise _Fail(_PROTOCOL_ERROR, "control frames must be whole and short")
            await self._need(n, time.ticks_diff(deadline, time.ticks_ms()))
            p = self.pos
            self.pos = p + n
            _unmask(buf, p, p + n, mask)
            if opcode == _PING:
                await self.write(bytes(self.mv[p : p + n]), _PONG)
            elif opcode == _CLOSE:
                if n == 1:
                    raise _Fail(_PROTOCOL_ERROR, "malformed close frame")
                # Echo the peer's code (none: an empty Close), then close the TCP connection.
                await self.write(bytes(self.mv[p : p + min(n, 2)]), _CLOSE)
                self.closed = True
                return False
            elif opcode != _PONG:
                raise _Fail(_PROTOCOL_ERROR, "unknown opcode")
            return True

        if opcode == _BINARY:
            raise _Fail(_UNSUPPORTED, "binary frames are not accepted; send JSON-RPC as text")
        if opcode > _BINARY:
            raise _Fail(_PROTOCOL_ERROR, "unknown opcode")
        if (opcode == _CONT) != (self.frag is not None):
            raise _Fail(_PROTOCOL_ERROR, "unexpected continuation" if opcode == _CONT else "expected continuation")
        have = self.frag_len if self.frag is not None else 0
        if n > MAX_MESSAGE - have:
            raise _Fail(_TOO_BIG, "message larger than %d bytes" % MAX_MESSAGE)
        if fin and self.frag is None and n <= len(buf):
            await self._need(n, time.ticks_diff(deadline, time.ticks_ms()))
            p = self.pos
            self.pos = p + n
            _unmask(buf, p, p + n, mask)
            ticket = self.server.turn() or await self.server.wait_turn()
            error = self.receive(buf, p, p + n, ticket)  # parsed in place, no copy
        else:
            if self.frag is None:
                # A block of its own: the exact size of a whole message, or MAX_MESSAGE for a
                # fragmented one, whose fragments then land in place (no regrowing, no copies).
                try:
                    self.frag = bytearray(n if fin else MAX_MESSAGE)
                except MemoryError:
                    gc.collect()
                    await self._skip(n, deadline)
                    await self.reply(jsonrpc.error(None, INTERNAL_ERROR, "Out of memory on the board for this message"))
                    return True
                self.frag_len = 0
            await self._read_payload(memoryview(self.frag)[have : have + n], deadline)
            _unmask(self.frag, have, have + n, mask)
            self.frag_len = have + n
            if not fin:
                return True
            message = self.frag
            self.frag = None
            ticket = self.server.turn() or await self.server.wait_turn()
            error = self.receive(message, 0, have + n, ticket)
        if error:
            await self.reply(error)
        return True

    async def _need(self, n, wait_ms):
        # Have buf[pos:pos+n] read (n <= len(buf)), compacting the buffer when needed.
        if self.filled - self.pos >= n:
            return
        if self.pos + n > len(self.buf):
            rest = self.filled - self.pos
            self.buf[0:rest] = self.mv[self.pos : self.filled]
            self.pos = 0
            self.filled = rest
        while self.filled - self.pos < n:
            self.filled += await self._read(self.mv[self.filled :], wait_ms)

    async def _read(self, mv, wait_ms):
        if wait_ms <= 0:
            raise asyncio.TimeoutError()
        got = await asyncio.wait_for_ms(self.reader.readinto(mv), wait_ms)
        if not got:
            raise _Gone()
        return got

    async def _read_payload(self, payload, deadline):
        # A payload larger than the buffer: what is buffered, then straight from the socket.
        have = min(self.filled - self.pos, len(payload))
        payload[0:have] = self.mv[self.pos : self.pos + have]
        self.pos += have
        pmv = memoryview(payload)
        while have < len(payload):
            have += await self._read(pmv[have:], time.ticks_diff(deadline, time.ticks_ms()))

    async def _skip(self, n, deadline):
        # Consume n bytes of payload without keeping them; bytes past it start the next frame.
        while True:
            take = min(n, self.filled - self.pos)
            self.pos += take
            n -= take
            if n == 0:
                return
            self.pos = self.filled = 0
            self.filled = await self._read(self.mv, time.ticks_diff(deadline, time.ticks_ms()))


def _unmask(buf, start, end, mask):
    # Client payloads are XOR-masked with a 4-byte key, repeating from the payload's start.
    m0, m1, m2, m3 = mask[0], mask[1], mask[2], mask[3]
    i = start
    stop = end - 3
    while i < stop:
        buf[i] ^= m0
        buf[i + 1] ^= m1
        buf[i + 2] ^= m2
        buf[i + 3] ^= m3
        i += 4
    j = 0
    while i < end:
        buf[i] ^= mask[j]
        i += 1
        j += 1
