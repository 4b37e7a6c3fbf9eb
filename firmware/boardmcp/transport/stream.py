"""What the stream transports (WebSocket, serial) share: one MCP session per connection,
each request served as its own task, and the connection as the `out` of every request.

A transport subclasses Connection, implements `write_part(out, n, first, last)` (send the
first n bytes of the stream `out` as a part of one message, raising OSError once the peer is
gone; a short message is one part, a long result is sent item by item) and feeds every message
it receives to `receive(buf, start, end, ticket)`, sending back the error that returns, if any:

    class Line(Connection):
        async def write_part(self, out, n, first, last): ...
    conn = Line(server)
    ticket = server.turn() or await server.wait_turn()  # for each message read (Server.turn)
    error = conn.receive(buf, 0, n, ticket)
    if error:
        await conn.reply(error)
    conn.close()                     # when the peer goes away
"""

import asyncio
import sys

from micropython import const

from .. import jsonrpc
from ..jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, Error
from ..registry import is_coroutine
from . import buffers

MAX_INFLIGHT = const(4)  # requests served at once per connection; more get an error at once
PART = const(1024)  # a long result goes out in parts of about this size
_ONE_MESSAGE = "Invalid request: send one message per line/frame"


class Connection:
    """One connection of a stream transport, and the `out` its requests stream on."""

    def __init__(self, server):
        self.server = server
        self.closed = False
        self.inflight = 0
        self._pulse = asyncio.Event()
        # Held while a message goes out: a long result is sent in parts, with awaits between
        # them, and no other message may start before its last part (on a WebSocket, another
        # text frame between a message's fragments breaks the connection).
        self._sending = asyncio.Lock()
        self.session = server.attach(self)

    async def write_part(self, out, n, first, last):
        """Send out's first n bytes as part of one message (first/last: where in it); copy them
        before any await (out is shared). OSError when the peer is gone."""
        raise NotImplementedError

    async def keepalive(self):
        """Called by idle() after a quiet period (e.g. a WebSocket ping)."""

    # -- the `out` interface (see context.py) ------------------------------------------------

    async def send(self, msg):
        """Send one JSON-RPC message (a dict)."""
        if self.closed:
            raise OSError("connection closed")
        async with self._sending:
            out = buffers.stream()
            jsonrpc.dump(msg, out)
            await self.write_part(out, out.tell(), True, True)

    async def idle(self, ms):
        """Wait up to ms, or until something happens on the connection; True once it is closed."""
        if not self.closed:
            try:
                await asyncio.wait_for_ms(self._pulse.wait(), ms)
            except asyncio.TimeoutError:
                if not self.closed:
                    try:
                        await self.keepalive()
                    except OSError:
                        pass
        return self.closed

    def stop(self):
        """The session is over: wake every idle() with True."""
        self.closed = True
        self._wake()

    def _wake(self):
        # Wake every task in idle() now; later idle() calls wait afresh.
        self._pulse.set()
        self._pulse.clear()

    # -- messages in -------------------------------------------------------------------------

    def receive(self, buf, start, end, ticket):
        """Take one message, buf[start:end], with the turn taken for it (its ticket, see
        Server.turn): a request starts a task that serves it, and the turn passes to that task;
        anything else is handled now, and the turn handed back. Returns the error to send back
        (bytes: the reader awaits `reply(error)` before reading on) or None. Never raises: out
        of memory on the way, the error is -32603 "retry" (None without room even for that: the
        client's request times out). Not a coroutine, so taking a message allocates no frame the
        heap may lack."""
        server = self.server
        rid = None
        try:
            try:
                msg, kind = jsonrpc.decode(buf, start, end)
            except Error as e:
                return jsonrpc.error(e.id, e.code, e.message, e.data)
            if isinstance(msg, list):
                return jsonrpc.error(None, INVALID_REQUEST, _ONE_MESSAGE)
            if kind != jsonrpc.REQUEST:
                try:
                    server.accept(msg, kind == jsonrpc.RESPONSE, server.enveloped(msg), self.session, None)
                except Error:
                    pass  # nothing answers a notification or a response
                # A cancellation may concern a request waiting in idle(): let it look.
                self._wake()
                return None
            rid = msg["id"]
            if self.inflight >= MAX_INFLIGHT:
                return jsonrpc.error(rid, INTERNAL_ERROR, "At most %d requests at once per connection" % MAX_INFLIGHT)
            asyncio.create_task(self._serve(msg, ticket))  # noqa: RUF006 (the scheduler holds its tasks)
            self.inflight += 1  # counted once the task exists; it runs only after the reader yields
            ticket = 0  # the task's now
        except MemoryError:
            return self._out_of_memory(rid)
        finally:
            server.done(ticket)
        return None

    async def _serve(self, msg, ticket):
        # A task must not end by an exception: asyncio keeps the last task that did, with all
        # its frame held (the connection, its buffers), until another does. Out of memory even
        # for the error reply, the client's request times out.
        rid = msg["id"]
        data = None
        try:
            try:
                result = self.server.handle(msg, self.server.context(self.server.enveloped(msg), self.session, self))
                if is_coroutine(result):  # a handler that waits: without the turn
                    self.server.done(ticket)
                    ticket = 0
                    result = await result
                if result is None:
                    return  # cancelled: nothing is sent for it
                msg = None
                if not self.closed:
                    await self._result(rid, result)
                return
            except Error as e:
                data = jsonrpc.error(rid, e.code, e.message, e.data)
            except MemoryError:
                msg = result = None
                data = self._out_of_memory(rid)
            except OSError:
                return  # the peer is gone; the reader notices and closes
            except Exception as e:
                sys.print_exception(e)
                data = jsonrpc.error(rid, INTERNAL_ERROR, "Internal error: " + type(e).__name__)
            msg = result = None
            if data is not None:
                await self.reply(data)
        except MemoryError:
            pass
        finally:
            self.inflight -= 1
            self.server.done(ticket)

    async def _result(self, rid, result):
        # The response, serialised into the shared stream: whole, or item by item (in parts)
        # when it holds long lists, so no block as large as the response is needed.
        async with self._sending:
            out = buffers.stream()
            if not jsonrpc.is_large(result):
                jsonrpc.dump_result(out, rid, result)
                n = out.tell()
                await self.write_part(out, n, True, True)
                buffers.release(n)
                return
            first = True
            most = 0
            try:
                for _ in jsonrpc.dump_pieces(out, rid, result):
                    n = out.tell()
                    if n >= PART:
                        most = max(most, n)
                        await self.write_part(out, n, first, False)
                        first = False
                        out.seek(0)  # other connections may have used it meanwhile
            except MemoryError:
                if first:
                    raise
                # Parts are out: end the message (the client finds it truncated), then the error.
                out.seek(0)
                await self.write_part(out, 0, False, True)
                raise
            n = out.tell()
            await self.write_part(out, n, first, True)
            buffers.release(max(most, n))

    def _out_of_memory(self, rid):
        # The -32603 "retry" for a message the heap had no room for, once what can be unloaded is
        # (so that the retry finds room); None without room even for that.
        try:
            self.server.registry.reclaim()
            return jsonrpc.error(rid, INTERNAL_ERROR, "Out of memory on the board; retry")
        except MemoryError:
            return None

    async def reply(self, data):
        """Send a short encoded message (bytes); lost only when the peer is gone."""
        if self.closed:
            return
        async with self._sending:
            out = buffers.stream()
            out.write(data)
            try:
                await self.write_part(out, len(data), True, True)
            except OSError:
                pass  # the peer is gone; the reader notices and closes

    def close(self):
        """The connection is gone: end its session (cancelling its requests) and wake idlers."""
        if self.session is not None:
            self.server.end_session(self.session.id)
            self.session = None
        self.stop()
