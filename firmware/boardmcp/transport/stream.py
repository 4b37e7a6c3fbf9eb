"""What the stream transports (WebSocket, serial) share: one MCP session per connection,
each request served as its own task, and the connection as the `out` of every request.

A transport subclasses Connection, implements `write(data)` (one encoded JSON-RPC message
out, raising OSError once the peer is gone) and feeds every message it receives to
`receive(buf, start, end)`:

    class Line(Connection):
        async def write(self, data): ...
    conn = Line(server)
    await conn.receive(buf, 0, n)   # for each message read
    conn.close()                    # when the peer goes away
"""

import asyncio
import gc
import json
import sys

from micropython import const

from .. import jsonrpc
from ..jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, Error

MAX_INFLIGHT = const(4)  # requests served at once per connection; more get an error at once


class Connection:
    """One connection of a stream transport, and the `out` its requests stream on."""

    def __init__(self, server):
        self.server = server
        self.closed = False
        self.inflight = 0
        self._pulse = asyncio.Event()
        self.session = server.attach(self)

    async def write(self, data):
        """Send one encoded JSON-RPC message (bytes); OSError when the peer is gone."""
        raise NotImplementedError

    async def keepalive(self):
        """Called by idle() after a quiet period (e.g. a WebSocket ping)."""

    # -- the `out` interface (see context.py) ------------------------------------------------

    async def send(self, msg):
        """Send one JSON-RPC message (a dict)."""
        if self.closed:
            raise OSError("connection closed")
        await self.write(json.dumps(msg).encode())

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

    async def receive(self, buf, start, end):
        """Take one message, buf[start:end]. Requests start a task; the rest is handled now."""
        server = self.server
        try:
            msg, kind = jsonrpc.decode(buf, start, end)
        except Error as e:
            await self._reply(jsonrpc.error(e.id, e.code, e.message, e.data))
            return
        except MemoryError:
            gc.collect()
            await self._reply(jsonrpc.error(None, INTERNAL_ERROR, "Out of memory on the board; retry"))
            return
        if isinstance(msg, list):
            await self._reply(jsonrpc.error(None, INVALID_REQUEST, "Invalid request: send one message per line/frame"))
            return
        if kind != jsonrpc.REQUEST:
            try:
                server.accept(msg, kind == jsonrpc.RESPONSE, server.enveloped(msg), self.session, None)
            except Error:
                pass  # nothing answers a notification or a response
            # A cancellation may concern a request waiting in idle(): let it look.
            self._wake()
            return
        if self.inflight >= MAX_INFLIGHT:
            await self._reply(
                jsonrpc.error(msg["id"], INTERNAL_ERROR, "At most %d requests at once per connection" % MAX_INFLIGHT)
            )
            return
        self.inflight += 1
        asyncio.create_task(self._serve(msg))  # noqa: RUF006 (the scheduler holds its tasks)

    async def _serve(self, msg):
        rid = msg["id"]
        try:
            try:
                result = await self.server.handle(msg, self.server.enveloped(msg), self.session, self, None)
                if result is None:
                    return  # cancelled: nothing is sent for it
                data = jsonrpc.result(rid, result)
            except Error as e:
                data = jsonrpc.error(rid, e.code, e.message, e.data)
            except MemoryError:
                gc.collect()
                data = jsonrpc.error(rid, INTERNAL_ERROR, "Out of memory on the board; retry")
            except Exception as e:
                sys.print_exception(e)
                data = jsonrpc.error(rid, INTERNAL_ERROR, "Internal error: " + type(e).__name__)
            msg = result = None
            await self._reply(data)
        finally:
            self.inflight -= 1

    async def _reply(self, data):
        if self.closed:
            return
        try:
            await self.write(data)
        except OSError:
            pass  # the peer is gone; the reader notices and closes
        except MemoryError:
            gc.collect()  # no room to frame this message: it is lost, the connection serves on

    def close(self):
        """The connection is gone: end its session (cancelling its requests) and wake idlers."""
        if self.session is not None:
            self.server.end_session(self.session.id)
            self.session = None
        self.stop()
