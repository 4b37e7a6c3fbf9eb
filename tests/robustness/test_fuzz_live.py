"""Fuzzing the live emulated board: random and mutated requests over HTTP and WebSocket. Every
answer must be a well-formed HTTP response with a status the transport documents and, where it
carries JSON, a valid JSON-RPC response; afterwards the board still serves with its heap at idle
(the `board` fixture). Bounded by max_examples (about half a minute in all)."""

import json
import random
import time
from typing import Any

from conftest import modern, modern_headers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_logic import json_values
from wire import exchange, parse_response, request_bytes, ws_frame, ws_read_message, ws_upgrade

from host_tools.emulator.runner import EmulatedBoard

LIVE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
STATUSES = {200, 202, 400, 401, 403, 404, 405, 406, 413, 415, 431, 503}
SEEDS = [
    modern("tools/list"),
    modern("tools/call", {"name": "system_info", "arguments": {}}),
    modern("tools/call", {"name": "led", "arguments": {"state": "toggle"}}),
    modern("server/discover"),
    modern("prompts/list"),
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}},
    },
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
]


def _mutate(value: Any, rng: random.Random, replacement: Any) -> Any:
    # Replace, drop or retype one node somewhere in a JSON document.
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        out = dict(value)
        if rng.random() < 0.2:
            del out[key]
        else:
            out[key] = _mutate(value[key], rng, replacement)
        return out
    if isinstance(value, list) and value and rng.random() < 0.7:
        i = rng.randrange(len(value))
        return [*value[:i], _mutate(value[i], rng, replacement), *value[i + 1 :]]
    return replacement


def _bytes_mutate(data: bytes, rng: random.Random, n: int) -> bytes:
    out = bytearray(data)
    for _ in range(n):
        op = rng.randrange(3)
        i = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(i, len(out) - 1)] = rng.randrange(256)
        elif op == 1:
            out[i:i] = bytes([rng.randrange(256)])
        else:
            del out[i : i + rng.randrange(1, 8)]
    return bytes(out)


bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda seed, seed_rng, rep: json.dumps(_mutate(SEEDS[seed], random.Random(seed_rng), rep)).encode(),
        st.integers(0, len(SEEDS) - 1),
        st.integers(),
        json_values,
    ),
    st.builds(
        lambda seed, seed_rng, n: _bytes_mutate(json.dumps(SEEDS[seed]).encode(), random.Random(seed_rng), n),
        st.integers(0, len(SEEDS) - 1),
        st.integers(),
        st.integers(1, 6),
    ),
)
header_sets = st.fixed_dictionaries(
    {},
    optional={
        "MCP-Protocol-Version": st.sampled_from(["2026-07-28", "2025-11-25", "2025-03-26", "v999", ""]),
        "Mcp-Method": st.sampled_from(["tools/list", "tools/call", "x"]) | st.text("abc/", max_size=10),
        "Mcp-Name": st.sampled_from(["system_info", "led", "=?base64?bGVk?=", "=?base64?!!?="]),
        "Content-Type": st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-8"]),
        "Accept": st.sampled_from(["application/json", "text/html", "*/*"]),
        "Mcp-Session-Id": st.text("0123456789abcdef", max_size=32),
    },
)


def _check_jsonrpc(reply: Any) -> None:
    messages = reply if isinstance(reply, list) else [reply]
    for msg in messages:
        assert msg["jsonrpc"] == "2.0" and "id" in msg, msg
        assert ("result" in msg) != ("error" in msg), msg
        if "error" in msg:
            assert isinstance(msg["error"]["code"], int) and isinstance(msg["error"]["message"], str), msg


@LIVE
@given(bodies, header_sets)
def test_http_fuzz(board: EmulatedBoard, body: bytes, headers: dict[str, str]) -> None:
    request = request_bytes(board, body, {**headers, "Connection": "close"})
    data = exchange(board.port, request)
    status, got, reply = parse_response(data)
    assert status in STATUSES, (status, data[:300])
    if got.get("content-type") in ("application/json", "text/event-stream") and reply is not None:
        _check_jsonrpc(reply)
    elif status == 200:
        raise AssertionError(f"200 without a JSON-RPC body: {data[:300]!r}")


@LIVE
@given(st.lists(bodies, min_size=1, max_size=8))
def test_websocket_fuzz(board: EmulatedBoard, messages: list[bytes]) -> None:
    """Each message in a text frame: every request or bad message gets a JSON-RPC answer on the
    same connection (notifications and responses get none), and the connection serves on."""
    for _ in range(50):  # a 503 (heap or connections short for a moment) is retried, as clients do
        s, head = ws_upgrade(board)
        if not head.startswith(b"HTTP/1.1 503 "):
            break
        s.close()
        time.sleep(0.1)
    assert head.startswith(b"HTTP/1.1 101 "), head[:200]
    rest = head.partition(b"\r\n\r\n")[2]
    with s:
        for body in messages:
            s.sendall(ws_frame(1, body))
        s.sendall(ws_frame(1, json.dumps({"jsonrpc": "2.0", "id": "last", "method": "ping"}).encode()))
        while True:
            opcode, payload, _, rest = ws_read_message(s, rest)
            if opcode == 8:
                raise AssertionError(f"closed: {payload!r}")
            if opcode != 1:
                continue
            reply = json.loads(payload)
            if "method" in reply:
                continue  # a notification of ours (e.g. list changed)
            _check_jsonrpc(reply)
            if reply["id"] == "last":
                break


def test_seeds_are_served(board: EmulatedBoard) -> None:
    """The unmutated seeds are valid requests (so mutations start from something served)."""
    for seed in SEEDS[:5]:
        method = seed["method"]
        name = seed["params"].get("name") or seed["params"].get("uri")
        status, _, reply = parse_response(
            exchange(board.port, request_bytes(board, seed, {**modern_headers(method, name), "Connection": "close"}))
        )
        assert status == 200 and "result" in reply, (seed, reply)
