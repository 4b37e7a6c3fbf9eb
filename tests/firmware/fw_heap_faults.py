# The transports when the heap runs out at awkward moments, on the MicroPython VM: what a client
# sees, and that nothing that serves (a reader, a task, the console) dies of it or keeps memory.
import asyncio
import json

from boardmcp import jsonrpc
from boardmcp.registry import Registry, structured
from boardmcp.server import Server
from boardmcp.transport import stream

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


def _server():
    reg = Registry()
    reg.add_tool({"name": "echo", "description": "echo", "inputSchema": ANY}, lambda args, ctx: structured(args))
    reg.add_tool({"name": "big", "description": "a long result", "inputSchema": ANY}, _big_list)
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
        error = conn.receive(_request(1, "echo"), 0, len(_request(1, "echo")))
    finally:
        asyncio.create_task = create
    reply = json.loads(error)
    assert reply["id"] == 1 and reply["error"]["code"] == jsonrpc.INTERNAL_ERROR, reply
    assert "retry" in reply["error"]["message"]
    assert conn.inflight == 0
    message = _request(2, "echo")
    assert conn.receive(message, 0, len(message)) is None
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
    task = asyncio.create_task(conn._serve(json.loads(_request(3, "starved"))))
    await task  # raises if the task ended by an exception
    assert conn.inflight == 0 and conn.sent == []
    conn.close()


async def test_the_console_reads_on_after_the_heap_ran_out_under_it():
    from boardmcp.transport import serial

    calls = []

    async def run(self):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError  # the first reader finds no heap; the console starts reading afresh

    real = serial.Console.run
    serial.Console.run = run
    try:
        await asyncio.wait_for_ms(serial.serve(_server()), 2000)
    finally:
        serial.Console.run = real
    assert len(calls) == 2
