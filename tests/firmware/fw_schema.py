# Tool-argument validation tests, on the MicroPython VM.
import json

from boardmcp.schema import check

OBJ = {
    "type": "object",
    "properties": {
        "state": {"type": "string", "enum": ["on", "off"]},
        "pin": {"type": "integer", "minimum": 0, "maximum": 48},
        "duty": {"type": "number", "exclusiveMaximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "name": {"type": "string", "minLength": 1, "maxLength": 4},
    },
    "required": ["state"],
    "additionalProperties": False,
}


def test_accepts_valid_arguments():
    assert check(OBJ, {"state": "on"}) is None
    assert check(OBJ, {"state": "off", "pin": 48, "duty": 0.5, "tags": ["a"], "name": "ab"}) is None
    assert check(OBJ, {"state": "on", "pin": 2.0}) is None  # JSON integers may arrive as 2.0


def test_reports_the_offending_field():
    assert "state is required" in check(OBJ, {})
    assert "one of: on, off" in check(OBJ, {"state": "blink"})
    assert "pin must be <= 48" in check(OBJ, {"state": "on", "pin": 49})
    assert "pin must be >= 0" in check(OBJ, {"state": "on", "pin": -1})
    assert "pin must be of type integer" in check(OBJ, {"state": "on", "pin": "2"})
    assert "pin must be of type integer" in check(OBJ, {"state": "on", "pin": 2.5})
    for huge in (json.loads("1e999"), json.loads("-1e999")):  # infinities: not integers, no crash
        assert "pin must be of type integer" in check(OBJ, {"state": "on", "pin": huge})
    assert "duty must be < 1" in check(OBJ, {"state": "on", "duty": 1})
    assert "tags[1] must be of type string" in check(OBJ, {"state": "on", "tags": ["a", 1]})
    assert "at most 2 items" in check(OBJ, {"state": "on", "tags": ["a", "b", "c"]})
    assert "at most 4 characters" in check(OBJ, {"state": "on", "name": "abcde"})
    assert "x is not an accepted argument" in check(OBJ, {"state": "on", "x": 1})
    assert "arguments must be of type object" in check(OBJ, [])


def test_booleans_are_not_numbers():
    assert check({"type": "integer"}, True) is not None
    assert check({"type": "number"}, False) is not None
    assert check({"type": "boolean"}, 1) is not None


def test_type_lists_and_nested_objects():
    assert check({"type": ["string", "null"]}, None) is None
    nested = {"type": "object", "properties": {"a": {"type": "object", "required": ["b"]}}}
    assert "a.b is required" in check(nested, {"a": {}})
