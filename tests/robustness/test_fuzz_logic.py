"""Fuzzing the firmware's pure-logic modules on CPython with hypothesis: jsonrpc.py, schema.py,
inputs.py (signed requestState) and auth.py. Each property is bounded (max_examples), so the stage
takes seconds.

The modules are MicroPython code: a tiny shim stands in for `micropython` (const), and for
MicroPython's json.loads, which reads any buffer where CPython's wants bytes; the package is
imported without its __init__.
"""

import hashlib
import importlib
import json
import math
import sys
import types
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host_tools.profiles import repo_root


def _firmware_modules() -> dict[str, types.ModuleType]:
    if "micropython" not in sys.modules:
        shim = types.ModuleType("micropython")
        shim.const = lambda x: x  # type: ignore[attr-defined]
        sys.modules["micropython"] = shim
    firmware = str(repo_root() / "firmware")
    if firmware not in sys.path:
        sys.path.insert(0, firmware)
    if "boardmcp" not in sys.modules:
        # The package without its __init__ (which reads MicroPython's clock): these modules need
        # only its kept() (state that outlives a module's unloading), which behaves the same here.
        package = types.ModuleType("boardmcp")
        package.__path__ = [firmware + "/boardmcp"]
        store: dict[str, object] = {}
        package.kept = lambda name, make: store[name] if name in store else store.setdefault(name, make())  # type: ignore[attr-defined]
        sys.modules["boardmcp"] = package
    mods = {name: importlib.import_module(f"boardmcp.{name}") for name in ("jsonrpc", "schema", "inputs", "auth")}
    json_shim = types.SimpleNamespace(
        loads=lambda b: json.loads(bytes(b) if isinstance(b, memoryview) else b),
        dumps=json.dumps,
        # MicroPython's writes into a BytesIO too
        dump=lambda obj, fp, separators=None: fp.write(json.dumps(obj, separators=separators).encode()),
    )
    mods["jsonrpc"].json = json_shim  # type: ignore[attr-defined]
    # MicroPython's hashlib hashes a str as its UTF-8 (a str lends its buffer); CPython's wants bytes.
    sha256 = hashlib.sha256

    class _Sha256:
        def __init__(self, data: bytes = b"") -> None:
            self._h = sha256(data)

        def update(self, data: bytes | str) -> None:
            self._h.update(data.encode() if isinstance(data, str) else data)

        def digest(self) -> bytes:
            return self._h.digest()

    mods["auth"].hashlib = types.SimpleNamespace(sha256=_Sha256)  # type: ignore[attr-defined]
    return mods


M = _firmware_modules()
jsonrpc, schema, inputs, auth = M["jsonrpc"], M["schema"], M["inputs"], M["auth"]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON values, and messages that are nearly right (the interesting ones for an envelope check).
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
ids = st.none() | st.integers(-(2**40), 2**40) | st.text(max_size=8) | st.floats(allow_nan=False) | st.booleans()
messages = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2, None]),
        "id": ids | json_values,
        "method": st.sampled_from(["tools/list", "ping", ""]) | json_values,
        "params": json_values,
        "result": json_values,
        "error": json_values,
    },
)
KINDS = (jsonrpc.REQUEST, jsonrpc.NOTIFICATION, jsonrpc.RESPONSE, jsonrpc.BATCH)
CODES = (jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST, jsonrpc.INVALID_PARAMS)


def _decode(data: bytes) -> tuple[Any, int] | Any:
    try:
        return jsonrpc.decode(bytearray(data))
    except jsonrpc.Error as e:
        assert e.code in CODES and e.message
        return e


@FUZZ
@given(st.binary(max_size=300))
def test_decode_takes_any_bytes(data: bytes) -> None:
    out = _decode(data)
    if not isinstance(out, jsonrpc.Error):
        assert out[1] in KINDS


@FUZZ
@given(messages | json_values)
def test_decode_classifies_every_shape(doc: Any) -> None:
    out = _decode(json.dumps(doc).encode())
    if isinstance(out, jsonrpc.Error):
        # An error names the request's id only when the id was a valid one.
        assert out.id is None or (isinstance(doc, dict) and out.id == doc.get("id") and jsonrpc.valid_id(out.id))
        return
    msg, kind = out
    if kind == jsonrpc.BATCH:
        assert isinstance(msg, list) and msg
        return
    assert isinstance(msg, dict) and msg["jsonrpc"] == "2.0"
    if kind == jsonrpc.REQUEST:
        assert jsonrpc.valid_id(msg["id"]) and isinstance(msg["method"], str)
    if kind in (jsonrpc.REQUEST, jsonrpc.NOTIFICATION):
        assert msg.get("params") is None or isinstance(msg["params"], dict)


@FUZZ
@given(st.integers(1, 200), st.sampled_from("[{"), st.text(alphabet='[]{}"\\,:1a ', max_size=60))
def test_nesting_is_bounded_before_parsing(depth: int, bracket: str, noise: str) -> None:
    close = "]" if bracket == "[" else "}"
    inner = "[]" if bracket == "[" else '{"a":1}'
    body = (bracket if bracket == "[" else '{"a":') * depth + inner + close * depth
    out = _decode(body.encode())
    if depth + 1 > jsonrpc.MAX_DEPTH:
        assert isinstance(out, jsonrpc.Error) and out.code == jsonrpc.INVALID_REQUEST
    _decode(noise.encode())  # any mix of brackets, quotes and escapes: an error or a message


class _Sink:
    # The stream the firmware serialises into, kept whole (the firmware's caller would send and
    # rewind it between pieces).
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data).decode())


@FUZZ
@given(ids.filter(jsonrpc.valid_id) | st.none(), json_values, st.integers(-33000, 0), st.text(max_size=30))
def test_responses_are_valid_json(rid: Any, value: Any, code: int, message: str) -> None:
    result = {"items": value if isinstance(value, list) else [value] * 6, "other": value}
    whole = json.loads(jsonrpc.result(rid, result))
    assert whole == {"jsonrpc": "2.0", "id": rid, "result": json.loads(json.dumps(result))}
    for dump in (jsonrpc.dump_result, lambda out, rid, value: list(jsonrpc.dump_pieces(out, rid, value))):
        out = _Sink()
        dump(out, rid, result)
        assert json.loads("".join(out.parts)) == whole
    err = json.loads(jsonrpc.error(rid, code, message, value))
    assert err["id"] == rid and err["error"]["code"] == code and err["error"]["message"] == message


schemas = st.recursive(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["string", "integer", "number", "boolean", "object", "array", "null", "x"])
            | st.lists(st.sampled_from(["string", "integer", "null"]), max_size=3),
            "enum": st.lists(scalars, max_size=3),
            "const": scalars,
            "minimum": st.integers(-10, 10) | st.floats(-10, 10),
            "maximum": st.integers(-10, 10),
            "exclusiveMinimum": st.integers(-10, 10),
            "exclusiveMaximum": st.integers(-10, 10),
            "minLength": st.integers(0, 5),
            "maxLength": st.integers(0, 5),
            "minItems": st.integers(0, 3),
            "maxItems": st.integers(0, 3),
            "required": st.lists(st.text(max_size=3), max_size=2),
            "additionalProperties": st.booleans(),
        },
    ),
    lambda inner: st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["object", "array"]),
            "properties": st.dictionaries(st.text(max_size=3), inner, max_size=3),
            "items": inner,
            "additionalProperties": inner | st.booleans(),
        },
    ),
    max_leaves=8,
)


@FUZZ
@given(schemas, json_values)
def test_schema_check_never_raises(s: dict, value: Any) -> None:
    out = schema.check(s, value)
    assert out is None or (isinstance(out, str) and out)


@FUZZ
@given(st.integers(-5, 5), st.integers(-5, 5), json_values | st.integers(-10, 10) | st.floats(-10, 10))
def test_schema_integer_range_is_exact(lo: int, hi: int, value: Any) -> None:
    ok = schema.check({"type": "integer", "minimum": lo, "maximum": hi}, value) is None
    integral = (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value) and value == int(value)
    )
    assert ok == (integral and lo <= value <= hi)


@FUZZ
@given(st.text(max_size=40), st.text(min_size=1, max_size=40), st.sampled_from(["Bearer ", "bearer ", "BEARER "]))
def test_the_token_digest_compare_is_equality(sent: str, token: str, scheme: str) -> None:
    guard = auth.Guard(token)
    assert (guard.check({b"authorization": (scheme + sent).encode()}.get) is None) == (sent == token)
    assert guard.check({b"authorization": (scheme + token).encode()}.get) is None


TOKEN = "s3cret-token_XYZ"
header_names = st.sampled_from([b"host", b"origin", b"authorization", b"x"])  # as http.Headers.raw takes them
header_values = st.sampled_from(
    [
        "127.0.0.1",
        "localhost:80",
        "[::1]:8080",
        "board.local",
        "evil.example",
        "http://localhost",
        "http://evil.example",
        "null",
        "Bearer " + TOKEN,
        "bearer " + TOKEN,
        "Bearer " + TOKEN + " ",
        TOKEN,
        "",
    ]
) | st.text(max_size=30)


@FUZZ
@given(st.dictionaries(header_names, header_values, max_size=4))
def test_guard_lets_through_only_the_token_from_allowed_places(headers: dict[bytes, str]) -> None:
    guard = auth.Guard(TOKEN, ("board.local",), ("https://app.example",))
    refusal = guard.check({name: value.encode() for name, value in headers.items()}.get)
    if refusal is None:
        got = headers.get(b"authorization", "")
        assert got[:7].lower() == "bearer " and got[7:] == TOKEN
        host = auth._hostname(headers.get(b"host", "localhost").encode())
        assert host in (b"localhost", b"127.0.0.1", b"[::1]", b"board.local")
    else:
        assert refusal[0] in (401, 403)


@FUZZ
@given(
    st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    st.integers(0, 10**6),
    st.characters(codec="ascii"),
    st.text(max_size=40),
    st.integers(0, 3),
)
def test_request_state_survives_only_untampered(answers: dict, at: int, char: str, junk: str, how: int) -> None:
    # The sealed state holds an expiry and a per-boot MAC, so the tampering is drawn first.
    state = inputs._seal_state("tools/call:t", answers)
    assert inputs._open_state(state, "tools/call:t") == json.loads(json.dumps(answers))
    i = at % (len(state) + 1)
    tampered = (state[:i] + char + state[i + 1 :], state[:i], state + "-TAMPERED", junk)[how]
    if tampered == state:
        return
    try:
        inputs._open_state(tampered, "tools/call:t")
    except jsonrpc.Error as e:
        assert e.code == jsonrpc.INVALID_PARAMS
    else:
        raise AssertionError(f"tampered state accepted: {tampered!r}")
    try:
        inputs._open_state(state, "tools/call:other")
    except jsonrpc.Error as e:
        assert e.code == jsonrpc.INVALID_PARAMS
    else:
        raise AssertionError("a state was accepted for another request")
