# MCP features of server.py and context.py on the MicroPython VM: pagination, resources, prompts,
# completion, logging levels, requests to the client (both eras), cancellation, listen streams.
import asyncio
import json

from boardmcp import jsonrpc
from boardmcp.registry import NotFound, Registry, is_coroutine, text
from boardmcp.server import Server

V = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}
ASK = ("elicitation/create", {"message": "name?", "requestedSchema": {"type": "object"}})


class Out:
    """A transport's `out` that records what the server sends ahead of a result."""

    def __init__(self):
        self.sent = []
        self.stopped = False

    async def send(self, msg):
        self.sent.append(msg)

    async def idle(self, ms):
        await asyncio.sleep_ms(5)
        return self.stopped

    def stop(self):
        self.stopped = True


async def _asker(args, ctx):
    answers = await ctx.ask({"who": ASK})
    return text("hi " + answers["who"]["content"]["name"])


async def _two_rounds(args, ctx):
    a = await ctx.ask({"one": ASK})
    b = await ctx.ask({"two": ASK})
    return text(a["one"]["content"]["name"] + b["two"]["content"]["name"])


async def _slow(args, ctx):
    for i in range(100):
        await ctx.progress(i, 100)
        await ctx.sleep(10)
    return text("done")


def _server(page_size=50):
    reg = Registry()
    obj = {"type": "object"}
    for i in range(5):
        reg.add_tool({"name": "t%d" % i, "description": "d", "inputSchema": obj}, lambda a, c: text("ok"))
    reg.add_tool({"name": "ask", "description": "asks", "inputSchema": obj}, _asker)
    reg.add_tool({"name": "two", "description": "asks twice", "inputSchema": obj}, _two_rounds)
    reg.add_tool({"name": "slow", "description": "slow", "inputSchema": obj}, _slow)
    reg.add_resource({"uri": "x://a", "name": "a", "mimeType": "text/plain"}, lambda uri: "A")

    def by_id(uri, v):
        if v["id"] == "0":
            raise NotFound(uri)
        return "item " + v["id"]

    ids = ("1", "12", "2")
    reg.add_template(
        {"uriTemplate": "x://items/{id}", "name": "items"}, by_id, lambda n, v, k: [i for i in ids if i.startswith(v)]
    )
    reg.add_prompt(
        {"name": "p", "description": "d", "arguments": [{"name": "who", "required": True}]},
        lambda args, ctx: {"messages": [{"role": "user", "content": {"type": "text", "text": args["who"]}}]},
        lambda name, value, known: [w for w in ("ada", "alan", "bob") if w.startswith(value)],
    )
    return Server(reg, "test", page_size=page_size)


def _req(method, params=None, modern=False, rid=1):
    params = dict(params or {})
    if modern:
        meta = dict(META)
        meta.update(params.pop("_meta", {}))
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


async def _handle(srv, msg, *args):
    # Server.handle() answers at once, or returns an awaitable when the handler waits.
    result = srv.handle(msg, srv.context(*args))
    return (await result) if is_coroutine(result) else result


async def _error(coro):
    try:
        await coro
    except jsonrpc.Error as e:
        return e
    raise AssertionError("no error")


async def test_pagination_walks_every_page_and_rejects_bad_cursors():
    srv = _server(page_size=3)
    names = []
    cursor = None
    pages = 0
    while True:
        params = {"cursor": cursor} if cursor else {}
        r = await _handle(srv, _req("tools/list", params), False)
        names += [t["name"] for t in json.loads(jsonrpc.result(1, r))["result"]["tools"]]
        pages += 1
        cursor = r.get("nextCursor")
        if cursor is None:
            break
    assert pages == 3 and names == ["t0", "t1", "t2", "t3", "t4", "ask", "two", "slow"]
    for bad in ("t999", "r3", "t0", "garbage", 3):
        e = await _error(_handle(srv, _req("tools/list", {"cursor": bad}), False))
        assert e.code == jsonrpc.INVALID_PARAMS, bad


async def test_resources_templates_and_not_found_per_era():
    srv = _server()
    r = await _handle(srv, _req("resources/read", {"uri": "x://a"}), False)
    assert r["contents"] == [{"uri": "x://a", "text": "A", "mimeType": "text/plain"}]
    r = await _handle(srv, _req("resources/read", {"uri": "x://items/7"}, True), True)
    assert r["contents"][0]["text"] == "item 7" and r["ttlMs"] == 0 and r["resultType"] == "complete"
    for uri in ("x://nothing", "x://items/0", "x://items/7/more"):
        e = await _error(_handle(srv, _req("resources/read", {"uri": uri}), False))
        assert e.code == -32002 and e.data == {"uri": uri}
        e = await _error(_handle(srv, _req("resources/read", {"uri": uri}, True), True))
        assert e.code == jsonrpc.INVALID_PARAMS and e.data == {"uri": uri}


async def test_prompts_check_their_arguments():
    srv = _server()
    r = await _handle(srv, _req("prompts/get", {"name": "p", "arguments": {"who": "ada"}}), False)
    assert r["messages"][0]["content"]["text"] == "ada"
    for params in ({"name": "p"}, {"name": "p", "arguments": {"who": 1}}, {"name": "nope"}, {}):
        e = await _error(_handle(srv, _req("prompts/get", params), False))
        assert e.code == jsonrpc.INVALID_PARAMS


async def test_completion_for_prompts_and_templates():
    srv = _server()
    ref = {"type": "ref/prompt", "name": "p"}
    r = await _handle(srv, _req("completion/complete", {"ref": ref, "argument": {"name": "who", "value": "a"}}), False)
    assert r == {"completion": {"values": ["ada", "alan"], "total": 2, "hasMore": False}}
    ref = {"type": "ref/resource", "uri": "x://items/{id}"}
    r = await _handle(srv, _req("completion/complete", {"ref": ref, "argument": {"name": "id", "value": "1"}}), False)
    assert r["completion"]["values"] == ["1", "12"]
    bad = {"ref": {"type": "ref/prompt", "name": "nope"}, "argument": {"name": "x", "value": ""}}
    assert (await _error(_handle(srv, _req("completion/complete", bad), False))).code == jsonrpc.INVALID_PARAMS


async def test_handshake_ask_round_trip_and_cancellation():
    srv = _server()
    session = srv.new_session()
    session.caps = {"elicitation": {}}
    out = Out()
    task = asyncio.create_task(_handle(srv, _req("tools/call", {"name": "ask"}), False, session, out))
    await asyncio.sleep_ms(10)
    ask = out.sent[0]
    assert ask["method"] == "elicitation/create" and ask["id"] in session.pending
    srv.accept(
        {"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"name": "ada"}}},
        True,
        False,
        session,
    )
    r = await task
    assert r["content"][0]["text"] == "hi ada" and not session.pending and not session.inflight
    # The server pings the client the same way (no capability needed).
    ctx = srv.context(False, session, out)
    ctx.begin(3, {})
    task = asyncio.create_task(ctx.ask({"p": ("ping", {})}))
    await asyncio.sleep_ms(10)
    assert out.sent[-1]["method"] == "ping"
    srv.accept({"jsonrpc": "2.0", "id": out.sent[-1]["id"], "result": {}}, True, False, session)
    assert await task == {"p": {}}
    # A cancelled request ends without a result and leaves nothing behind.
    task = asyncio.create_task(_handle(srv, _req("tools/call", {"name": "slow"}, rid=9), False, session, out))
    await asyncio.sleep_ms(30)
    srv.accept(
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 9}}, False, False, session
    )
    assert await task is None and not session.inflight
    # A cancellation naming no request id that could exist is ignored (a list is unhashable).
    for bad in ([], {}, None, True):
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": bad}}
        srv.accept(note, False, False, session)


async def test_modern_input_required_state_is_signed_and_bound():
    srv = _server()
    caps = {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}
    call = _req("tools/call", {"name": "two", "_meta": caps}, True)
    r1 = await _handle(srv, call, True)
    assert r1["resultType"] == "input_required" and list(r1["inputRequests"]) == ["one"]
    answer = {"action": "accept", "content": {"name": "A"}}
    call["params"]["inputResponses"] = {"one": answer}
    call["params"]["requestState"] = r1["requestState"]
    r2 = await _handle(srv, call, True)
    assert list(r2["inputRequests"]) == ["two"] and r2["requestState"] != r1["requestState"]
    call["params"]["inputResponses"] = {"two": {"action": "accept", "content": {"name": "B"}}}
    call["params"]["requestState"] = r2["requestState"]
    r3 = await _handle(srv, call, True)
    assert r3["resultType"] == "complete" and r3["content"][0]["text"] == "AB"
    # Altered state, or state of another tool, is refused.
    state = r2["requestState"]
    call["params"]["requestState"] = state[:-2] + ("11" if state.endswith("00") else "00")
    assert (await _error(_handle(srv, call, True))).code == jsonrpc.INVALID_PARAMS
    other = _req("tools/call", {"name": "ask", "_meta": caps}, True)
    other["params"]["requestState"] = r2["requestState"]
    assert (await _error(_handle(srv, other, True))).code == jsonrpc.INVALID_PARAMS
    # Missing capability: -32021 naming what is needed.
    e = await _error(_handle(srv, _req("tools/call", {"name": "ask"}, True), True))
    assert e.code == -32021 and e.data == {"requiredCapabilities": {"elicitation": {}}}


async def test_listen_acknowledges_filters_and_tags():
    srv = _server()
    srv.registry.changing.add("tools")
    out = Out()
    params = {
        "notifications": {
            "toolsListChanged": True,
            "promptsListChanged": True,
            "resourceSubscriptions": ["x://a", "x://zz"],
        }
    }
    task = asyncio.create_task(_handle(srv, _req("subscriptions/listen", params, True, rid=5), True, None, out))
    await asyncio.sleep_ms(10)
    ack = out.sent[0]["params"]
    assert ack["notifications"] == {"toolsListChanged": True, "resourceSubscriptions": ["x://a"]}
    assert srv.subscribed() == {"x://a"}
    await srv.list_changed("prompts")  # not honoured: nothing sent
    await srv.list_changed("tools")
    await srv.resource_updated("x://a")
    await srv.resource_updated("x://other")
    assert [m["method"] for m in out.sent[1:]] == [
        "notifications/tools/list_changed",
        "notifications/resources/updated",
    ]
    assert all(m["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 5 for m in out.sent)
    out.stop()
    assert await task is None and srv.subscribed() == set()


async def test_log_levels_filter_per_session():
    srv = _server()
    session = srv.new_session()
    r = await _handle(srv, _req("logging/setLevel", {"level": "warning"}), False, session)
    assert r == {} and session.log_level == 3
    out = Out()

    async def logs(args, ctx):
        await ctx.log("info", "quiet")
        await ctx.log("error", "loud")
        return text("ok")

    srv.registry.add_tool({"name": "logs", "description": "d", "inputSchema": {"type": "object"}}, logs)
    await _handle(srv, _req("tools/call", {"name": "logs"}), False, session, out)
    assert [m["params"]["data"] for m in out.sent] == ["loud"]
