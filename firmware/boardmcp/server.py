"""MCP: protocol eras, sessions and the method tables (notifications out: notify.py). Knows nothing of
HTTP or sockets; every transport drives it the same way.

Two eras share one set of handlers:
- modern (2026-07-28): stateless; every request carries its envelope in params._meta and
  every result carries resultType; `server/discover` replaces `initialize`; a tool that needs
  client input returns `input_required`; `subscriptions/listen` carries change notifications.
- handshake (2025-11-25, 2025-06-18, 2025-03-26): `initialize` opens a Session; the server
  may send requests (sampling, elicitation) and notifications on the request's stream.

    srv = Server(registry, "esp32s3")
    session = srv.new_session()                                 # handshake era, on initialize
    result = srv.handle(msg, srv.context(modern, session, out, headers))  # or an awaitable:
    if is_coroutine(result):                                        # a handler that waits
        result = await result                                       # None: cancelled
    srv.accept(msg, is_response, modern, session, headers)          # notifications, responses

Every transport takes a turn (`turn()`) for each request before it allocates for it: on a tight
heap requests are then served one at a time.
"""

import asyncio
import binascii
import os
import time

from micropython import const

from . import NAME, VERSION
from .context import Cancelled, Context, InputRequired, Session
from .jsonrpc import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, Error, valid_id
from .registry import is_coroutine

MODERN_VERSIONS = ("2026-07-28",)
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
# Versions whose clients never send the modern envelope; a header naming one routes to
# the handshake era (2024-11-05 clients are answered with our latest handshake version).
_LEGACY_HEADER_VERSIONS = HANDSHAKE_VERSIONS + ("2024-11-05",)

HEADER_MISMATCH = const(-32020)
UNSUPPORTED_PROTOCOL_VERSION = const(-32022)

MAX_SESSIONS = const(4)  # the least recently used is ended to make room (its client re-initializes)

_K_VERSION = "io.modelcontextprotocol/protocolVersion"
_K_CAPS = "io.modelcontextprotocol/clientCapabilities"
_K_SERVER_INFO = "io.modelcontextprotocol/serverInfo"

# How long clients may cache list results: the offering is fixed until the board reboots
# (or announces a change to listeners).
LIST_TTL_MS = const(60000)
# A request normally holds its turn for well under this; one still holding it after this long is
# waiting on a client slow to take its response, and no longer holds the others back.
TURN_MAX_MS = const(1000)
_MAX_TICKET = const(0x3FFFFFFF)  # tickets stay small ints (no heap)


def is_modern(headers):
    """Era routing on HTTP: no MCP-Protocol-Version header, or a handshake one, means the
    handshake era; any other value (even garbage) takes the modern path, which rejects it.
    `headers`: the request's (transport.http.Headers), compared without making a string."""
    legacy = headers.which(b"mcp-protocol-version", _LEGACY_HEADER_VERSIONS)
    return legacy is not None and legacy < 0


def unsupported_version(requested):
    """The -32022 error for a modern version this server does not serve."""
    return Error(
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        {"supported": list(MODERN_VERSIONS), "requested": requested},
    )


def _b64_ok(s):
    if not s or len(s) % 4:
        return False
    body = s.rstrip("=")
    if len(s) - len(body) > 2:
        return False
    for c in body:
        if not (c.isalpha() or c.isdigit() or c in "+/"):
            return False
    return True


def decode_header_value(value):
    """Undo the `=?base64?...?=` sentinel of Mcp-Name / Mcp-Param-* values; None if malformed."""
    if value is None or not (value.startswith("=?base64?") and value.endswith("?=")) or len(value) < 11:
        return value
    return _from_base64(value[9:-2])


def _from_base64(payload):
    # Apart from decode_header_value(), whose plain values then take no heap for its frame.
    if not _b64_ok(payload):
        return None
    try:
        raw = binascii.a2b_base64(payload)
        # Only the canonical encoding matches, as the SDK's codec requires.
        if binascii.b2a_base64(raw).decode().strip() != payload:
            return None
        return raw.decode()
    except (ValueError, UnicodeError):
        return None


# Which body field the Mcp-Name header mirrors, per method.
_NAME_FIELD = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


_NO_ARGS = {}  # read only: tools/call without arguments


def _mismatch(what):
    return Error(HEADER_MISMATCH, what + " header does not match the request body")


class Server:
    """One MCP server over a registry, shared by every transport."""

    def __init__(self, registry, board, instructions=None, page_size=50):
        self.registry = registry
        self.info = {"name": NAME, "title": "boardmcp on " + board, "version": VERSION}
        self.instructions = instructions
        self.page_size = page_size
        self.sessions = {}  # Mcp-Session-Id -> Session (handshake era)
        self.listeners = []  # [Context, honoured notifications, subscribed uris] (2026-07-28)
        self._result_meta = {_K_SERVER_INFO: {"name": NAME, "version": VERSION}}
        self.caps = None  # ServerCapabilities, once a client has asked (lifecycle.py)
        self.one_at_a_time = False  # set on a tight heap: see turn()
        self._held = 0  # the ticket holding the turn, 0 when none does
        self._ticket = 0
        self._since = 0
        self._turned = None  # the asyncio.Event waiters sleep on, made when the first must wait
        self._spare = None  # a Context whose request is done, for the next (see handle())

    is_modern = staticmethod(is_modern)

    # -- sessions (handshake era) -------------------------------------------------------------

    def new_session(self):
        """Open an HTTP session for an `initialize`, ending the least recently used if full."""
        oldest = None
        count = 0
        for s in self.sessions.values():
            if not s.connection:  # stream-transport connections are not HTTP sessions
                count += 1
                if oldest is None or time.ticks_diff(s.used, oldest.used) < 0:
                    oldest = s
        if count >= MAX_SESSIONS and oldest is not None:
            self.end_session(oldest.id)
        session = Session(binascii.hexlify(os.urandom(16)).decode())
        self.sessions[session.id] = session
        return session

    def attach(self, out):
        """A session for one connection of a stream transport (WebSocket, serial), whose
        messages out all go on `out`. End it with end_session(session.id) when it closes."""
        session = Session(binascii.hexlify(os.urandom(8)).decode())
        session.connection = True
        session.stream = out
        self.sessions[session.id] = session
        return session

    @staticmethod
    def enveloped(msg):
        """Stream transports: does this request carry the 2026-07-28 envelope (so the modern era)?"""
        params = msg.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        return isinstance(meta, dict) and _K_VERSION in meta

    def find_session(self, sid):
        """The live session with this id, or None."""
        session = self.sessions.get(sid)
        if session is not None:
            session.used = time.ticks_ms()
        return session

    def end_session(self, sid):
        """End a session (DELETE, eviction, a closed connection); False if it was not live."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return False
        session.end()
        return True

    # -- turns (a tight heap) -----------------------------------------------------------------

    def turn(self):
        """A turn to serve one request, taken before it allocates anything (its buffer, its parsed
        message): a ticket to hand back with done(), or 0 while another request holds the turn:

            ticket = server.turn() or await server.wait_turn()
            ...                   # read, parse, handle, send the response
            server.done(ticket)   # and before any wait on the client (see below)

        Only a board set to serve `one_at_a_time` (a tight heap, see app.py) makes a request wait
        for it: there, requests' allocations never overlap, so a request finds the heap the others
        left rather than one they are still holding. A request gives its turn back before it waits
        on its client (more of a request that came in pieces, a handler that waits, a stream
        that stays open); a turn held longer than TURN_MAX_MS (a client slow to take its response)
        stops holding the others back. Elsewhere every request gets a turn at once (-1)."""
        if not self.one_at_a_time:
            return -1
        now = time.ticks_ms()
        if self._held and time.ticks_diff(now, self._since) < TURN_MAX_MS:
            return 0
        self._ticket = ticket = self._ticket % _MAX_TICKET + 1
        self._held = ticket
        self._since = now
        return ticket

    async def wait_turn(self):
        """Wait for a turn that turn() did not give at once; returns its ticket."""
        if self._turned is None:
            # Made on first need: asyncio's Event class loads a module of its own (1.3 KB on the
            # VM), which a board that never waits for a turn need not hold.
            self._turned = asyncio.Event()
        while True:
            await self._turned.wait()
            ticket = self.turn()
            if ticket:
                return ticket

    def done(self, ticket):
        """Hand a turn back (0, -1 and a turn that outlasted TURN_MAX_MS are ignored)."""
        if ticket > 0 and ticket == self._held:
            self._held = 0
            self._wake()

    def overdue(self, now):
        """Called every so often (by the HTTP server's reaper): wake the requests waiting for a
        turn held longer than TURN_MAX_MS, so that one of them takes it over."""
        if self._held and time.ticks_diff(now, self._since) >= TURN_MAX_MS:
            self._wake()

    def _wake(self):
        # Wake every waiter; the first to run takes the turn, the others wait again.
        if self._turned is not None:
            self._turned.set()
            self._turned.clear()

    # -- messages in ------------------------------------------------------------------------

    def context(self, modern, session=None, out=None, headers=None):
        """The Context to handle() a request with: `modern` is its era; `session` the
        handshake-era client (or the connection, on stream transports); `out` streams messages
        ahead of the result (see context.py); `headers` (lower-cased names) come from HTTP only
        and are checked against the body in the modern era. It is the Context a request that
        was answered at once left (see handle()), else a new one."""
        ctx = self._spare
        if ctx is None:
            ctx = Context(self)
        self._spare = None
        ctx.modern = modern
        ctx.session = session
        ctx.out = out
        ctx.headers = headers
        return ctx

    def handle(self, msg, ctx):
        """Serve one request: its result object, or, when the handler waits, an awaitable of it
        (None once awaited means the request was cancelled). Serve with:

            result = server.handle(msg, server.context(modern, session, out, headers))
            if is_coroutine(result):
                result = await result

        A handler that never waits is served without a coroutine (the common case: tools that
        read a sensor). Raises jsonrpc.Error for protocol faults. (The request's state comes in
        its Context, not as arguments: with them, this frame did not fit the C stack.)
        """
        params = msg.get("params")
        if params is None:
            params = {}
        ctx.begin(msg["id"], params)
        result = self._method(msg, ctx)(self, ctx, params)
        if is_coroutine(result):
            return self._waiting(result, ctx)
        # A handler that returns at once keeps no hold of its Context (one that needs it later,
        # for progress, input or cancellation, waits): the next request takes it, where a new
        # one cost each request 400 B (its attributes grow its table four times).
        ctx.end()
        self._spare = ctx
        return self._complete(result, ctx.modern)

    def _method(self, msg, ctx):
        # The handler of the request's method, once its envelope passed the era's checks.
        method = msg["method"]
        if ctx.modern:
            _check_envelope(msg, ctx.params, ctx.headers)
            if ctx.headers is not None and method == "tools/call":
                self._check_param_headers(ctx.params, ctx.headers)
            fn = _MODERN.get(method)
        else:
            fn = _HANDSHAKE.get(method)
        if fn is None:
            raise Error(METHOD_NOT_FOUND, "Method not found: " + method)
        if isinstance(fn, str):
            fn = self.registry.cold(fn)
        return fn

    async def _waiting(self, pending, ctx):
        # A handler that waits: cancellable while in flight (notifications/cancelled finds it).
        session = ctx.session
        rid = ctx.id
        if session is not None:
            session.inflight[rid] = ctx
        try:
            result = await pending
        except Cancelled:
            return None
        except InputRequired as e:
            result = e.result()
        finally:
            if session is not None and session.inflight.get(rid) is ctx:
                del session.inflight[rid]
        return self._complete(result, ctx.modern)

    def _complete(self, result, modern):
        # Revision 2026-07-28: every result says whether it is complete and who served it.
        if modern:
            if "resultType" not in result:
                result["resultType"] = "complete"
            meta = result.get("_meta")
            if meta is None:
                result["_meta"] = self._result_meta
            else:
                meta[_K_SERVER_INFO] = self._result_meta[_K_SERVER_INFO]
        return result

    def accept(self, msg, is_response, modern, session=None, headers=None):
        """Take a client notification or response.

        Responses answer our requests to the client (handshake era); `notifications/cancelled`
        stops a request in flight. Modern era on HTTP: a posted response is invalid, and a
        notification must name a served version.
        """
        if modern and headers is not None:
            if is_response:
                raise Error(INVALID_REQUEST, "Invalid request: revision 2026-07-28 takes no client responses")
            version = headers.get(b"mcp-protocol-version")
            if version not in MODERN_VERSIONS:
                raise unsupported_version(version)
        if session is None:
            return
        if is_response:
            session.answer(msg)
        elif msg["method"] == "notifications/cancelled":
            rid = (msg.get("params") or {}).get("requestId")
            ctx = session.inflight.get(rid) if valid_id(rid) else None  # a list id is unhashable
            if ctx is not None:
                ctx.cancel()

    # -- notifications out ------------------------------------------------------------------

    def subscribed(self):
        """URIs some client is subscribed to: what a sensor poller needs to watch."""
        uris = set()
        for session in self.sessions.values():
            uris.update(session.subscriptions)
        for listener in self.listeners:
            uris.update(listener[2])
        return uris

    async def resource_updated(self, uri):
        """Tell subscribers that a resource changed (`notifications/resources/updated`)."""
        await self.registry.cold("notify.resource_updated")(self, uri)

    async def list_changed(self, kind):
        """Announce that the tools, prompts or resources list changed (kind: "tools", ...)."""
        await self.registry.cold("notify.list_changed")(self, kind)

    # -- pagination ---------------------------------------------------------------------------

    def page(self, key, catalog, params, letter):
        """One page of a list result, straight from the registry's catalog; cursors are opaque
        to clients (a letter for the list plus the offset of the page). A cursor this server did
        not hand out is -32602."""
        cursor = params.get("cursor")
        start = 0
        n = len(catalog)
        if cursor is not None:
            ok = isinstance(cursor, str) and len(cursor) > 1 and cursor[0] == letter and cursor[1:].isdigit()
            start = int(cursor[1:]) if ok else 0
            if not ok or start <= 0 or start >= n:
                raise Error(INVALID_PARAMS, "Invalid cursor: pass back a nextCursor this list returned")
        end = min(start + self.page_size, n)
        result = {key: catalog.page(start, end)}
        if end < n:
            result["nextCursor"] = letter + str(end)
        return result

    def cached(self, result, ctx, ttl=LIST_TTL_MS):
        """Add revision 2026-07-28's caching hints to a list or read result."""
        if ctx.modern:
            result["ttlMs"] = ttl
            result["cacheScope"] = "public"
        return result

    def _ping(self, ctx, params):
        return {}

    # -- tools --------------------------------------------------------------------------------

    def _tools_list(self, ctx, params):
        return self.cached(self.page("tools", self.registry.tools, params, "t"), ctx)

    def _tools_call(self, ctx, params):
        name = params.get("name")
        if not isinstance(name, str):
            raise Error(INVALID_PARAMS, "tools/call needs params.name (string)")
        if not self.registry.has_tool(name):
            raise Error(INVALID_PARAMS, "Unknown tool: " + name)
        args = params.get("arguments")
        if args is None:
            args = {}
        elif not isinstance(args, dict):
            raise Error(INVALID_PARAMS, "tools/call params.arguments must be an object")
        ctx.target = name
        return self.registry.call_tool(name, args, ctx)

    def _check_param_headers(self, params, headers):
        # Mcp-Param-<Name> mirrors an argument whose schema carries x-mcp-header: <Name>.
        name = params.get("name")
        if not isinstance(name, str) or not self.registry.has_tool(name):
            return
        props = self.registry.tool_schema(name).get("properties")
        args = params.get("arguments") or _NO_ARGS
        if props and isinstance(args, dict):
            _check_mirrored(props, args, headers)


# The per-request checks below are small functions, with their error messages built apart: a
# frame of more than about 11 words (locals plus the deepest expression stack, error branches
# included) is heap allocated on every call.


def _check_mirrored(props, args, headers):
    for prop in props:
        header = props[prop].get("x-mcp-header")
        if header is not None:
            _check_mirrored_one(header, args.get(prop), headers)


def _check_mirrored_one(header, value, headers):
    # An absent argument must have no header; a present one, a header that decodes to it.
    got = headers.get(b"mcp-param-" + header.lower().encode())
    if value is None:
        bad = got is not None
    else:
        bad = decode_header_value(got) != (value if isinstance(value, str) else str(value))
    if bad:
        raise _mismatch("Mcp-Param-" + header)


def _check_envelope(msg, params, headers):
    # The modern ladder, in the SDK's order: envelope present, then headers, then version.
    meta = params.get("_meta")
    if not isinstance(meta, dict) or _K_VERSION not in meta or _K_CAPS not in meta:
        raise _envelope_missing()
    version = meta[_K_VERSION]
    if headers is not None:
        _check_routing_headers(msg, params, headers, version)
    if not isinstance(version, str):
        raise Error(INVALID_PARAMS, "params._meta protocolVersion must be a string")
    if version not in MODERN_VERSIONS:
        raise unsupported_version(version)
    if not isinstance(meta[_K_CAPS], dict):
        raise Error(INVALID_PARAMS, "params._meta clientCapabilities must be an object")


def _envelope_missing():
    return Error(
        INVALID_PARAMS,
        "params._meta must carry %s and %s (revision 2026-07-28 request envelope)" % (_K_VERSION, _K_CAPS),
    )


def _check_routing_headers(msg, params, headers, version):
    # HTTP: MCP-Protocol-Version, Mcp-Method and Mcp-Name must say what the body says.
    if not headers.equals(b"mcp-protocol-version", version):
        raise _mismatch("MCP-Protocol-Version")
    method = msg["method"]
    if not headers.equals(b"mcp-method", method):
        raise _mismatch("Mcp-Method")
    field = _NAME_FIELD.get(method)
    if field is not None:
        value = params.get(field)
        if value is not None and not _names(headers, value):
            raise _mismatch("Mcp-Name")


def _names(headers, value):
    # Does Mcp-Name say value, as sent or Base64-encoded? (A plain one is compared making no string.)
    if headers.equals(b"mcp-name", value) and not value.startswith("=?base64?"):
        return True
    return decode_header_value(headers.get(b"mcp-name")) == value


_HANDSHAKE = {
    "initialize": "lifecycle.initialize",
    "ping": Server._ping,
    "logging/setLevel": "lifecycle.set_level",
    "tools/list": Server._tools_list,
    "tools/call": Server._tools_call,
    "resources/list": "resources.list_resources",
    "resources/templates/list": "resources.list_templates",
    "resources/read": "resources.read",
    "resources/subscribe": "resources.subscribe",
    "resources/unsubscribe": "resources.unsubscribe",
    "prompts/list": "prompts.list_prompts",
    "prompts/get": "prompts.get",
    "completion/complete": "prompts.complete",
}

_MODERN = {
    "server/discover": "lifecycle.discover",
    "tools/list": Server._tools_list,
    "tools/call": Server._tools_call,
    "resources/list": "resources.list_resources",
    "resources/templates/list": "resources.list_templates",
    "resources/read": "resources.read",
    "prompts/list": "prompts.list_prompts",
    "prompts/get": "prompts.get",
    "completion/complete": "prompts.complete",
    "subscriptions/listen": "resources.listen",
}
