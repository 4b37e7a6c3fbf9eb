# boardmcp bench floor: `boardmcp bench` runs this on the same MicroPython VM as the firmware, as
# the latency floor of its keep-alive rows. It is the least an asyncio HTTP server can do per
# request (the DESIGN's recipe: chunked reads, in-memory parsing, one write per response) and no
# MCP at all: it finds the head's end and Content-Length, waits for the body, and writes one
# canned JSON-RPC result. What the firmware takes above it is its own work. Never deployed.
#   micropython floor.py <port>
import asyncio
import sys

_BODY = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"floor"}]}}'
_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)


def _length(buf, head_end):
    # The Content-Length value in buf[:head_end] (0 without one), parsed in place.
    i = buf.find(b"ontent-Length:", 0, head_end)
    if i < 0:
        i = buf.find(b"ontent-length:", 0, head_end)
    if i < 0:
        return 0
    n = 0
    for b in buf[i + 14 : buf.find(b"\r\n", i, head_end + 2)]:
        if 48 <= b <= 57:
            n = n * 10 + b - 48
    return n


async def _serve(reader, writer):
    buf = bytearray(4096)
    mv = memoryview(buf)
    filled = 0
    while True:
        n = await reader.readinto(mv[filled:])
        if not n:
            break
        filled += n
        while True:
            head_end = buf.find(b"\r\n\r\n", 0, filled)
            if head_end < 0:
                break
            end = head_end + 4 + _length(buf, head_end)
            if filled < end:
                break
            writer.write(_RESPONSE)
            await writer.drain()
            buf[0 : filled - end] = mv[end:filled]
            filled -= end
    writer.close()


async def _main(port):
    await asyncio.start_server(_serve, "127.0.0.1", port)
    print("floor: serving on port", port)
    while True:
        await asyncio.sleep(3600)


asyncio.run(_main(int(sys.argv[1])))
