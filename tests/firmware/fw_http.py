# The HTTP transport's header checks and lookups (transport.http), on the MicroPython VM.
from boardmcp.transport.http import Headers, _Reject, check_fields


def _headers(*lines):
    # As the transport reads a head: checked and names lower-cased in its buffer, then copied.
    buf = bytearray(b"\r\n".join((b"POST /mcp HTTP/1.1",) + lines))
    eol = buf.find(b"\r\n")
    check_fields(buf, eol, len(buf))
    return Headers(bytes(buf), eol)


def _refused(*lines):
    buf = bytearray(b"\r\n".join((b"POST /mcp HTTP/1.1",) + lines))
    try:
        check_fields(buf, buf.find(b"\r\n"), len(buf))
    except _Reject as r:
        return r.status
    return None


def test_names_are_lower_cased_in_place_and_values_kept():
    buf = bytearray(b"GET /Mcp HTTP/1.1\r\nMCP-Session-Id: AbC\r\nX-Odd_Name^1: Q")
    check_fields(buf, buf.find(b"\r\n"), len(buf))
    assert buf == b"GET /Mcp HTTP/1.1\r\nmcp-session-id: AbC\r\nx-odd_name^1: Q"


def test_malformed_fields_are_refused():
    assert _refused(b"Host: a", b"Accept: b") is None
    assert _refused(b"No colon here") == 400
    assert _refused(b": no name") == 400
    assert _refused(b"Space : before the colon") == 400
    assert _refused(*[b"X-%d: y" % i for i in range(40)]) == 431


def test_token_matches_are_case_insensitive():
    h = _headers(b"Connection: Keep-Alive, Close", b"Content-Type: Application/JSON; charset=utf-8")
    assert h.has(b"connection", b"close") and not h.has(b"connection", b"upgrade")
    assert h.starts(b"content-type", b"application/json") and not h.starts(b"content-type", b"text/")
    h = _headers(b"connection: keep-alive", b"content-type: application/json")
    assert not h.has(b"connection", b"close") and h.starts(b"content-type", b"application/json")


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
