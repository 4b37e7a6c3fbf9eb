"""Bad input on every transport: malformed, truncated, huge and deeply nested JSON, invalid UTF-8,
wrong JSON-RPC shapes and forbidden batches each get the documented JSON-RPC error (and, on HTTP,
status), the connection or board serves on, and the heap returns to idle (the `board` fixture).

Related cases live beside the transports' own tests: tests/integration/test_http_errors.py (HTTP
statuses per era, header limits, 413), test_streamable_http.py (2025-03-26 batches, the JSON
nesting bound), test_websocket.py (frame-level errors) and test_serial.py (over-long lines).
"""

import json
import socket

import pytest
from conftest import modern, modern_headers
from wire import Console, parse_response, post, read_until_closed, ws_frame, ws_read_message, ws_upgrade

from host_tools.emulator.runner import EmulatedBoard

PARSE, INVALID, PARAMS, INTERNAL = -32700, -32600, -32602, -32603
MAX_BODY = 8192  # firmware/boardmcp/transport/http.py
MAX_DEPTH = 32  # firmware/boardmcp/jsonrpc.py


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _ping(rid: object = 1, **extra: object) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/list", **extra}


# name -> (message bytes, JSON-RPC error code, the id the error must carry). Each is sent with the
# modern envelope where it has params, so the HTTP status follows the modern table (400 for all).
CASES: dict[str, tuple[bytes, int, object]] = {
    "truncated": (_json(modern("tools/list"))[:-7], PARSE, None),
    "cut inside a string": (b'{"jsonrpc":"2.0","id":1,"method":"tools/li', PARSE, None),
    "not JSON": (b"GET / HTTP/1.0", PARSE, None),
    "trailing garbage": (_json(modern("tools/list")) + b"}", PARSE, None),
    "invalid UTF-8 in a string": (b'{"jsonrpc":"2.0","id":1,"method":"tools/\xff\xfe"}', PARSE, None),
    "invalid UTF-8 outside strings": (b'{"jsonrpc":"2.0",\xc3"id":1}', PARSE, None),
    "null": (b"null", INVALID, None),
    "a number": (b"42", INVALID, None),
    "a string": (b'"tools/list"', INVALID, None),
    "empty object": (b"{}", INVALID, None),
    "empty array": (b"[]", INVALID, None),
    "no jsonrpc": (_json({"id": 3, "method": "tools/list"}), INVALID, 3),
    "jsonrpc as a number": (_json({"jsonrpc": 2.0, "id": 4, "method": "tools/list"}), INVALID, 4),
    "id null": (_json(_ping(None)), INVALID, None),
    "id a float": (_json(_ping(1.5)), INVALID, None),
    "id a boolean": (_json(_ping(True)), INVALID, None),
    "id an object": (_json(_ping({"a": 1})), INVALID, None),
    "id an array": (_json(_ping([1])), INVALID, None),
    "method not a string": (_json({"jsonrpc": "2.0", "id": 5, "method": 7}), INVALID, 5),
    "params an array": (_json(_ping(6, params=[1, 2])), PARAMS, 6),
    "params a string": (_json(_ping(7, params="x")), INVALID, 7),
    "neither method nor result": (_json({"jsonrpc": "2.0", "id": 8}), INVALID, 8),
    "nested too deep": (
        b'{"jsonrpc":"2.0","id":9,"method":"ping","params":' + b"[" * 200 + b"]" * 200 + b"}",
        INVALID,
        None,
    ),
    "a batch": (_json([modern("tools/list")]), INVALID, None),
}


def test_http(board: EmulatedBoard) -> None:
    for name, (body, code, rid) in CASES.items():
        status, headers, reply = post(board, body, modern_headers("tools/list"))
        assert (status, headers["content-type"]) == (400, "application/json"), name
        assert reply["jsonrpc"] == "2.0" and reply["id"] == rid and reply["error"]["code"] == code, (name, reply)
        assert reply["error"]["message"], name


def test_websocket(board: EmulatedBoard) -> None:
    s, head = ws_upgrade(board)
    rest = head.partition(b"\r\n\r\n")[2]
    with s:
        for name, (body, code, rid) in CASES.items():
            s.sendall(ws_frame(1, body))
            opcode, payload, _, rest = ws_read_message(s, rest)
            reply = json.loads(payload)
            assert opcode == 1 and reply["id"] == rid and reply["error"]["code"] == code, (name, reply)
        # The same connection still serves.
        s.sendall(ws_frame(1, _json(modern("tools/list", rid="after"))))
        opcode, payload, _, rest = ws_read_message(s, rest)  # a long result: in fragments
        assert json.loads(payload)["id"] == "after"


def test_serial(board: EmulatedBoard) -> None:
    console = Console(board.console)
    try:
        for name, (body, code, rid) in CASES.items():
            console.send(body)
            reply = console.receive()
            assert reply["id"] == rid and reply["error"]["code"] == code, (name, reply)
        assert console.call("tools/list", modern("tools/list")["params"], rid="after")["id"] == "after"
    finally:
        console.close()


def test_lone_surrogate_escapes_are_just_text(board: EmulatedBoard) -> None:
    body = _json(modern("tools/list", {"s": "\ud800 \udfff"}))
    assert b"\\ud800" in body
    status, _, reply = post(board, body, modern_headers("tools/list"))
    assert status == 200 and reply["result"]["tools"]


def test_handshake_era_statuses(board: EmulatedBoard) -> None:
    """Without a modern version header, parse and envelope errors are 400 and the rest 200."""
    status, _, reply = post(board, CASES["truncated"][0])
    assert (status, reply["error"]["code"]) == (400, PARSE)
    status, _, reply = post(board, CASES["id a float"][0])
    assert (status, reply["error"]["code"]) == (400, INVALID)


def test_huge_json_within_the_body_limit(board: EmulatedBoard) -> None:
    """Bodies just under MAX_BODY that are expensive to parse: a long string, thousands of small
    numbers, thousands of keys. Each gets a JSON-RPC answer (a result, or -32603 when the heap
    has no block for the body or cannot hold the parsed document), never a dropped connection
    or a refusal. (Once warmed up, the emulated esp32s3's largest free block is under the ~7.8 KB
    a body this long needs, so all four are -32603 here today.)"""
    pad = MAX_BODY - 400
    bodies = {
        "long string": modern("tools/list", {"pad": "x" * pad}),
        "many numbers": modern("tools/list", {"pad": [0] * (pad // 2)}),
        "many keys": modern("tools/list", {"pad": {f"k{i}": 0 for i in range(pad // 9)}}),
        "many strings": modern("tools/list", {"pad": ["ab"] * (pad // 5)}),
    }
    for name, body in bodies.items():
        data = _json(body)
        assert MAX_BODY - 600 < len(data) <= MAX_BODY, (name, len(data))
        status, _, reply = post(board, data, modern_headers("tools/list"))
        if "error" in reply:
            # Out of memory while parsing: the id was never read, so it is null (JSON-RPC 2.0 §5).
            assert (status, reply["error"]["code"]) == (200, INTERNAL), (name, reply)
            assert reply["id"] in (1, None), (name, reply)
        else:
            assert status == 200 and reply["id"] == 1 and reply["result"]["tools"], name


def test_nesting_at_the_bound_is_served(board: EmulatedBoard) -> None:
    inner = b"[" * (MAX_DEPTH - 2) + b"]" * (MAX_DEPTH - 2)
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":'
        + inner
        + b',"_meta":'
        + _json(modern("x")["params"]["_meta"])
        + b"}}"
    )
    status, _, reply = post(board, body, modern_headers("tools/list"))
    assert status == 200 and reply["result"]["tools"]


def test_body_shorter_than_content_length(board: EmulatedBoard) -> None:
    """The board waits for the rest until the request deadline, then drops the connection
    without an answer (there is no complete request to answer)."""
    body = _json(modern("tools/list"))
    head = _head(board, len(body) + 50)
    with socket.create_connection(("127.0.0.1", board.port), timeout=10) as s:
        s.sendall(head + body)
        assert read_until_closed(s, reset_ends=True) == b""


def test_body_longer_than_content_length(board: EmulatedBoard) -> None:
    """The request is the first Content-Length bytes; what follows is read as the next request,
    which is not HTTP: 400, and the connection closes."""
    body = _json(modern("tools/list"))
    with socket.create_connection(("127.0.0.1", board.port), timeout=10) as s:
        s.sendall(_head(board, len(body)) + body + b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}\r\n\r\n')
        data = read_until_closed(s, reset_ends=True)
    first, _, second = data.partition(b"HTTP/1.1 400")
    status, _, reply = parse_response(first)
    assert status == 200 and reply["result"]["tools"]
    status, headers, reply = parse_response(b"HTTP/1.1 400" + second)
    assert status == 400 and headers["connection"] == "close" and reply["error"]["code"] == INVALID


def _head(board: EmulatedBoard, length: int) -> bytes:
    h = "".join(f"{k}: {v}\r\n" for k, v in modern_headers("tools/list").items())
    return (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{board.port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {board.token}\r\nContent-Length: {length}\r\n{h}\r\n"
    ).encode()


@pytest.mark.parametrize(
    "header",
    [b"X-Bad: \xff\xfe", b"Mcp-Method: tools/\xc3", b"\xff: x"],
    ids=["value", "routing header value", "name"],
)
def test_invalid_utf8_in_headers(board: EmulatedBoard, header: bytes) -> None:
    body = _json(modern("tools/list"))
    request = _head(board, len(body)).replace(b"\r\n\r\n", b"\r\n" + header + b"\r\n\r\n") + body
    with socket.create_connection(("127.0.0.1", board.port), timeout=10) as s:
        s.sendall(request)
        status, _, reply = parse_response(read_until_closed(s, reset_ends=True))
    assert status == 400 and reply["error"]["code"] == INVALID
