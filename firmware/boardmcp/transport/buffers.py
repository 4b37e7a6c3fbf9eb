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
    if len(head) > OUT_SIZE // 2:
        write(head)
        head = b""
    send(write, put(0, head), src, n, tail)


def send(write, pos, src, n, tail):
    """As copy_out(), with the head already put in the buffer (up to pos: see put())."""
    src.seek(0)
    while n > OUT_SIZE - pos:  # more than the buffer holds: fill it and send it
        n -= OUT_SIZE - pos
        _fill(src, pos, OUT_SIZE - pos)
        write(_out_mv)
        pos = 0
    pos = _fill(src, pos, n)
    if pos + len(tail) <= OUT_SIZE:
        pos = put(pos, tail)
        write(_out_mv[:pos])
    else:
        write(_out_mv[:pos])
        write(tail)


# Apart from copy_out() and send(), so that their frames fit the C stack (more than 11 words,
# locals plus expression stack, and a frame is heap allocated for every response).
def put(pos, data):
    """Put data (short: a response's head) into the output buffer at pos; return where it ends."""
    end = pos + len(data)
    _out[pos:end] = data
    return end


def put_int(pos, n):
    """Put the decimal digits of n (>= 0) into the output buffer at pos, making no string;
    return where they end."""
    end = pos + 1
    rest = n // 10
    while rest:
        rest //= 10
        end += 1
    pos = end
    while True:
        pos -= 1
        _out[pos] = 48 + n % 10  # "0" + the digit
        n //= 10
        if not n:
            return end


def _fill(src, pos, n):
    # The next n bytes of src into the buffer at pos; where they end.
    src.readinto(_out_mv[pos : pos + n])
    return pos + n


def release(n):
    """After a response of n bytes: a rare large one gives the stream's memory back."""
    global _json
    if n > KEEP:
        _json = _buffer()
