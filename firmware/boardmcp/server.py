"""MCP: lifecycle, protocol eras and the method table. Knows nothing of HTTP or sockets.

Two eras share one method table:
- modern (2026-07-28): stateless; every request carries its envelope in params._meta and
  every result carries resultType; `server/discover` replaces `initialize`.
- handshake (2025-11-25, 2025-06-18, 2025-03-26): `initialize`, then plain requests.

    srv = Server(registry, "esp32s3")
    result = srv.handle(msg, modern=False)      # raises jsonrpc.Error on protocol faults
"""

import binascii

from micropython import const

from . import NAME, VERSION
from .jsonrpc import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, Error

MODERN_VERSIONS = ("2026-07-28",)
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
# Versions whose clients never send the modern envelope; a header naming one routes to
# the handshake era (2024-11-05 clients are answered with our latest handshake version).
_LEGACY_HEADER_VERSIONS = HANDSHAKE_VERSIONS + ("2024-11-05",)

HEADER_MISMATCH = const(-32020)
UNSUPPORTED_PROTOCOL_VERSION = const(-32022)

_K_VERSION = "io.modelcontextprotocol/protocolVersion"
_K_CAPS = "io.modelcontextprotocol/clientCapabilities"
_K_SERVER_INFO = "io.modelcontextprotocol/serverInfo"

# How long clients may cache list results: the tool set is fixed until the board reboots.
_LIST_TTL_MS = const(60000)


def is_modern(version_header):
    """Era routing on HTTP: no MCP-Protocol-Version header, or a handshake one, means the
    handshake era; any other value (even garbage) takes the modern path, which rejects it."""
    return version_header is not None and version_header not in _LEGACY_HEADER_VERSIONS


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
    payload = value[9:-2]
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


def _check_headers(msg, params, version, headers):
    # Modern HTTP: the routing headers must agree with the body they route.
    if headers.get("mcp-protocol-version") != version:
        raise Error(HEADER_MISMATCH, "MCP-Protocol-Version header does not match params._meta protocolVersion")
    method = msg["method"]
    if headers.get("mcp-method") != method:
        raise Error(HEADER_MISMATCH, "Mcp-Method header does not match the body's method")
    field = _NAME_FIELD.get(method)
    if field is not None:
        body_value = params.get(field)
        if body_value is not None and decode_header_value(headers.get("mcp-name")) != body_value:
            raise Error(HEADER_MISMATCH, "Mcp-Name header does not match the body's " + field)


class Server:
    """One MCP server over a registry, shared by every transport."""

    def __init__(self, registry, board, instructions=None):
        self.registry = registry
        self.info = {"name": NAME, "title": "boardmcp on " + board, "version": VERSION}
        self.instructions = instructions
        self._result_meta = {_K_SERVER_INFO: {"name": NAME, "version": VERSION}}

    def capabilities(self):
        """ServerCapabilities, identical in both eras."""
        return {"tools": {}}

    def handle(self, msg, modern, headers=None):
        """Answer one request message; return its result object.

        `headers` (lower-cased names) are given by HTTP only: in the modern era they are
        checked against the body. Raises jsonrpc.Error for protocol faults.
        """
        params = msg.get("params")
        if params is None:
            params = {}
        if modern:
            _check_envelope(msg, params, headers)
            fn = _MODERN.get(msg["method"])
        else:
            fn = _HANDSHAKE.get(msg["method"])
        if fn is None:
            raise Error(METHOD_NOT_FOUND, "Method not found: " + msg["method"])
        result = fn(self, params)
        if modern:
            result["resultType"] = "complete"
            result["_meta"] = self._result_meta
        return result

    is_modern = staticmethod(is_modern)

    def accept(self, msg, is_response, modern, headers=None):
        """Take a client notification or response (nothing acts on them yet).

        Modern era: a posted response is invalid, and a notification must name a served version.
        """
        if modern:
            if is_response:
                raise Error(INVALID_REQUEST, "Invalid request: revision 2026-07-28 takes no client responses")
            if headers is not None:
                version = headers.get("mcp-protocol-version")
            else:
                meta = (msg.get("params") or {}).get("_meta") or {}
                version = meta.get(_K_VERSION)
            if version not in MODERN_VERSIONS:
                raise unsupported_version(version)

    # -- methods --------------------------------------------------------------------------

    def _initialize(self, params):
        requested = params.get("protocolVersion")
        if not isinstance(requested, str):
            raise Error(INVALID_PARAMS, "initialize needs params.protocolVersion (string)")
        version = requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[0]
        result = {"protocolVersion": version, "capabilities": self.capabilities(), "serverInfo": self.info}
        if self.instructions:
            result["instructions"] = self.instructions
        return result

    def _discover(self, params):
        result = {
            "supportedVersions": list(MODERN_VERSIONS),
            "capabilities": self.capabilities(),
            "ttlMs": _LIST_TTL_MS,
            "cacheScope": "public",
        }
        if self.instructions:
            result["instructions"] = self.instructions
        return result

    def _ping(self, params):
        return {}

    def _tools_list(self, params):
        if params.get("cursor") is not None:
            raise Error(INVALID_PARAMS, "Invalid cursor: this list has a single page")
        return {"tools": self.registry.tools}

    def _tools_list_modern(self, params):
        result = self._tools_list(params)
        result["ttlMs"] = _LIST_TTL_MS
        result["cacheScope"] = "public"
        return result

    def _tools_call(self, params):
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
        return self.registry.call_tool(name, args)


def _check_envelope(msg, params, headers):
    # The modern ladder, in the SDK's order: envelope present, then headers, then version.
    meta = params.get("_meta")
    if not isinstance(meta, dict) or _K_VERSION not in meta or _K_CAPS not in meta:
        raise Error(
            INVALID_PARAMS,
            "params._meta must carry %s and %s (revision 2026-07-28 request envelope)" % (_K_VERSION, _K_CAPS),
        )
    version = meta[_K_VERSION]
    if headers is not None:
        _check_headers(msg, params, version, headers)
    if not isinstance(version, str):
        raise Error(INVALID_PARAMS, "params._meta protocolVersion must be a string")
    if version not in MODERN_VERSIONS:
        raise unsupported_version(version)


_HANDSHAKE = {
    "initialize": Server._initialize,
    "ping": Server._ping,
    "tools/list": Server._tools_list,
    "tools/call": Server._tools_call,
}

_MODERN = {
    "server/discover": Server._discover,
    "tools/list": Server._tools_list_modern,
    "tools/call": Server._tools_call,
}
