"""Streamable HTTP's requests of the handshake era (revisions up to 2025-11-25) beside a POST of
one message: GET /mcp, the session's standalone SSE stream for messages from the server; DELETE
/mcp, which ends the session; and revision 2025-03-26's batches (a POST of a JSON array).

Few requests are these, and revision 2026-07-28 has none: the module loads on first use
(Registry.cold) and is unloaded with the other cached code, but not while a stream is open.

    keep = await registry.cold("transport.http_session.get_stream")(http, conn)
"""

from micropython import const

from .. import jsonrpc
from ..jsonrpc import INVALID_REQUEST, Error
from ..registry import is_coroutine
from .http import _NoSession, _problem, _sent

MAX_BATCH = const(16)  # messages in one 2025-03-26 batch
MAX_STREAMS = const(3)  # open GET streams; each holds a connection
STREAM_KEEPALIVE_MS = const(15000)

busy = 0  # GET streams open now (registry.evict() does not unload this module while any is)


async def get_stream(http, conn):
    """The session's standalone SSE stream for server-initiated messages, until the session or
    the client ends; returns False (the connection closes after it)."""
    global busy
    headers = conn.headers
    try:
        session = http._session(headers)
    except _NoSession as e:
        return await _sent(conn, e.status, _problem(e.reason), b"")
    if b"accept" in headers and not headers.has(b"accept", b"text/event-stream"):
        return await _sent(conn, 406, _problem("Accept must include text/event-stream"), b"")
    if session.stream is not None:
        return await _sent(conn, 409, _problem("This session already has a GET stream"), b"")
    if busy >= MAX_STREAMS:
        return await _sent(conn, 503, _problem("Too many open streams; retry later"), b"Retry-After: 5\r\n")
    reply = conn.reply
    reply.extra = b"Connection: close\r\n"
    http._pass(conn)  # the stream stays open
    http._release(conn)  # the stream only writes, and the connection closes after it
    busy += 1
    session.stream = reply
    try:
        await reply.open()
        while not session.ended:
            if await reply.idle(STREAM_KEEPALIVE_MS):
                break
    finally:
        busy -= 1
        if session.stream is reply:
            session.stream = None
    await reply.end()
    return False


async def delete(http, conn):
    """End the session the request names; returns keep-alive."""
    try:
        http.server.end_session(http._session(conn.headers).id)
    except _NoSession as e:
        return await _sent(conn, e.status, _problem(e.reason), b"")
    return await _sent(conn, 200, None, b"")


async def batch(http, conn, items):
    """Answer a batch (revision 2025-03-26 lets a POST carry an array of messages): an array of
    the answers in one JSON body (nothing streams), or 202 when nothing needed one. Raises what
    a POST's message does (HTTPServer._failed answers it)."""
    headers = conn.headers
    status, payload = await _answers(
        http.server, items, headers.modern, None if headers.modern else http._session(headers)
    )
    return await _sent(conn, status, payload, b"")


async def _answers(server, items, modern, session):
    if modern or session is None or session.version != "2025-03-26":
        raise Error(INVALID_REQUEST, "Invalid request: batches are only allowed on revision 2025-03-26")
    if len(items) > MAX_BATCH:
        raise Error(INVALID_REQUEST, "Invalid request: at most %d messages per batch" % MAX_BATCH)
    answers = []
    for item in items:
        rid = None
        try:
            msg, kind = jsonrpc.classify(item)
            if kind != jsonrpc.REQUEST:
                server.accept(msg, kind == jsonrpc.RESPONSE, False, session)
                continue
            rid = msg["id"]
            if msg["method"] == "initialize":
                raise Error(INVALID_REQUEST, "Invalid request: initialize cannot be batched")
            result = server.handle(msg, server.context(False, session))
            if is_coroutine(result):
                result = await result
            if result is not None:
                answers.append(jsonrpc.result(rid, result))
        except Error as e:
            answers.append(jsonrpc.error(rid if rid is not None else e.id, e.code, e.message, e.data))
    if not answers:
        return 202, None
    return 200, b"[" + b",".join(answers) + b"]"
