# JSON-RPC envelope tests, run on the MicroPython VM against the deployed .mpy firmware.
import io
import json

from boardmcp import jsonrpc
from boardmcp.registry import structured


def _code(body):
    try:
        jsonrpc.decode(body)
    except jsonrpc.Error as e:
        return e.code, e.id
    raise AssertionError("no error for %r" % body)


def test_request_notification_response():
    msg, kind = jsonrpc.decode(b'{"jsonrpc":"2.0","id":7,"method":"ping"}')
    assert kind == jsonrpc.REQUEST and msg["id"] == 7
    _, kind = jsonrpc.decode(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert kind == jsonrpc.NOTIFICATION
    _, kind = jsonrpc.decode(b'{"jsonrpc":"2.0","id":"a","result":{}}')
    assert kind == jsonrpc.RESPONSE


def test_parse_errors():
    for body in (b"{", b"", b"nul", b'{"a":1}x', b"\xff\xfe"):
        assert _code(body) == (jsonrpc.PARSE_ERROR, None), body


def test_invalid_requests_echo_readable_ids():
    assert _code(b"[]")[0] == jsonrpc.INVALID_REQUEST
    assert _code(b'"ping"')[0] == jsonrpc.INVALID_REQUEST
    assert _code(b'{"jsonrpc":"1.0","id":3,"method":"ping"}') == (jsonrpc.INVALID_REQUEST, 3)
    assert _code(b'{"jsonrpc":"2.0","id":4,"method":5}') == (jsonrpc.INVALID_REQUEST, 4)
    assert _code(b'{"jsonrpc":"2.0","id":5}') == (jsonrpc.INVALID_REQUEST, 5)
    assert _code(b'{"jsonrpc":"2.0","id":"x","method":"a","params":"s"}') == (jsonrpc.INVALID_REQUEST, "x")


def test_batches_come_back_unchecked_for_the_transport_to_allow():
    items, kind = jsonrpc.decode(b'[{"jsonrpc":"2.0","id":1,"method":"ping"}, 5]')
    assert kind == jsonrpc.BATCH and len(items) == 2
    assert jsonrpc.classify(items[0]) == (items[0], jsonrpc.REQUEST)
    try:
        jsonrpc.classify(items[1])
        raise AssertionError("no error")
    except jsonrpc.Error as e:
        assert e.code == jsonrpc.INVALID_REQUEST


def test_nesting_depth_is_bounded_outside_strings():
    deep = b'{"a":' + b"[" * 40 + b"]" * 40 + b"}"
    assert _code(deep)[0] == jsonrpc.INVALID_REQUEST
    shallow = b'{"jsonrpc":"2.0","method":"m","params":{"s":"' + b"[{" * 40 + b'"}}'
    assert jsonrpc.decode(shallow)[1] == jsonrpc.NOTIFICATION
    body = bytearray(b"xx" + shallow + b"yy")
    assert jsonrpc.decode(body, 2, len(body) - 2)[1] == jsonrpc.NOTIFICATION


def test_ids_must_be_strings_or_integers():
    for rid in (b"null", b"true", b"1.5", b"[1]", b"{}"):
        body = b'{"jsonrpc":"2.0","id":' + rid + b',"method":"ping"}'
        assert _code(body) == (jsonrpc.INVALID_REQUEST, None), rid


def test_array_params_are_invalid_params():
    assert _code(b'{"jsonrpc":"2.0","id":1,"method":"a","params":[1]}') == (jsonrpc.INVALID_PARAMS, 1)


def test_encoding():
    ok = json.loads(jsonrpc.result(1, {"a": 1}))
    assert ok == {"jsonrpc": "2.0", "id": 1, "result": {"a": 1}}
    err = json.loads(jsonrpc.error(None, -32700, "bad"))
    assert err == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "bad"}}
    err = json.loads(jsonrpc.error("i", -32602, "m", {"k": 1}))
    assert err["error"]["data"] == {"k": 1} and err["id"] == "i"


def _sent(write, rid, result):
    # What a transport sends for a result: the shared stream holding an earlier, longer response
    # (its bytes beyond this one's end are stale), then the response written by `write`.
    out = io.BytesIO()
    out.write(b"x" * 4000)
    out.seek(0)
    if write is jsonrpc.dump_result:
        jsonrpc.dump_result(out, rid, result)
    else:
        for _ in jsonrpc.dump_pieces(out, rid, result):
            pass
    return json.loads(out.getvalue()[: out.tell()])


def test_a_structured_result_carries_its_json_as_text():
    objs = (
        {"board": "ESP32-S3 (no PSRAM)", "n": 1, "t": 21.5, "ok": True, "none": None},
        {"quoted": 'say "hi"', "tab\there": "a\\b\nc", "uni": "\u00b0C \u2013 \U0001f600"},
        {"long": "q" * 700, "quotes": '"' * 300, "list": list(range(100))},  # several pieces
        {},
        [1, "two", {"three": 3}],
    )
    for obj in objs:
        for write in (jsonrpc.dump_result, jsonrpc.dump_pieces):
            result = structured(obj)
            result["resultType"] = "complete"  # as the server adds on revision 2026-07-28
            msg = _sent(write, 7, result)
            assert msg["id"] == 7 and msg["jsonrpc"] == "2.0", msg
            r = msg["result"]
            assert sorted(r) == ["content", "resultType", "structuredContent"], r
            assert r["structuredContent"] == obj and r["resultType"] == "complete"
            assert len(r["content"]) == 1 and r["content"][0]["type"] == "text"
            assert json.loads(r["content"][0]["text"]) == obj
    assert json.loads(jsonrpc.result(3, structured({"a": 1})))["result"]["content"][0]["text"] == '{"a":1}'
