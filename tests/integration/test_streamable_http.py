"""Streamable HTTP in the handshake era (sessions, SSE responses, the GET stream, requests to the
client, cancellation, 2025-03-26 batches) and revision 2026-07-28's listen stream, on raw sockets."""

import json
import time
from typing import Any

import pytest
from wire import Stream, open_session, post

from host_tools.emulator.runner import EmulatedBoard

V = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}


def call(name: str, rid: int = 1, args: dict | None = None, meta: dict | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": args or {}}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


def init_with(board: EmulatedBoard, capabilities: dict) -> dict[str, str]:
    body = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": capabilities,
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    status, headers, _ = post(board, body)
    assert status == 200
    return {"Mcp-Session-Id": headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}


def test_session_lifecycle(conformance_board: EmulatedBoard) -> None:
    session = open_session(conformance_board)
    sid = session["Mcp-Session-Id"]
    assert len(sid) >= 16 and all(0x21 <= ord(c) <= 0x7E for c in sid)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert post(conformance_board, ping, session)[:3:2] == (200, {"jsonrpc": "2.0", "id": 1, "result": {}})
    status, _, reply = post(conformance_board, ping)
    assert status == 400 and "Mcp-Session-Id" in reply["error"]["message"]
    assert post(conformance_board, ping, {"Mcp-Session-Id": "not-a-session"})[0] == 404
    s = Stream(conformance_board).send(None, session, method="DELETE")
    assert s.status == 200
    s.close()
    status, _, reply = post(conformance_board, ping, session)
    assert status == 404 and reply["error"]["code"] == -32600


def test_progress_streams_as_sse_then_the_connection_is_reused(conformance_board: EmulatedBoard) -> None:
    session = open_session(conformance_board)
    s = Stream(conformance_board).send(call("test_tool_with_progress", meta={"progressToken": "p1"}), session)
    assert s.status == 200 and s.headers["content-type"] == "text/event-stream"
    messages = []
    while (m := s.event()) is not None:
        messages.append(m)
    progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
    assert [p["progress"] for p in progress] == [0, 50, 100] and {p["progressToken"] for p in progress} == {"p1"}
    assert messages[-1]["id"] == 1 and messages[-1]["result"]["content"][0]["text"]
    # Without a progress token the same tool answers plain JSON, on the same connection.
    s.send(call("test_tool_with_progress", rid=2), session)
    assert s.headers["content-type"] == "application/json" and s.json()["id"] == 2
    s.close()


def test_logging_follows_the_session_level(conformance_board: EmulatedBoard) -> None:
    session = open_session(conformance_board)
    status, _, reply = post(conformance_board, call("test_tool_with_logging"), session)
    assert status == 200 and "result" in reply  # no level set: no log notifications, so JSON
    level = {"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "debug"}}
    assert post(conformance_board, level, session)[2]["result"] == {}
    bad = {"jsonrpc": "2.0", "id": 3, "method": "logging/setLevel", "params": {"level": "loud"}}
    assert post(conformance_board, bad, session)[2]["error"]["code"] == -32602
    status, headers, messages = post(conformance_board, call("test_tool_with_logging", rid=4), session)
    logs = [m["params"] for m in messages if m.get("method") == "notifications/message"]
    assert headers["content-type"] == "text/event-stream" and len(logs) == 3
    assert all(entry["level"] == "info" and entry["data"] for entry in logs)
    assert messages[-1]["id"] == 4


def test_elicitation_round_trip_over_two_connections(conformance_board: EmulatedBoard) -> None:
    session = init_with(conformance_board, {"elicitation": {}})
    s = Stream(conformance_board).send(call("test_elicitation", args={"message": "Who are you?"}), session)
    ask = s.event()
    assert ask["method"] == "elicitation/create" and ask["params"]["message"] == "Who are you?"
    answer = {"jsonrpc": "2.0", "id": ask["id"], "result": {"action": "accept", "content": {"username": "ada"}}}
    assert post(conformance_board, answer, session)[0] == 202
    result = s.event()
    assert result["id"] == 1 and "ada" in result["result"]["content"][0]["text"]
    assert s.event() is None
    s.close()


def test_client_without_the_capability_gets_a_tool_error(conformance_board: EmulatedBoard) -> None:
    session = open_session(conformance_board)
    status, _, reply = post(conformance_board, call("test_sampling", args={"prompt": "hi"}), session)
    assert status == 200 and reply["error"]["code"] == -32021
    assert reply["error"]["data"] == {"requiredCapabilities": {"sampling": {}}}


def test_cancelled_request_sends_nothing_more(conformance_board: EmulatedBoard) -> None:
    session = init_with(conformance_board, {"elicitation": {}})
    s = Stream(conformance_board).send(call("test_elicitation", rid=7, args={"message": "wait"}), session)
    assert s.event()["method"] == "elicitation/create"
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7, "reason": "bored"}}
    assert post(conformance_board, cancel, session)[0] == 202
    assert s.event() is None  # the stream ends without a result
    s.close()


def test_get_stream_carries_list_changes_and_ends_with_the_session(conformance_board: EmulatedBoard) -> None:
    session = open_session(conformance_board)
    get = Stream(conformance_board).send(None, session, method="GET")
    assert get.status == 200 and get.headers["content-type"] == "text/event-stream"
    second = Stream(conformance_board).send(None, session, method="GET")
    assert second.status == 409
    second.close()
    post(conformance_board, call("test_trigger_tool_change"), session)
    assert get.event() == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    post(conformance_board, call("test_trigger_tool_change", rid=2), session)  # and back
    assert get.event()["method"] == "notifications/tools/list_changed"
    Stream(conformance_board).send(None, session, method="DELETE").close()
    assert get.event() is None
    get.close()


def test_listen_stream_in_the_modern_era(conformance_board: EmulatedBoard) -> None:
    headers = {"MCP-Protocol-Version": V, "Mcp-Method": "subscriptions/listen"}
    listen = {
        "jsonrpc": "2.0",
        "id": 42,
        "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": True, "promptsListChanged": False}, "_meta": META},
    }
    s = Stream(conformance_board).send(listen, headers)
    ack = s.event()
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    assert ack["params"]["notifications"] == {"toolsListChanged": True}
    assert ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 42
    trigger = {"MCP-Protocol-Version": V, "Mcp-Method": "tools/call", "Mcp-Name": "test_trigger_prompt_change"}
    assert post(conformance_board, call("test_trigger_prompt_change", meta=META), trigger)[0] == 200
    trigger["Mcp-Name"] = "test_trigger_tool_change"
    for _ in range(2):  # add the dynamic tool, then remove it again
        assert post(conformance_board, call("test_trigger_tool_change", meta=META), trigger)[0] == 200
        note = s.event()  # no prompts notification came first: the client did not ask for it
        assert note["method"] == "notifications/tools/list_changed"
        assert note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 42
    s.close()


def test_batches_only_on_2025_03_26(conformance_board: EmulatedBoard) -> None:
    session = open_session(conformance_board, "2025-03-26")
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "test_simple_text"}},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"},
        {"jsonrpc": "1.0", "id": 4, "method": "ping"},
    ]
    status, _, replies = post(conformance_board, json.dumps(batch).encode(), session)
    assert status == 200
    by_id = {r["id"]: r for r in replies}
    assert by_id[1]["result"] == {} and by_id[2]["result"]["content"][0]["type"] == "text"
    assert by_id[3]["error"]["code"] == -32601 and by_id[4]["error"]["code"] == -32600
    notes = [{"jsonrpc": "2.0", "method": "notifications/initialized"}]
    assert post(conformance_board, json.dumps(notes).encode(), session)[0] == 202
    newer = open_session(conformance_board)
    status, _, reply = post(conformance_board, json.dumps(batch).encode(), newer)
    assert status == 400 and reply["error"]["code"] == -32600


@pytest.mark.parametrize("depth", [33, 3000])
def test_json_nesting_is_bounded(conformance_board: EmulatedBoard, depth: int) -> None:
    session = open_session(conformance_board)
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":' + b"[" * depth + b"]" * depth + b"}}"
    status, _, reply = post(conformance_board, body, session)
    assert status == 400 and reply["error"]["code"] == -32600 and "nested" in reply["error"]["message"]
    # Brackets inside strings are not nesting.
    body = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping", "params": {"s": "[" * 100}}).encode()
    assert post(conformance_board, body, session)[2]["result"] == {}


def test_sessions_are_bounded_least_recently_used_first(conformance_board: EmulatedBoard) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    first = open_session(conformance_board)
    others = [open_session(conformance_board) for _ in range(3)]
    for s in others:
        assert post(conformance_board, ping, s)[0] == 200
        time.sleep(0.02)  # distinct last-use times
    assert post(conformance_board, ping, first)[0] == 200  # now the most recently used
    open_session(conformance_board)  # a fifth: the least recently used (others[0]) makes room
    assert post(conformance_board, ping, others[0])[0] == 404
    assert post(conformance_board, ping, first)[0] == 200
