"""Notifications out: a resource changed, a list changed. Only boards with subscribers or lists
that change send them, so this is loaded on demand (see Server.resource_updated)."""

from .context import K_SUBSCRIPTION, Cancelled


async def resource_updated(srv, uri):
    params = {"uri": uri}
    for session in list(srv.sessions.values()):
        if uri in session.subscriptions:
            await _push(session, "notifications/resources/updated", params)
    for listener in list(srv.listeners):
        if uri in listener[2]:
            await _tell(listener[0], "notifications/resources/updated", {"uri": uri})


async def list_changed(srv, kind):
    method = "notifications/%s/list_changed" % kind
    flag = kind + "ListChanged"
    for session in list(srv.sessions.values()):
        await _push(session, method, None)
    for listener in list(srv.listeners):
        if listener[1].get(flag):
            await _tell(listener[0], method, {})


async def _push(session, method, params):
    # A server-initiated message on a handshake session's standalone stream, if it has one.
    out = session.stream
    if out is None:
        return
    msg = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    try:
        await out.send(msg)
    except OSError:
        session.stream = None


async def _tell(ctx, method, params):
    # A frame on a listen stream: every one names its subscription.
    params["_meta"] = {K_SUBSCRIPTION: ctx.id}
    try:
        await ctx.notify(method, params)
    except Cancelled:
        pass
