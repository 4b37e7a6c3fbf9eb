# WebSocket transport tests on the MicroPython VM: the real HTTP server on a loopback socket,
# a registry whose tools stream progress, ask the client and wait, and a small masked-frame client.
import asyncio
import gc
import json
import os
import struct
import sys

from boardmcp.registry import Registry, structured
from boardmcp.server import Server
from boardmcp.transport import buffers, stream
from loopback import listen

# The test client (and this module, compiled from source) share the VM with the server: heap on
# top of the chip's, so the server still sees its own budget.
CLIENT_HEAP = 32768
V = "2026-07-28"
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}
ANY = {"type": "object"}


async def _steps(args, ctx):
    for i in range(3):
        await ctx.progress(i + 1, 3)
    return structured({"steps": 3})


async def _confirm(args, ctx):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    answers = await ctx.ask({"go": ("elicitation/create", {"message": "Go?", "requestedSchema": schema})})
    return structured({"action": answers["go"]["action"]})


async def _wait(args, ctx):
    await ctx.sleep(60000)
    return structured({"waited": True})


def _server():
    reg = Registry()
    reg.add_tool({"name": "steps", "description": "progress", "inputSchema": ANY}, _steps)
    reg.add_tool({"name": "confirm", "description": "asks", "inputSchema": ANY}, _confirm)
    reg.add_tool({"name": "wait", "description": "sleeps", "inputSchema": ANY}, _wait)
    reg.changing.add("tools")
    return Server(reg, "test")


class Client:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    async def send(self, msg, opcode=1, fin=True):
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        mask = os.urandom(4)
        n = len(data)
        b0 = (0x80 if fin else 0) | opcode
        head = struct.pack("!BB", b0, 0x80 | n) if n < 126 else struct.pack("!BBH", b0, 0xFE, n)
        body = bytearray(data)
        for i in range(n):
            body[i] ^= mask[i & 3]
        self.writer.write(head + mask + body)
        await self.writer.drain()

    async def frame(self):
        head = await self.reader.readexactly(2)
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        payload = await self.reader.readexactly(n) if n else b""
        return head[0] & 0x0F, payload

    async def message(self):
        while True:
            opcode, payload = await asyncio.wait_for_ms(self.frame(), 5000)
            if opcode == 1:
                return json.loads(payload)

    async def call(self, rid, method, params=None):
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        await self.send(msg)
        return await self.message()


async def _connect(http):
    reader, writer = await asyncio.open_connection("127.0.0.1", http.port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: other, mcp\r\n\r\n"
    )
    await writer.drain()
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += await reader.read(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head, head  # RFC 6455's example
    assert b"Sec-WebSocket-Protocol: mcp\r\n" in head
    return Client(reader, writer)


async def _session(fn):
    gc.collect()
    http = await listen(_server(), 47301)
    c = await _connect(http)
    try:
        await fn(c, http.server)
    finally:
        c.writer.close()
        await c.writer.wait_closed()  # MicroPython closes the socket here
        http.close()
        await _closed()


async def _closed():
    # The board's side of the connection winds down on its own; wait for it (the next test
    # would otherwise find a WebSocket slot still taken).
    for _ in range(500):
        # Looked up afresh: the registry unloads ws.py when the heap runs short and it is idle.
        ws = sys.modules.get("boardmcp.transport.ws")
        if ws is None or not ws.busy:
            return
        await asyncio.sleep_ms(10)
    raise AssertionError("the WebSocket did not close")


def test_unmask_is_its_own_inverse():
    from boardmcp.transport import ws

    data = bytearray(range(11))
    ws._unmask(data, 1, 10, b"\x01\x02\x03\x04")
    assert list(data) == [0, 0, 0, 0, 0, 4, 4, 4, 12, 8, 10]
    ws._unmask(data, 1, 10, b"\x01\x02\x03\x04")
    assert data == bytearray(range(11))


async def test_progress_streams_ahead_of_the_result():
    async def check(c, server):
        params = {"name": "steps", "_meta": {"progressToken": "p"}}
        await c.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
        seen = []
        for _ in range(4):
            seen.append(await c.message())
        assert [m.get("method") for m in seen[:3]] == ["notifications/progress"] * 3
        assert [m["params"]["progress"] for m in seen[:3]] == [1, 2, 3]
        assert seen[3]["result"]["structuredContent"] == {"steps": 3}

    await _session(check)


async def test_the_server_asks_and_the_answer_comes_on_the_same_socket():
    async def check(c, server):
        init = {"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "t"}}
        await c.call(0, "initialize", init)
        await c.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "confirm"}})
        ask = await c.message()
        assert ask.get("method") == "elicitation/create", ask
        await c.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"ok": True}}})
        done = await c.message()
        assert done["id"] == 1 and done["result"]["structuredContent"] == {"action": "accept"}

    await _session(check)


async def test_cancel_reaches_a_request_in_flight_and_the_bound_holds():
    async def check(c, server):
        for rid in range(stream.MAX_INFLIGHT):
            await c.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": "wait"}})
        over = await c.call(99, "ping")
        assert over["id"] == 99 and over["error"]["code"] == -32603, over
        for rid in range(stream.MAX_INFLIGHT):
            await c.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": rid}})
        # Cancelled requests get no reply; the next request is served once they have ended.
        while True:
            reply = await c.call(100, "ping")
            assert reply["id"] == 100, reply
            if "result" in reply:
                break

    await _session(check)


async def test_server_notifications_reach_the_connection():
    async def check(c, server):
        await c.call(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {}})
        await server.list_changed("tools")
        assert (await c.message())["method"] == "notifications/tools/list_changed"
        # Revision 2026-07-28: a listen stream on the socket, acknowledged, then fed.
        params = {"notifications": {"toolsListChanged": True}, "_meta": ENVELOPE}
        await c.send({"jsonrpc": "2.0", "id": "L", "method": "subscriptions/listen", "params": params})
        ack = await c.message()
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        await server.list_changed("tools")
        got = []
        for _ in range(2):
            got.append(await c.message())
        assert [m["method"] for m in got] == ["notifications/tools/list_changed"] * 2
        listen = [m for m in got if "_meta" in m.get("params", {})]
        assert listen[0]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "L"

    await _session(check)


async def test_closing_ends_the_session_and_its_listen_stream():
    http = await listen(_server(), 47301)
    server = http.server
    c = await _connect(http)
    params = {"notifications": {"toolsListChanged": True}, "_meta": ENVELOPE}
    await c.send({"jsonrpc": "2.0", "id": "L", "method": "subscriptions/listen", "params": params})
    await c.message()
    assert len(server.sessions) == 1 and len(server.listeners) == 1
    await c.send(struct.pack("!H", 1000), opcode=8)
    opcode, payload = await asyncio.wait_for_ms(c.frame(), 5000)
    assert (opcode, payload) == (8, struct.pack("!H", 1000))
    for _ in range(100):
        if not server.sessions and not server.listeners:
            break
        await asyncio.sleep_ms(10)
    assert not server.sessions and not server.listeners
    c.writer.close()
    await c.writer.wait_closed()
    http.close()
    await _closed()


class _Socket:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


class _StarvedWriter:
    # Takes the first write, then runs out of memory: a frame half sent.
    def __init__(self):
        self.s = _Socket()
        self.writes = 0

    def write(self, data):
        self.writes += 1
        if self.writes > 1:
            raise MemoryError()

    async def drain(self):
        pass


class _Conn:
    def __init__(self, writer):
        self.stream = writer  # the HTTP connection's stream, which the WebSocket reads and writes
        self.buf = bytearray(16)
        self.mv = memoryview(self.buf)


async def test_out_of_memory_mid_frame_closes_the_connection():
    # A frame cut short can never be followed by another: the socket is closed at once and the
    # sender told the peer is gone; nothing more is written.
    from boardmcp.transport import ws

    writer = _StarvedWriter()
    sock = ws.WebSocket(_server(), _Conn(writer))
    gc.collect()
    out = buffers.stream()
    for _ in range(20):  # more than one segment (no 2 KB block asked for): copy_out writes twice
        out.write(b"x" * 100)
    try:
        await sock.write_part(out, 2000, True, True)
        raise AssertionError("no error")
    except OSError:
        pass
    assert sock.closed and writer.s.closed
    try:
        await sock.write(b"", 9)
        raise AssertionError("wrote after the broken frame")
    except OSError:
        pass
    assert writer.writes == 2
    sock.close()


async def test_no_heap_to_read_the_next_frame_gives_back_cached_code_or_waits_for_some():
    # The next frame's reader (a coroutine) finds no heap: the cached code is unloaded
    # (Registry.reclaim) and the frame is read after all; with nothing left to unload, the
    # reader waits for requests in flight to free some, and reads on.
    from boardmcp.transport import ws

    frame = ws.WebSocket._frame
    state = {"starve": 0, "reclaims": 0}

    def starved(self):
        if state["starve"]:
            state["starve"] -= 1
            raise MemoryError
        return frame(self)

    async def check(c, server):
        def reclaim():
            state["reclaims"] += 1
            return state["reclaims"] == 1  # code to unload the first time only

        server.registry.reclaim = reclaim
        ws.WebSocket._frame = starved
        try:
            state["starve"] = 1  # the reader after this ping's frame
            assert (await c.call(1, "ping"))["result"] == {}
            assert (await c.call(2, "ping"))["result"] == {}
            assert state == {"starve": 0, "reclaims": 1}
            state["starve"] = 3
            assert (await c.call(3, "ping"))["result"] == {}
            assert (await c.call(4, "ping"))["result"] == {}
            assert state == {"starve": 0, "reclaims": 4}
        finally:
            ws.WebSocket._frame = frame

    await _session(check)


async def test_running_out_of_heap_after_the_101_closes_without_http_text():
    # Once the 101 is out the connection carries frames only: an HTTP 503 written there would
    # be read as a frame header. The connection just closes, and the slot is freed.
    async def no_heap(self):
        raise MemoryError

    from boardmcp.transport import ws

    run = ws.WebSocket.run
    ws.WebSocket.run = no_heap
    http = await listen(_server(), 47301)
    try:
        c = await _connect(http)
        assert await asyncio.wait_for_ms(c.reader.read(64), 5000) == b""
        c.writer.close()
        await _closed()
    finally:
        ws.WebSocket.run = run
        http.close()
