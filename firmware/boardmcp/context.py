"""Per-client and per-request MCP state: Session and Context.

A Session is one handshake-era client (an `Mcp-Session-Id` on HTTP, or one connection of a
stream transport): its negotiated version, capabilities, log level, resource subscriptions,
its standalone stream for server-initiated messages, and its requests in flight.

A Context is one request being served. Tool handlers and prompt getters receive it:

    async def slow(args, ctx):
        for i in range(3):
            await ctx.progress(i, 3)
            await ctx.log("info", "step %d" % i)
            await ctx.sleep(50)
        answers = await ctx.ask({"ok": ("elicitation/create", {"message": "Go?", "requestedSchema": S})})
        return text("done" if answers["ok"]["action"] == "accept" else "stopped")

`out` is what the transport gives a request to send messages on before its response (an SSE
stream on HTTP, the socket on WebSocket, the console on serial), or None where the transport
cannot stream. It offers:
- `async send(msg)`: write one JSON-RPC message (a dict); OSError when the client is gone.
- `async idle(ms) -> bool`: wait up to ms on a long-lived stream (keeping it alive); True when
  the client has gone away or stop() was called.
- `stop()`: the server is done with this stream; ends a pending idle() early.
"""

import asyncio
import time

LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
K_SUBSCRIPTION = "io.modelcontextprotocol/subscriptionId"  # names the listen stream of every frame on it
_NO_META = {}  # read only: spares a dict per request without params._meta


class Interrupt(Exception):
    """Control flow out of a handler; the registry lets these through to the server."""

    passthrough = True


class Cancelled(Interrupt):
    """The client cancelled the request, or went away: send nothing more for it."""


class InputRequired(Interrupt):
    """Revision 2026-07-28: the request needs client input first (an `input_required` result)."""

    def __init__(self, requests, state):
        super().__init__("input required")
        self.requests = requests
        self.state = state

    def result(self):
        """The `input_required` result object."""
        return {"resultType": "input_required", "inputRequests": self.requests, "requestState": self.state}


def level_index(name):
    """Position of a log level name in LEVELS, or -1 when it is not one."""
    for i in range(len(LEVELS)):
        if LEVELS[i] == name:
            return i
    return -1


class Session:
    """State of one handshake-era client."""

    def __init__(self, sid):
        self.id = sid
        self.version = None
        self.caps = {}
        self.client = None
        self.log_level = -1  # no log notifications until logging/setLevel
        self.subscriptions = set()
        self.stream = None  # `out` of the standalone stream (HTTP GET, or the connection itself)
        self.inflight = {}  # request id -> Context
        self.pending = {}  # id of our request to the client -> [Event, response]
        self.ended = False
        self.connection = False  # a stream transport's connection, not an HTTP session
        self.used = time.ticks_ms()
        self._next = 0

    def next_id(self):
        """A fresh id for a request the server sends this client."""
        self._next += 1
        return "s%d" % self._next

    def answer(self, msg):
        """Deliver the client's response to one of our requests; False if none was waiting."""
        slot = self.pending.get(msg.get("id"))
        if slot is None:
            return False
        slot[1] = msg
        slot[0].set()
        return True

    def end(self):
        """End the session: cancel its requests and wake whatever waits on it."""
        self.ended = True
        if self.stream is not None:
            self.stream.stop()
        for ctx in list(self.inflight.values()):
            ctx.cancel()
        for slot in self.pending.values():
            slot[0].set()


class Context:
    """One request in flight, as its handler sees it.

    Only what every request needs is set here; the rest is read from the request when a
    handler asks (most requests never do). The server reuses a Context once its request is
    answered (Server.context(), handle()), so serving a request costs no object for it.
    """

    cancelled = False
    target = None  # the tool, prompt or resource asked for: requestState is bound to it
    gathered = None  # 2026-07-28: answers so far, from requestState and inputResponses
    _wake = None
    _progress = None

    def __init__(self, server, modern=False, session=None, out=None, headers=None):
        # Server.context() sets these anew for each request: its era, the handshake-era session
        # (or stream connection), where messages ahead of the result go, the HTTP header fields.
        self.server = server
        self.modern = modern
        self.session = session
        self.out = out
        self.headers = headers

    def begin(self, rid, params):
        """Serve this request with this Context (Server.context() set its era, session, out and
        headers; the server reuses a Context whose request is done)."""
        self.id = rid
        self.params = params
        self.target = None

    def end(self):
        """The request is answered: let go of it. Only what every request sets is reset; the
        rest is set by handlers that wait, whose Context is never reused."""
        self.params = _NO_META
        self.session = self.out = self.headers = None

    def _meta(self):
        meta = self.params.get("_meta")
        return meta if isinstance(meta, dict) else _NO_META

    @property
    def progress_token(self):
        """The request's progressToken, or None when it asked for no progress."""
        token = self._meta().get("progressToken")
        return token if isinstance(token, (str, int)) and not isinstance(token, bool) else None

    @property
    def caps(self):
        """The client's capabilities: from the envelope (2026-07-28) or the session."""
        if self.modern:
            caps = self._meta().get("io.modelcontextprotocol/clientCapabilities")
            return caps if isinstance(caps, dict) else _NO_META
        return self.session.caps if self.session is not None else _NO_META

    @property
    def log_level(self):
        """Index in LEVELS of the least severe level the client wants, or -1 for no logs."""
        if self.modern:
            return level_index(self._meta().get("io.modelcontextprotocol/logLevel"))
        return self.session.log_level if self.session is not None else -1

    @property
    def responses(self):
        """2026-07-28: the client's inputResponses to an earlier input_required."""
        return self.params.get("inputResponses")

    @property
    def state(self):
        """2026-07-28: the requestState an earlier input_required handed out."""
        return self.params.get("requestState")

    # -- to the client ----------------------------------------------------------------------

    async def notify(self, method, params):
        """Send a notification on this request's stream (dropped where there is none)."""
        if self.cancelled:
            raise Cancelled()
        if self.out is None:
            return
        try:
            await self.out.send({"jsonrpc": "2.0", "method": method, "params": params})
        except OSError:
            self.cancelled = True  # the client went away mid-stream
            raise Cancelled()

    async def progress(self, progress, total=None, message=None):
        """`notifications/progress`, when the request asked for it with a progressToken.
        Progress must increase, so a value at or below the last one sent is dropped."""
        if self.progress_token is None or (self._progress is not None and progress <= self._progress):
            return
        self._progress = progress
        params = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self.notify("notifications/progress", params)

    async def log(self, level, data, logger=None):
        """`notifications/message`, when the client asked for logs at this level or above."""
        if self.log_level < 0 or level_index(level) < self.log_level:
            return
        params = {"level": level, "data": data}
        if logger:
            params["logger"] = logger
        await self.notify("notifications/message", params)

    def supports(self, capability):
        """True when the client declared this capability (e.g. "sampling") for this request."""
        return isinstance(self.caps.get(capability), dict)

    async def ask(self, requests):
        """Ask the client for input: `{key: (method, params)}` -> `{key: the client's result}`.

        Handshake era: each request goes to the client on this request's stream and the
        answer comes back in a POST of its own. Revision 2026-07-28: raises InputRequired;
        the client retries with `inputResponses` (and our signed `requestState`), and this
        call then returns the answers. A client that lacks a needed capability gets -32021.
        """
        from .inputs import ask  # few tools ask: the asking code loads on the first that does

        return await ask(self, requests)

    async def sleep(self, ms):
        """Wait, ending early with Cancelled if the client cancels meanwhile."""
        self._wake = asyncio.Event()
        try:
            await asyncio.wait_for_ms(self._wake.wait(), ms)
        except asyncio.TimeoutError:
            pass
        self._wake = None
        if self.cancelled:
            raise Cancelled()

    def cancel(self):
        """Mark the request cancelled and wake it from any wait."""
        self.cancelled = True
        if self._wake is not None:
            self._wake.set()
