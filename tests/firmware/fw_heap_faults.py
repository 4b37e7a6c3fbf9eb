# The transports and the registry when the heap runs out at awkward moments, on the MicroPython VM:
# what a client sees, and that nothing that serves (a reader, a task, the console) dies of it or
# keeps memory.
import asyncio
import gc
import json
import sys

from boardmcp import jsonrpc
from boardmcp.registry import Registry, structured, unload
from boardmcp.server import Server
from boardmcp.transport import http as http_module
from boardmcp.transport import stream
from boardmcp.transport.http import BUF_SIZE
from loopback import listen

# On top of the chip's heap: this module, compiled from source, and its test client.
CLIENT_HEAP = 32768
V = "2026-07-28"
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}
ANY = {"type": "object"}


def _no_heap(*args, **kwargs):
    raise MemoryError


async def _big_list(args, ctx):
    # A result with a long list: sent in pieces (chunked), not whole.
    return {"content": [{"type": "text", "text": "item %d" % i} for i in range(jsonrpc.STREAM_ITEMS * 4)]}


async def _nap(args, ctx):
    await ctx.sleep(args.get("ms", 200))
    return structured({"slept": True})


def _server():
    reg = Registry()
    reg.add_tool({"name": "echo", "description": "echo", "inputSchema": ANY}, lambda args, ctx: structured(args))
    reg.add_tool({"name": "big", "description": "a long result", "inputSchema": ANY}, _big_list)
    reg.add_tool({"name": "nap", "description": "waits", "inputSchema": ANY}, _nap)
    return Server(reg, "test")


class _Line(stream.Connection):
    # A stream connection whose messages out are kept (or fail, with `broken`).
    def __init__(self, server):
        super().__init__(server)
        self.sent = []
        self.broken = False

    async def write_part(self, out, n, first, last):
        if self.broken:
            raise MemoryError
        out.seek(0)
        self.sent.append(json.loads(out.read(n)))


def _request(rid, name):
    msg = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": name, "arguments": {}}}
    msg["params"]["_meta"] = ENVELOPE
    return json.dumps(msg).encode()


async def test_a_message_the_heap_cannot_take_gets_the_retry_error_and_the_reader_goes_on():
    # Not even the request's task fits: receive() does not raise into the reader, it hands back
    # -32603 "retry" for the reader to send; the next message is served as usual.
    conn = _Line(_server())
    create = asyncio.create_task
    asyncio.create_task = _no_heap
    try:
        error = conn.receive(_request(1, "echo"), 0, len(_request(1, "echo")), -1)
    finally:
        asyncio.create_task = create
    reply = json.loads(error)
    assert reply["id"] == 1 and reply["error"]["code"] == jsonrpc.INTERNAL_ERROR, reply
    assert "retry" in reply["error"]["message"]
    assert conn.inflight == 0
    message = _request(2, "echo")
    assert conn.receive(message, 0, len(message), -1) is None
    for _ in range(20):
        await asyncio.sleep_ms(0)
    assert [m["id"] for m in conn.sent] == [2], conn.sent
    conn.close()


async def test_a_request_task_ends_cleanly_when_even_its_error_reply_has_no_room():
    # The handler and then the error reply run out of heap: the task still ends without an
    # exception. (asyncio keeps the last task that failed, with all its frame held: a
    # connection and its buffers, until another task fails.)
    async def starved(args, ctx):
        raise MemoryError

    server = _server()
    server.registry.add_tool({"name": "starved", "description": "oom", "inputSchema": ANY}, starved)
    conn = _Line(server)
    conn.broken = True
    conn.inflight = 1  # as receive() counts the task it starts
    task = asyncio.create_task(conn._serve(json.loads(_request(3, "starved")), -1))
    await task  # raises if the task ended by an exception
    assert conn.inflight == 0 and conn.sent == []
    conn.close()


class _Input:
    # The console's input after its first byte: no heap for the first wait, then the bytes
    # given, then the end.
    def __init__(self, data):
        self.data = data
        self.waits = 0

    async def readinto(self, buf):
        self.waits += 1
        if self.waits == 1:
            raise MemoryError
        if not self.data:
            return 0
        buf[0] = self.data[0]
        self.data = self.data[1:]
        return 1


async def test_the_console_reads_on_when_the_heap_has_no_room_to_wait_for_input():
    # The reader keeps its buffers and its place: after a wait the heap had no room for, it
    # waits again, and the next line is served.
    from boardmcp.transport import serial

    class Console(serial.Console):
        sent = []

        async def write_part(self, out, n, first, last):
            out.seek(0)
            self.sent.append(json.loads(out.read(n)))

    data = _Input(_request(5, "echo") + b"\n")
    conn = Console(_server())
    await asyncio.wait_for_ms(conn.run(data, bytearray(b"\n")), 2000)  # a blank line first
    for _ in range(20):
        await asyncio.sleep_ms(0)
    assert data.waits > 2 and [m["id"] for m in Console.sent] == [5], Console.sent
    conn.close()


def _head(name, body):
    return (
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: %s\r\nConnection: close\r\n"
        "Mcp-Method: tools/call\r\nMcp-Name: %s\r\nContent-Length: %d\r\n\r\n" % (V, name, len(body))
    ).encode()


async def _post(port, body, name="big"):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_head(name, body) + body)
    await writer.drain()
    got = b""
    try:
        while True:
            part = await asyncio.wait_for_ms(reader.read(512), 3000)
            if not part:
                break
            got += part
    except asyncio.TimeoutError:
        got += b"<still open>"
    writer.close()
    return got


async def test_a_response_cut_short_by_the_heap_ends_the_connection_with_nothing_after_it():
    # Out of heap after a chunked response has begun: the status line is out, so no error
    # response may follow it. The connection closes without its last chunk, which tells the
    # client the response is incomplete.
    real = jsonrpc.dump_pieces

    def pieces(out, rid, value):
        for n, piece in enumerate(real(out, rid, value)):
            yield piece
            if n == 2:
                raise MemoryError

    jsonrpc.dump_pieces = pieces
    http = None
    try:
        http = await listen(_server(), 47401)
        got = await _post(http.port, _request(4, "big"))
    finally:
        jsonrpc.dump_pieces = real
        if http is not None:
            http.close()
    assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got[:200]
    assert got.count(b"HTTP/1.1") == 1, got
    assert not got.endswith(b"0\r\n\r\n"), got[-64:]


async def test_a_module_that_fails_to_load_leaves_no_heap_behind():
    # MicroPython leaves a module that failed to import in sys.modules' table (key gone, value
    # kept), where the GC still finds it; the registry clears it. This module fails as a .mpy
    # does when the heap runs out half-way through loading it.
    reg = Registry("cat_fails")
    # Loaded once first, whole: the names a load interns are kept for good (a new pool of them
    # is a 7 KB block), and would be counted as left behind.
    with open("boardmcp/zz_fails.py", "w") as f:
        f.write("DATA = bytearray(3000)\n")
    assert len(reg.cold("zz_fails.DATA")) == 3000
    unload("boardmcp.zz_fails")
    with open("boardmcp/zz_fails.py", "w") as f:
        f.write("DATA = bytearray(3000)\nraise MemoryError()\n")
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(2):
        try:
            reg.cold("zz_fails.DATA")
            raise AssertionError("the module loaded")
        except MemoryError:
            pass
    gc.collect()
    left = gc.mem_alloc() - before
    assert "boardmcp.zz_fails" not in sys.modules
    assert left < 1024, left  # the module's buffer alone is 3 KB


async def test_one_at_a_time_an_http_request_holds_its_turn_only_while_it_is_served():
    # On a tight heap requests take turns (Server.turn), but a request whose client is slow to
    # send the rest of it, or whose handler waits, holds none: the others are served meanwhile.
    server = _server()
    server.one_at_a_time = True
    http = await listen(server, 47401)
    try:
        body = _request(7, "echo")
        reader, slow = await asyncio.open_connection("127.0.0.1", http.port)
        request = _head("echo", body) + body
        slow.write(request[:40])  # the request line and part of a header
        await slow.drain()
        await asyncio.sleep_ms(50)
        ticket = server.turn()
        assert ticket > 0  # free while the slow request waits for its bytes
        server.done(ticket)
        got = await _post(http.port, _request(8, "echo"), "echo")
        assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b'"id":8' in got, got
        slow.write(request[40:])
        await slow.drain()
        answer = await asyncio.wait_for_ms(reader.read(2048), 3000)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b'"id":7' in answer, answer
        slow.close()

        napping = asyncio.create_task(_post(http.port, _request(9, "nap"), "nap"))
        await asyncio.sleep_ms(50)
        ticket = server.turn()
        assert ticket > 0  # the handler is waiting: it gave its turn back
        server.done(ticket)
        got = await napping
        assert b'"slept":true' in got, got
        await asyncio.sleep_ms(10)
        ticket = server.turn()
        assert ticket > 0  # and every request handed its turn back
        server.done(ticket)
    finally:
        http.close()


async def test_one_at_a_time_a_stream_request_holds_its_turn_until_its_answer_is_out():
    server = _server()
    server.one_at_a_time = True
    conn = _Line(server)
    message = _request(10, "echo")
    assert conn.receive(message, 0, len(message), server.turn()) is None
    assert server.turn() == 0  # the request's task has it: a second request waits
    for _ in range(20):
        await asyncio.sleep_ms(0)
    assert [m["id"] for m in conn.sent] == [10], conn.sent
    ticket = server.turn()
    assert ticket > 0
    server.done(ticket)
    note = b'{"jsonrpc": "2.0", "method": "notifications/initialized"}'
    assert conn.receive(note, 0, len(note), server.turn()) is None
    ticket = server.turn()
    assert ticket > 0  # a notification gives it back at once
    server.done(ticket)
    bad = b"{not json"
    assert conn.receive(bad, 0, len(bad), server.turn()) is not None
    ticket = server.turn()
    assert ticket > 0  # and so does a message answered with an error
    server.done(ticket)
    conn.close()


async def test_a_body_the_heap_has_no_block_for_is_answered_as_out_of_memory_and_the_connection_serves_on():
    # A body longer than the connection's buffer needs one block of its own. Without one (even
    # after the tools modules are unloaded) it is read and dropped, the request gets -32603
    # "retry" with a null id (it was never parsed), and the next request on the connection is
    # served: no 503, no closed connection.
    real = bytearray

    def short_of_blocks(n=0):
        if isinstance(n, int) and n > BUF_SIZE:
            raise MemoryError
        return real(n)

    http = await listen(_server(), 47401)
    http_module.bytearray = short_of_blocks
    try:
        big = json.loads(_request(11, "echo"))
        big["params"]["arguments"] = {"pad": "x" * (2 * BUF_SIZE)}
        big = json.dumps(big).encode()
        small = _request(12, "echo")
        reader, writer = await asyncio.open_connection("127.0.0.1", http.port)
        keep = lambda name, body: _head(name, body).replace(b"Connection: close\r\n", b"")  # noqa: E731
        writer.write(keep("echo", big) + big[:100])
        await writer.drain()
        await asyncio.sleep_ms(20)
        writer.write(big[100:])  # the rest comes later: read (and dropped) as it arrives
        await writer.drain()
        got = b""
        while got.count(b"HTTP/1.1") < 1 or not got.endswith(b"}"):
            got += await asyncio.wait_for_ms(reader.read(1024), 3000)
        assert got.startswith(b"HTTP/1.1 200 OK\r\n"), got
        reply = json.loads(got[got.find(b"\r\n\r\n") + 4 :])
        assert reply["id"] is None and reply["error"]["code"] == jsonrpc.INTERNAL_ERROR, reply
        assert "retry" in reply["error"]["message"], reply
        writer.write(keep("echo", small) + small)
        await writer.drain()
        got = await asyncio.wait_for_ms(reader.read(1024), 3000)
        assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b'"id":12' in got, got
        writer.close()
    finally:
        del http_module.bytearray
        http.close()
