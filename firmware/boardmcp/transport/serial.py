"""Serial transport: newline-delimited JSON-RPC (the MCP stdio framing) on the console,
alongside the network transports.

The console stays the REPL's: Ctrl-C (never part of JSON text) still raises KeyboardInterrupt,
so mpremote can break in; `print` output shares the line and the host skips what is not
JSON-RPC. Blank lines are ignored. stdin is read a byte at a time while poll says more is
ready: on a chip a bigger read blocks until it is full.

    asyncio.create_task(serial.serve(server, reader, one))  # once reader has read a byte into one
"""

import asyncio
import select
import sys

from micropython import const

from .. import jsonrpc
from ..jsonrpc import INVALID_REQUEST
from . import buffers
from .stream import Connection

LINE_SIZE = const(512)  # the line buffer; longer lines get a buffer of their own, up to MAX_LINE
MAX_LINE = const(8192)  # as HTTP's MAX_BODY: a longer message needs a block a small heap may lack
RETRY_MS = const(50)  # before waiting for input again after the heap had no room to


class Console(Connection):
    """The console as one MCP connection."""

    async def write_part(self, out, n, first, last):
        """One message, one line (written in parts when long)."""
        try:
            buffers.copy_out(sys.stdout.buffer.write, b"", out, n, b"\n" if last else b"")
        except MemoryError:
            # Part of the line may be out: end it, so what follows starts a line of its own (the
            # host skips the broken one) and the caller's error reply is read.
            sys.stdout.buffer.write(b"\n")
            raise

    async def run(self, reader, one):
        """Serve lines from stdin, the first byte of which is in one (a bytearray(1) that reader
        reads into), until stdin ends (never, on a chip). The reader outlives a full heap: its
        buffers are made once, here, and what a message needs that the heap lacks costs that
        message only (its error reply, or the wait for the next byte, which is tried again)."""
        stdin = sys.stdin.buffer
        poller = select.poll()
        poller.register(stdin, select.POLLIN)
        line = small = bytearray(LINE_SIZE)
        n = 0
        overflow = None  # why the line being read is dropped, once it is
        while True:
            while True:
                c = one[0]
                if c == 10:  # end of line
                    if n and line[n - 1] == 13:
                        n -= 1
                    try:
                        error = None
                        if overflow:
                            error = jsonrpc.error(None, INVALID_REQUEST, overflow)
                        elif n:
                            server = self.server
                            error = self.receive(line, 0, n, server.turn() or await server.wait_turn())
                        if error:
                            await self.reply(error)
                    except MemoryError:
                        pass  # no room for the error reply: that request times out
                    n = 0
                    overflow = None
                    line = small
                elif not overflow:
                    if n == len(line):
                        grown, overflow = _grow(line, n)
                        if grown is not None:
                            line = grown
                    if overflow:  # the rest of this line is dropped
                        line = small
                        n = 0
                    else:
                        line[n] = c
                        n += 1
                if not _ready(poller) or not stdin.readinto(one):
                    break
            while True:
                try:
                    if not await reader.readinto(one):
                        return
                    break
                except MemoryError:
                    await asyncio.sleep_ms(RETRY_MS)  # allocates nothing; others free heap meanwhile


def _ready(poller):
    # Is a byte waiting? poll(0) would build a list for every byte read (about 100 B each);
    # ipoll reuses one tuple.
    for _ in poller.ipoll(0):
        return True
    return False


def _grow(line, n):
    # (a bigger line buffer holding the first n bytes, None), or (None, why the line is dropped).
    if n >= MAX_LINE:
        return None, "Message longer than %d bytes" % MAX_LINE
    try:
        bigger = bytearray(min(2 * n, MAX_LINE))
    except MemoryError:
        return None, "Out of memory on the board for a message this long; retry"
    bigger[0:n] = line
    return bigger, None


async def serve(server, reader, one):
    """Serve MCP on the console until stdin ends: reader is an asyncio.StreamReader on
    sys.stdin.buffer that has read the first byte into one, a bytearray(1)."""
    conn = Console(server)
    try:
        await conn.run(reader, one)
    finally:
        conn.close()
