"""JSON-RPC 2.0: message envelopes and error objects. Knows nothing of MCP.

msg, kind = jsonrpc.decode(b'{"jsonrpc":"2.0","id":1,"method":"ping"}')
body = jsonrpc.result(msg["id"], {})
"""

import io
import json

from micropython import const

PARSE_ERROR = const(-32700)
INVALID_REQUEST = const(-32600)
METHOD_NOT_FOUND = const(-32601)
INVALID_PARAMS = const(-32602)
INTERNAL_ERROR = const(-32603)

STREAM_ITEMS = const(4)  # results with longer lists are streamed item by item
# A Raw value is copied in pieces of this size. Transports send what the shared output stream
# holds once it reaches 1 KB, so a piece must leave that plus its own size within the stream's
# 1460 bytes: a stream that grew would need a larger block than a fragmented heap may have.
RAW_PIECE = const(256)
RAW_LARGE = const(1024)  # a Raw value longer than this is worth streaming
MAX_DEPTH = const(32)  # JSON nesting; deeper documents are refused before parsing

# What decode() found: a request wants a response, the other two do not.
REQUEST = const(0)
NOTIFICATION = const(1)
RESPONSE = const(2)
BATCH = const(3)  # a JSON array of messages (revision 2025-03-26 only)

# JSON as the board writes it: without the spaces json.dump puts after "," and ":" (a tenth
# fewer bytes to send and to hold). See dump().
COMPACT = (",", ":")


class Error(Exception):
    """A JSON-RPC error. Raised anywhere below a transport, it becomes the error response.

    `id` is the request id to echo (None when it could not be read).
    """

    def __init__(self, code, message, data=None, id=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.id = id


def valid_id(value):
    """True for the id types JSON-RPC allows in a request: string or integer (not bool, not null)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def decode(body, start=0, end=None):
    """Parse and check one message, body[start:end] of a bytes or bytearray; return (msg, kind).

    A non-empty JSON array comes back as (list, BATCH), unchecked: whoever allows batches
    checks each item with classify(). Raises Error(PARSE_ERROR) for bad JSON and
    Error(INVALID_REQUEST) for a bad envelope, carrying the request id when it was readable.
    """
    # Small functions on this path: a frame of more than 11 words (locals, expression stack, 3
    # per try) is heap allocated on every call, where a smaller one lives on the C stack.
    if end is None:
        end = len(body)
    # Counting brackets is cheap (C loops), so only documents with many of them get scanned.
    if body.count(b"[", start, end) + body.count(b"{", start, end) > MAX_DEPTH:
        _check_depth(body, start, end)
    msg = _loads(memoryview(body)[start:end])  # MicroPython's json.loads reads any buffer: no copy
    if isinstance(msg, list) and msg:
        return msg, BATCH
    return classify(msg)


def _loads(view):
    try:
        return json.loads(view)  # pyright: ignore[reportArgumentType]
    except (ValueError, UnicodeError):
        raise Error(PARSE_ERROR, "Parse error: the body is not valid JSON")


def classify(msg):
    """Check one parsed message's envelope; return (msg, kind). Raises Error as decode() does."""
    if not isinstance(msg, dict):
        raise Error(INVALID_REQUEST, "Invalid request: a message must be a JSON object")
    rid = msg.get("id")
    rid = rid if valid_id(rid) else None
    if msg.get("jsonrpc") != "2.0":
        raise Error(INVALID_REQUEST, 'Invalid request: "jsonrpc" must be "2.0"', id=rid)
    if "method" in msg:
        if not isinstance(msg["method"], str):
            raise Error(INVALID_REQUEST, 'Invalid request: "method" must be a string', id=rid)
        params = msg.get("params")
        if params is not None and not isinstance(params, dict):
            if isinstance(params, list):
                raise Error(INVALID_PARAMS, 'Invalid params: "params" must be an object', id=rid)
            raise Error(INVALID_REQUEST, 'Invalid request: "params" must be an object', id=rid)
        if "id" not in msg:
            return msg, NOTIFICATION
        if rid is None:
            raise Error(INVALID_REQUEST, 'Invalid request: "id" must be a string or an integer')
        return msg, REQUEST
    if rid is not None and ("result" in msg or "error" in msg):
        return msg, RESPONSE
    raise Error(INVALID_REQUEST, 'Invalid request: no "method"', id=rid)


def _check_depth(body, start, end):
    # Raises when body[start:end] nests deeper than MAX_DEPTH (brackets in strings not counted).
    depth = 0
    in_str = False
    esc = False
    for i in range(start, end):
        c = body[i]
        if in_str:
            if esc:
                esc = False
            elif c == 0x5C:  # backslash
                esc = True
            elif c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                raise Error(INVALID_REQUEST, "Invalid request: JSON nested deeper than %d levels" % MAX_DEPTH)
        elif c in (0x5D, 0x7D):
            depth -= 1


# A result's "content" that is one text block holding the JSON of its "structuredContent"
# (registry.structured()). dump_result() and dump_pieces() write that JSON once, as the
# structuredContent, and copy it escaped into the text: a string of it (dumps()) and the
# block's dicts were the largest allocation of a tool call (518 B of system_info's 4.3 KB).
JSON_TEXT = object()


class Raw:
    """A JSON array whose items are already encoded, as bytes start..end of a file
    (`item,item,...`): a result's value that is sent without being parsed or held."""

    def __init__(self, path, start, end):
        self.path = path
        self.start = start
        self.end = end


_piece = bytearray(RAW_PIECE)


def _raw(stream, raw):
    # Copy a Raw value into the stream as a JSON array, yielding after each piece.
    stream.write(b"[")
    n = raw.end - raw.start
    if n:
        mv = memoryview(_piece)
        with open(raw.path, "rb") as f:
            f.seek(raw.start)
            while n:
                got = f.readinto(mv[: min(n, RAW_PIECE)])
                if not got:
                    raise OSError("catalog file ends early: " + raw.path)
                stream.write(mv[:got])
                n -= got
                yield
    stream.write(b"]")


def dump(value, stream):
    """json.dump() as the board writes JSON: compact (COMPACT)."""
    # The esp32 stubs take separators positionally only; the port takes it by keyword only.
    json.dump(value, stream, separators=COMPACT)  # pyright: ignore[reportCallIssue]


def result(rid, value):
    """Encode a success response as bytes."""
    out = io.BytesIO()
    dump_result(out, rid, value)
    return out.getvalue()  # pyright: ignore[reportAttributeAccessIssue] (the esp32 stubs' BytesIO lacks it; the port has it)


def is_large(value):
    """True for a result worth streaming with dump_pieces(): one holding a long list."""
    for key in value:
        v = value[key]
        if isinstance(v, list) and len(v) > STREAM_ITEMS:
            return True
        if isinstance(v, Raw) and v.end - v.start > RAW_LARGE:
            return True
    return False


def dump_result(stream, rid, value):
    """Write a success response to a stream: no string of the whole response is built."""
    if _holds_raw(value):
        _dump_all_pieces(stream, rid, value)
        return
    stream.write(b'{"jsonrpc":"2.0","id":')
    json.dump(rid, stream)
    stream.write(b',"result":')
    if value.get("content") is JSON_TEXT:
        _structured(stream, value)
    else:
        dump(value, stream)
    stream.write(b"}")


# A structured tool result, apart from dump_result() and dump_pieces(), so that their frames
# fit the C stack (see decode()). MicroPython's streams take write(buf, offset, length): the
# text is copied a piece at a time through _piece, without a slice or a string.
def _structured(stream, value):
    # {"structuredContent":<JSON>,"content":[{"type":"text","text":"<the same, escaped>"}],...}
    stream.write(b'{"structuredContent":')
    _with_text(stream, value["structuredContent"])
    for key in value:  # the other members (resultType, _meta)
        if key not in ("content", "structuredContent"):
            stream.write(b",")
            dump(key, stream)
            stream.write(b":")
            dump(value[key], stream)
    stream.write(b"}")


def _with_text(stream, obj):
    # obj's JSON, then the text block holding it, copied escaped from the stream.
    start = stream.tell()
    dump(obj, stream)
    end = stream.tell()
    stream.write(b',"content":[{"type":"text","text":"')
    while start < end:  # a shared stream's length may be an earlier use's: positions are kept
        w = stream.tell()
        stream.seek(start)
        stream.readinto(_piece)
        n = min(RAW_PIECE, end - start)
        stream.seek(w)
        _escape(stream, n)
        start += n
    stream.write(b'"}]')


def _escape(stream, n):
    # The first n bytes of _piece (JSON) as a JSON string's contents: only its quotes and
    # backslashes need escaping (json.dump() escaped the control characters in its strings).
    if _piece.find(b"\\", 0, n) >= 0:
        _escape_all(stream, n)
        return
    a = 0
    q = _piece.find(b'"', 0, n)
    while q >= 0:
        stream.write(_piece, a, q - a)
        stream.write(b"\\")
        a = q
        q = _piece.find(b'"', q + 1, n)
    stream.write(_piece, a, n - a)


def _escape_all(stream, n):
    # As _escape(), a byte at a time: the JSON holds a backslash (a string with an escape).
    for i in range(n):
        c = _piece[i]
        if c in (0x22, 0x5C):  # quote, backslash
            stream.write(b"\\")
        stream.write(_piece, i, 1)


# Apart from dump_result(), so that its frame fits the C stack (see decode()).
def _holds_raw(value):
    for key in value:
        if isinstance(value[key], Raw):
            return True
    return False


def _dump_all_pieces(stream, rid, value):
    for _ in dump_pieces(stream, rid, value):
        pass


def dump_pieces(stream, rid, value):
    """Like dump_result(), yielding after each item of the result's lists (and each piece of a
    Raw value), so the caller can send what the stream holds and rewind it: the board never
    holds a long list's response."""
    if value.get("content") is JSON_TEXT:  # nothing long in it to yield after
        dump_result(stream, rid, value)
        return
    stream.write(b'{"jsonrpc":"2.0","id":')
    json.dump(rid, stream)
    stream.write(b',"result":{')
    sep = False
    for key in value:
        if sep:
            stream.write(b",")
        sep = True
        json.dump(key, stream)
        stream.write(b":")
        v = value[key]
        if isinstance(v, Raw):
            for _ in _raw(stream, v):
                yield
        elif isinstance(v, list):
            stream.write(b"[")
            for i in range(len(v)):
                if i:
                    stream.write(b",")
                dump(v[i], stream)
                yield
            stream.write(b"]")
        else:
            dump(v, stream)
    stream.write(b"}}")


def error(rid, code, message, data=None):
    """Encode an error response as bytes (rid None is sent as null, as JSON-RPC requires)."""
    err = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return json.dumps({"jsonrpc": "2.0", "id": rid, "error": err}, separators=COMPACT).encode()
