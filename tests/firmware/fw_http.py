# The HTTP transport (transport.http): its header checks and lookups, and what it loads on
# demand, on the MicroPython VM.
import asyncio
import sys

from boardmcp.registry import Registry
from boardmcp.server import Server
from boardmcp.transport.http import Headers, _Reject, check_fields
from loopback import listen

SESSION = "boardmcp.transport.http_session"


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


def test_numbers_are_decimal_digits_alone():
    assert _headers(b"Content-Length:  12 ").number(b"content-length") == 12
    assert _headers(b"Content-Length: 0").number(b"content-length") == 0
    assert _headers(b"Host: a").number(b"content-length") is None
    for bad in (b"+5", b"-1", b"1e3", b"0x10", b"1 2", b"", b"\xd9\xa3"):  # the last: Arabic-Indic 3
        assert _headers(b"Content-Length: " + bad).number(b"content-length") == -1, bad
    assert _headers(b"Content-Length: 5", b"content-length: 5").number(b"content-length") == -1
    assert _headers(b"Content-Length: " + b"9" * 40).number(b"content-length") > 10**9


def test_which_finds_the_value_among_texts_with_one_look():
    h = _headers(b"MCP-Protocol-Version:  2025-06-18 ", b"X-Other: 2025-11-25")
    assert h.which(b"mcp-protocol-version", ("2025-11-25", "2025-06-18")) == 1
    assert h.which(b"mcp-protocol-version", ("2025-11-25", "2025-06-1")) == -1
    assert h.which(b"x-absent", ("a",)) is None
    twice = _headers(b"MCP-Protocol-Version: 2025-06-18", b"mcp-protocol-version: 2025-06-18")
    assert twice.which(b"mcp-protocol-version", ("2025-06-18",)) == -1  # as equals() has it
    assert not twice.equals(b"mcp-protocol-version", "2025-06-18")


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


async def _send(port, head, body=b""):
    # One request on a new connection; the open connection and the response's first bytes.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
    return reader, writer, await asyncio.wait_for_ms(reader.read(1024), 3000)


async def test_a_get_stream_keeps_its_module_loaded_until_it_ends():
    # GET streams are served by a module loaded on demand and unloaded with the cached code, but
    # not while a stream is open (its code runs, and a second copy would load for the next).
    server = Server(Registry(), "test")
    http = await listen(server, 47501)
    streams = []
    try:
        init = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
        init += b'"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'
        post = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        _, w, got = await _send(http.port, post + b"Accept: application/json, text/event-stream\r\n", init)
        streams.append(w)
        sid = got[got.find(b"Mcp-Session-Id: ") + 16 :].split(b"\r\n")[0]
        get = b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nMcp-Session-Id: " + sid + b"\r\n"
        _, w, got = await _send(http.port, get)
        streams.append(w)
        assert got.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"), got
        server.registry.evict()
        assert SESSION in sys.modules  # the open stream keeps it
        _, w, got = await _send(http.port, get)  # the same session again: refused, counted once
        streams.append(w)
        assert got.startswith(b"HTTP/1.1 409 "), got
        await _close(streams[1])  # the client leaves: the stream ends
        for _ in range(50):
            await asyncio.sleep_ms(10)
            if not sys.modules[SESSION].busy:
                break
        assert sys.modules[SESSION].busy == 0
        server.registry.evict()
        assert SESSION not in sys.modules
    finally:
        for w in streams:
            await _close(w)
        http.close()


async def _close(writer):
    # MicroPython's Stream.close() closes nothing: wait_closed() does.
    writer.close()
    await writer.wait_closed()
