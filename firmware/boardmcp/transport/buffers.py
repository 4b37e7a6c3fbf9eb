"""Output buffers shared by every transport: a response is serialised once, into a reused
stream, and copied out in segment-sized writes.

json.dump() into a reused stream allocates nothing, where dumps(), encode() and
concatenation copied every response three times, and needed blocks as large as the response
that a fragmented heap may not have. The buffers are shared by all connections: a response
is serialised and handed to the socket without yielding in between, and an asyncio
StreamWriter copies whatever the socket does not take at once.

    out = buffers.stream()                        # rewound, ready for json.dump()
    jsonrpc.dump_result(out, rid, result)
    buffers.copy_out(writer.write, head, out, out.tell(), b"")
    buffers.release(out.tell())
"""

import io

from micropython import const

OUT_SIZE = const(1460)  # about one TCP segment: a message up to this size leaves in one write
KEEP = const(4096)  # a serialisation buffer grown past this is dropped after use


def _buffer() -> "io.FileIO":
    # The esp32 stubs' BytesIO declares none of the stream methods the port gives it (write,
    # seek, tell, readinto); FileIO's are the same.
    return io.BytesIO(OUT_SIZE)  # pyright: ignore[reportReturnType]


_json = _buffer()
_out = bytearray(OUT_SIZE)
_out_mv = memoryview(_out)


def stream():
    """The shared serialisation stream, rewound. Use it and copy it out before any await."""
    _json.seek(0)
    return _json


def copy_out(write, head, src, n, tail):
    """write(head + the first n bytes of src + tail), copied through one segment-sized buffer:
    a single write() when they fit, else as few as it takes. head and tail are short."""
    src.seek(0)
    pos = len(head)
    if pos > OUT_SIZE // 2:
        write(head)
        pos = 0
    else:
        _out[:pos] = head
    while True:
        take = OUT_SIZE - pos if n > OUT_SIZE - pos else n
        if take:
            src.readinto(_out_mv[pos : pos + take])
            pos += take
            n -= take
        if n == 0 and pos + len(tail) <= OUT_SIZE:
            _out[pos : pos + len(tail)] = tail
            write(_out_mv[: pos + len(tail)])
            return
        write(_out_mv[:pos])
        pos = 0
        if n == 0:
            write(tail)
            return


def release(n):
    """After a response of n bytes: a rare large one gives the stream's memory back."""
    global _json
    if n > KEEP:
        _json = _buffer()
