# The HTTP transport's header lookups (transport.http.Headers), on the MicroPython VM.
from boardmcp.transport.http import Headers


def _headers(*lines):
    head = b"\r\n".join((b"POST /mcp HTTP/1.1",) + lines)
    return Headers(head, head.find(b"\r\n"))


def test_values_by_case_insensitive_name():
    h = _headers(b"Content-Length:  12 ", b"MCP-Protocol-Version:\t2026-07-28", b"X-Empty:")
    assert h.raw(b"content-length") == b"12" and h.get(b"content-length") == "12"
    assert h.get(b"mcp-protocol-version") == "2026-07-28"
    assert h.raw(b"x-empty") == b"" and h.get(b"x-empty") == ""
    assert h.raw(b"host") is None and h.get(b"host", "d") == "d"
    # A name is a whole field name at the start of a line, not a part of one.
    assert h.raw(b"length") is None and h.raw(b"protocol-version") is None


def test_repeated_fields_are_joined():
    h = _headers(b"Accept: a", b"X-Other: b", b"accept: c")
    assert h.raw(b"accept") == b"a, c" and h.get(b"accept") == "a, c"


def test_equals_compares_the_value_exactly():
    h = _headers(b"Mcp-Method: tools/call", b"Mcp-Name: caf\xc3\xa9", b"Mcp-Twice: x", b"mcp-twice: x")
    assert h.equals(b"mcp-method", "tools/call")
    for other in ("tools/cal", "tools/calls", "Tools/call", "", None, 5):
        assert not h.equals(b"mcp-method", other), other
    assert h.equals(b"mcp-name", "caf\u00e9")  # as many characters as another value has bytes
    assert not h.equals(b"mcp-name", "cafe\u0301") and not h.equals(b"mcp-name", "cafe")
    assert not h.equals(b"mcp-twice", "x") and h.equals(b"mcp-twice", "x, x")
    assert h.equals(b"absent", None) and not h.equals(b"absent", "x") and not h.equals(b"absent", "")
