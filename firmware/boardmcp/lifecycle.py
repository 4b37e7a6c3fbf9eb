"""MCP lifecycle: `initialize` (handshake era), `server/discover` (revision 2026-07-28),
`logging/setLevel` and the server's capabilities. A client asks for these once, so they are
loaded on demand and unloaded when the heap runs short. Each is `fn(server, ctx, params)`.
"""

from .context import level_index
from .jsonrpc import INVALID_PARAMS, Error
from .server import HANDSHAKE_VERSIONS, LIST_TTL_MS, MODERN_VERSIONS


def capabilities(srv):
    """ServerCapabilities, identical in both eras (built once, then kept by the server)."""
    if srv.caps is None:
        changing = srv.registry.changing
        srv.caps = {
            "tools": {"listChanged": "tools" in changing},
            "resources": {"subscribe": True, "listChanged": "resources" in changing},
            "prompts": {"listChanged": "prompts" in changing},
            "logging": {},
            "completions": {},
        }
    return srv.caps


def initialize(srv, ctx, params):
    requested = params.get("protocolVersion")
    if not isinstance(requested, str):
        raise Error(INVALID_PARAMS, "initialize needs params.protocolVersion (string)")
    caps = params.get("capabilities")
    if caps is not None and not isinstance(caps, dict):
        raise Error(INVALID_PARAMS, "initialize params.capabilities must be an object")
    version = requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[0]
    session = ctx.session
    if session is not None:
        # A new client on a long-lived connection (the serial console) starts afresh.
        session.version = version
        session.caps = caps or {}
        session.client = params.get("clientInfo")
        session.log_level = -1
        session.subscriptions = set()
    result = {"protocolVersion": version, "capabilities": capabilities(srv), "serverInfo": srv.info}
    if srv.instructions:
        result["instructions"] = srv.instructions
    return result


def discover(srv, ctx, params):
    result = {
        "supportedVersions": list(MODERN_VERSIONS),
        "capabilities": capabilities(srv),
        "ttlMs": LIST_TTL_MS,
        "cacheScope": "public",
    }
    if srv.instructions:
        result["instructions"] = srv.instructions
    return result


def set_level(srv, ctx, params):
    level = level_index(params.get("level"))
    if level < 0:
        raise Error(INVALID_PARAMS, "Invalid log level; use one of debug, info, notice, warning, error, ...")
    if ctx.session is not None:
        ctx.session.log_level = level
    return {}
