# MCP server tests (both eras), on the MicroPython VM, with a registry of plain tools.
import asyncio
import json
import time

from boardmcp import jsonrpc
from boardmcp.registry import Registry, ToolError, is_coroutine, structured
from boardmcp.server import TURN_MAX_MS, Server, decode_header_value, is_modern
from boardmcp.transport.http import Headers, check_fields

V = "2026-07-28"
K_VERSION = "io.modelcontextprotocol/protocolVersion"
K_CAPS = "io.modelcontextprotocol/clientCapabilities"


def _double(args, ctx):
    return structured(2 * args["n"])


def _server():
    reg = Registry()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False}
    reg.add_tool({"name": "double", "description": "2n", "inputSchema": schema}, _double)

    def broken(args, ctx):
        raise ToolError("sensor absent; check wiring")

    reg.add_tool({"name": "broken", "description": "fails", "inputSchema": {"type": "object"}}, broken)
    return Server(reg, "test")


def _req(method, params=None, modern=False):
    msg = {"jsonrpc": "2.0", "id": 1, "method": method}
    if modern:
        params = dict(params or {})
        params["_meta"] = {K_VERSION: V, K_CAPS: {}}
    if params is not None:
        msg["params"] = params
    return msg


def _sent(result):
    # A result as the client receives it (list pages are sent straight from the catalog's files).
    return json.loads(jsonrpc.result(1, result))["result"]


def _fields(fields):
    # A request head with these fields, as the HTTP transport hands it to the server.
    head = bytearray(b"POST /mcp HTTP/1.1" + b"".join(b"\r\n%s: %s" % (k, v.encode()) for k, v in fields.items()))
    eol = head.find(b"\r\n") if fields else len(head)
    check_fields(head, eol, len(head))
    return Headers(bytes(head), eol)


def _headers(method, name=None, version=V):
    h = {b"MCP-Protocol-Version": version, b"Mcp-Method": method}
    if name is not None:
        h[b"Mcp-Name"] = name
    return _fields(h)


def _run(srv, msg, modern=False, headers=None, session=None, out=None):
    result = srv.handle(msg, srv.context(modern, session, out, headers))
    return asyncio.run(result) if is_coroutine(result) else result


def _error(fn):
    try:
        fn()
    except jsonrpc.Error as e:
        return e
    raise AssertionError("no error")


def test_era_routing_by_version_header():
    assert not is_modern(_fields({}))
    for v in ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"):
        assert not is_modern(_fields({b"MCP-Protocol-Version": v}))
        assert is_modern(_fields({b"MCP-Protocol-Version": v + "x"}))
    assert is_modern(_fields({b"mcp-protocol-version": V})) and is_modern(_fields({b"MCP-Protocol-Version": "v999"}))
    # A repeated field is its values joined (RFC 9110): no longer a handshake version.
    assert is_modern(_fields({b"MCP-Protocol-Version": "2025-11-25", b"mcp-protocol-version": "2025-11-25"}))


def test_initialize_negotiates_handshake_versions():
    srv = _server()
    for v in ("2025-11-25", "2025-06-18", "2025-03-26"):
        r = _run(srv, _req("initialize", {"protocolVersion": v, "capabilities": {}}), False)
        assert r["protocolVersion"] == v
        assert r["serverInfo"]["name"] == "boardmcp" and "tools" in r["capabilities"]
    r = _run(srv, _req("initialize", {"protocolVersion": "2024-11-05", "capabilities": {}}), False)
    assert r["protocolVersion"] == "2025-11-25"
    assert "resultType" not in r


def test_handshake_ping_is_exactly_empty():
    assert _run(_server(), _req("ping")) == {}


def test_tools_list_and_call():
    srv = _server()
    names = [t["name"] for t in _sent(_run(srv, _req("tools/list"), False))["tools"]]
    assert names == ["double", "broken"]
    r = _run(srv, _req("tools/call", {"name": "double", "arguments": {"n": 21}}), False)
    assert r["structuredContent"] == 42 and "isError" not in r


def test_tool_failures_are_results():
    srv = _server()
    r = _run(srv, _req("tools/call", {"name": "broken"}), False)
    assert r["isError"] is True and "check wiring" in r["content"][0]["text"]
    r = _run(srv, _req("tools/call", {"name": "double", "arguments": {"n": "x"}}), False)
    assert r["isError"] is True and "n must be of type integer" in r["content"][0]["text"]


def test_async_tools_are_awaited_and_their_failures_are_results():
    srv = _server()
    reg = srv.registry

    async def later(args, ctx):
        await asyncio.sleep_ms(1)
        if args.get("how") == "tool":
            raise ToolError("not ready")
        if args.get("how") == "bug":
            raise KeyError("k")
        return structured(7)

    reg.add_tool({"name": "later", "description": "waits", "inputSchema": {"type": "object"}}, later)
    r = _run(srv, _req("tools/call", {"name": "later"}), False)
    assert r["structuredContent"] == 7 and "isError" not in r
    r = _run(srv, _req("tools/call", {"name": "later", "arguments": {"how": "tool"}}), False)
    assert r["isError"] is True and r["content"][0]["text"] == "later: not ready"
    r = _run(srv, _req("tools/call", {"name": "later", "arguments": {"how": "bug"}}), False)
    assert r["isError"] is True and "later failed: KeyError" in r["content"][0]["text"]


def test_protocol_faults_are_errors():
    srv = _server()
    assert _error(lambda: _run(srv, _req("nope"), False)).code == jsonrpc.METHOD_NOT_FOUND
    e = _error(lambda: _run(srv, _req("tools/call", {"name": "missing"}), False))
    assert e.code == jsonrpc.INVALID_PARAMS and "missing" in e.message
    e = _error(lambda: _run(srv, _req("tools/call", {}), False))
    assert e.code == jsonrpc.INVALID_PARAMS
    e = _error(lambda: _run(srv, _req("tools/call", {"name": "double", "arguments": [1]}), False))
    assert e.code == jsonrpc.INVALID_PARAMS
    e = _error(lambda: _run(srv, _req("initialize", {}), False))
    assert e.code == jsonrpc.INVALID_PARAMS


def test_discover_and_modern_results():
    srv = _server()
    r = _run(srv, _req("server/discover", modern=True), True, _headers("server/discover"))
    assert r["supportedVersions"] == [V] and r["resultType"] == "complete"
    assert r["ttlMs"] >= 0 and r["cacheScope"] in ("public", "private")
    assert r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "boardmcp"
    r = _run(srv, _req("tools/list", modern=True), True, _headers("tools/list"))
    assert r["resultType"] == "complete" and "ttlMs" in r and len(_sent(r)["tools"]) == 2
    r = _run(
        srv,
        _req("tools/call", {"name": "double", "arguments": {"n": 1}}, modern=True),
        True,
        _headers("tools/call", "double"),
    )
    assert r["structuredContent"] == 2 and r["resultType"] == "complete"
    # Handshake results stay unstamped even after modern traffic.
    assert "resultType" not in _run(srv, _req("tools/list"), False)


def test_modern_ladder_order():
    srv = _server()
    bare = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {K_VERSION: V}}}
    assert _error(lambda: _run(srv, bare, True, _fields({}))).code == jsonrpc.INVALID_PARAMS
    msg = _req("tools/list", modern=True)
    assert _error(lambda: _run(srv, msg, True, _headers("prompts/list"))).code == -32020
    assert _error(lambda: _run(srv, msg, True, _fields({b"mcp-protocol-version": V}))).code == -32020
    call = _req("tools/call", {"name": "double", "arguments": {"n": 1}}, modern=True)
    assert _error(lambda: _run(srv, call, True, _headers("tools/call"))).code == -32020
    assert _error(lambda: _run(srv, call, True, _headers("tools/call", "wrong"))).code == -32020
    odd = _req("tools/list", modern=True)
    odd["params"]["_meta"][K_VERSION] = "v999.0.0"
    assert _error(lambda: _run(srv, odd, True, _headers("tools/list"))).code == -32020
    e = _error(lambda: _run(srv, odd, True, _headers("tools/list", version="v999.0.0")))
    assert e.code == -32022 and e.data == {"supported": [V], "requested": "v999.0.0"}


def test_removed_methods_are_not_found_in_modern_era():
    srv = _server()
    for m in ("initialize", "ping", "logging/setLevel", "resources/subscribe", "unknown/method"):
        e = _error(lambda m=m: _run(srv, _req(m, modern=True), True, _headers(m)))
        assert e.code == jsonrpc.METHOD_NOT_FOUND, m


def test_header_values_base64_sentinel():
    assert decode_header_value("=?base64?SGVsbG8=?=") == "Hello"
    assert decode_header_value("=?base64?SGVsbG8?=") is None
    assert decode_header_value("=?base64?SGVs!!!bG8=?=") is None
    assert decode_header_value("SGVsbG8=") == "SGVsbG8="
    assert decode_header_value("=?base64?SGVsbG8=") == "=?base64?SGVsbG8="
    assert decode_header_value(None) is None


def test_modern_notifications_need_a_served_version():
    srv = _server()
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    srv.accept(note, False, True, None, _fields({b"mcp-protocol-version": V}))
    assert _error(lambda: srv.accept(note, False, True, None, _fields({b"mcp-protocol-version": "v9"}))).code == -32022
    resp = {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert _error(lambda: srv.accept(resp, True, True, None, _fields({b"mcp-protocol-version": V}))).code == -32600
    srv.accept(resp, True, False)


async def _settle():
    for _ in range(5):
        await asyncio.sleep_ms(0)


async def test_a_roomy_board_gives_every_request_a_turn_at_once():
    srv = _server()
    tickets = [srv.turn() for _ in range(5)]
    assert tickets == [-1] * 5, tickets
    srv.done(-1)
    assert srv.turn() == -1


async def test_one_at_a_time_a_request_waits_until_the_turn_is_handed_back():
    srv = _server()
    srv.one_at_a_time = True
    first = srv.turn()
    assert first > 0
    assert srv.turn() == 0  # held: the next request must wait
    got = []

    async def waiting(name):
        got.append((name, await srv.wait_turn()))

    tasks = [asyncio.create_task(waiting("a")), asyncio.create_task(waiting("b"))]
    await _settle()
    assert got == []
    srv.done(first + 1)  # a ticket that does not hold the turn changes nothing
    srv.done(0)
    srv.done(-1)
    await _settle()
    assert got == []
    srv.done(first)
    await _settle()
    assert len(got) == 1 and got[0][1] not in (0, first), got  # one waiter took it, the other waits on
    srv.done(first)  # handed back twice: ignored, the new holder keeps it
    assert srv.turn() == 0
    srv.done(got[0][1])
    await _settle()
    assert len(got) == 2 and got[1][0] != got[0][0], got
    srv.done(got[1][1])
    assert srv.turn() > 0
    for task in tasks:
        await task


async def test_a_turn_held_too_long_stops_holding_the_others_back():
    # A client slow to take its response keeps its request's turn: past TURN_MAX_MS the next
    # request takes it over (overdue() is called by the HTTP server's reaper), and the slow
    # request's late done() does not end the new holder's turn.
    srv = _server()
    srv.one_at_a_time = True
    slow = srv.turn()
    got = []

    async def waiting():
        got.append(await srv.wait_turn())

    task = asyncio.create_task(waiting())
    await _settle()
    srv.overdue(time.ticks_ms())
    await _settle()
    assert got == []  # not overdue yet
    await asyncio.sleep_ms(TURN_MAX_MS + 20)
    srv.overdue(time.ticks_ms())
    await _settle()
    assert len(got) == 1 and got[0] > 0, got
    srv.done(slow)
    assert srv.turn() == 0
    srv.done(got[0])
    assert srv.turn() > 0
    await task
