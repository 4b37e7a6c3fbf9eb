"""MCP resources: list, templates, read, subscriptions (handshake era) and `subscriptions/listen`
(revision 2026-07-28). Loaded on the first resource request, so a board that is only asked for
tools never holds this code. Each function is `fn(server, ctx, params) -> result`.
"""

from micropython import const

from .context import K_SUBSCRIPTION, Cancelled
from .jsonrpc import INVALID_PARAMS, INVALID_REQUEST, Error
from .registry import NotFound

RESOURCE_NOT_FOUND = const(-32002)  # handshake era only; 2026-07-28 uses -32602
MAX_SUBSCRIPTIONS = const(16)  # resource subscriptions per session or listen stream
MAX_LISTENERS = const(3)  # each holds a connection open
LISTEN_IDLE_MS = const(15000)  # keep-alive period of a listen stream
_READ_TTL_MS = const(0)  # resources are live readings


def _uri(params):
    uri = params.get("uri")
    if not isinstance(uri, str):
        raise Error(INVALID_PARAMS, "params.uri must be a string")
    return uri


def list_resources(srv, ctx, params):
    return srv.cached(srv.page("resources", srv.registry.resources, params, "r"), ctx)


def list_templates(srv, ctx, params):
    return srv.cached(srv.page("resourceTemplates", srv.registry.templates, params, "u"), ctx)


def read(srv, ctx, params):
    uri = _uri(params)
    ctx.target = uri
    try:
        contents = srv.registry.read_resource(uri)
    except NotFound:
        if ctx.modern:
            raise Error(INVALID_PARAMS, "Resource not found: " + uri, {"uri": uri})
        raise Error(RESOURCE_NOT_FOUND, "Resource not found: " + uri, {"uri": uri})
    except OSError as e:
        # A sensor behind the resource is absent or failing: a protocol error that says so.
        raise Error(INVALID_PARAMS, "Reading %s failed: %s; check the wiring" % (uri, e), {"uri": uri})
    return srv.cached({"contents": contents}, ctx, _READ_TTL_MS)


def subscribe(srv, ctx, params):
    uri = _uri(params)
    if not srv.registry.has_resource(uri):
        raise Error(RESOURCE_NOT_FOUND, "Resource not found: " + uri, {"uri": uri})
    if ctx.session is None:
        raise Error(INVALID_REQUEST, "Subscriptions need a session (initialize first)")
    subs = ctx.session.subscriptions
    if uri not in subs and len(subs) >= MAX_SUBSCRIPTIONS:
        raise Error(INVALID_PARAMS, "At most %d subscriptions per session" % MAX_SUBSCRIPTIONS)
    subs.add(uri)
    srv.registry.watch(uri, srv)
    return {}


def unsubscribe(srv, ctx, params):
    uri = _uri(params)
    if ctx.session is not None:
        ctx.session.subscriptions.discard(uri)
    return {}


async def listen(srv, ctx, params):
    want = params.get("notifications")
    if not isinstance(want, dict):
        raise Error(INVALID_PARAMS, "subscriptions/listen needs params.notifications (object)")
    if ctx.out is None:
        raise Error(INVALID_REQUEST, "This transport cannot carry a listen stream")
    if len(srv.listeners) >= MAX_LISTENERS:
        raise Error(INVALID_REQUEST, "Too many listen streams open (at most %d)" % MAX_LISTENERS)
    changing = srv.registry.changing
    honoured = {}
    for kind in ("tools", "prompts", "resources"):
        flag = kind + "ListChanged"
        if want.get(flag) is True and kind in changing:
            honoured[flag] = True
    uris = want.get("resourceSubscriptions")
    watched = set()
    if isinstance(uris, list):
        for uri in uris:
            if isinstance(uri, str) and srv.registry.has_resource(uri) and len(watched) < MAX_SUBSCRIPTIONS:
                watched.add(uri)
                srv.registry.watch(uri, srv)
        honoured["resourceSubscriptions"] = list(watched)
    meta = {K_SUBSCRIPTION: ctx.id}
    await ctx.notify("notifications/subscriptions/acknowledged", {"notifications": honoured, "_meta": meta})
    listener = [ctx, honoured, watched]
    srv.listeners.append(listener)
    try:
        while not ctx.cancelled and not await ctx.out.idle(LISTEN_IDLE_MS):
            pass
    finally:
        srv.listeners.remove(listener)
    # A listen stream ends only when its client leaves: it closed the stream (HTTP) or sent
    # notifications/cancelled (stream transports). Either way no response is due.
    raise Cancelled()
