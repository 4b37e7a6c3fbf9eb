"""The gateway's MCP server: one Streamable HTTP endpoint (the official SDK's, both eras) in front
of every board a Fleet finds on the broker.

Tools:
- `<board>.<tool>`: each board's tools, namespaced by its short name, forwarded over MQTT;
- `all.<tool>`: fan-out, the tool called on every board that has it, concurrently; the
  result maps each board to its structured result (or its error);
- `boards`: the boards present, with their server-name, server-id and description.

When a board appears, vanishes or changes its tools, handshake-era sessions get
`notifications/tools/list_changed` on their standalone stream, and 2026-07-28 clients on
their `subscriptions/listen` streams.

    gateway = Gateway(Fleet("127.0.0.1", 1883))
    await gateway.serve("127.0.0.1", 8080, token=None)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.caching import CacheHint
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from starlette.types import ASGIApp, Receive, Scope, Send

from host_tools.gateway.fleet import Board, BoardError, Fleet

log = logging.getLogger("boardmcp.gateway")

FANOUT = "all"
BOARDS_TOOL = "boards"
INVALID_PARAMS = -32602
_BOARDS_SCHEMA = {
    "type": "object",
    "properties": {
        "boards": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "the prefix of its tools"},
                    "server_name": {"type": "string"},
                    "server_id": {"type": "string"},
                    "description": {"type": "string"},
                    "tools": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["name", "server_name", "server_id", "tools"],
            },
        }
    },
    "required": ["boards"],
}
_FANOUT_SCHEMA = {
    "type": "object",
    "description": "board name -> that board's structured result, or {error} / {content, isError}",
    "additionalProperties": {"type": "object"},
}


class _Server(Server[Any]):
    # The tool list changes at run time: say so in the handshake (the SDK's default says not).
    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True), experimental_capabilities, extensions
        )


class Gateway:
    """The MCP server over a Fleet; serve() runs both."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        fleet.on_change = self._changed
        self.bus = InMemorySubscriptionBus()
        self._sessions: set[ServerSession] = set()  # handshake-era sessions, for list_changed
        self._tasks: set[asyncio.Task[None]] = set()
        self.server = _Server(
            "boardmcp-gateway",
            version="0.1.0",
            title="boardmcp fleet gateway",
            instructions=(
                "Tools of every board on the MQTT broker, named <board>.<tool>; all.<tool> calls a tool on "
                "every board at once; `boards` lists the boards. The list changes as boards come and go."
            ),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self.bus),
            # Boards come and go: a tools/list is stale at once (2026-07-28 caching hints).
            cache_hints={"tools/list": CacheHint(ttl_ms=0, scope="private")},
        )
        self.server.middleware.append(self._remember_session)

    # -- tools ------------------------------------------------------------------------------

    def tools(self) -> list[dict[str, Any]]:
        """Every tool the gateway offers now, as tools/list publishes them."""
        boards = self.fleet.boards
        out: list[dict[str, Any]] = [
            {
                "name": BOARDS_TOOL,
                "title": "Boards on the broker",
                "description": "List the boards the gateway reaches: the prefix of their tools, MQTT identity, tools.",
                "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
                "outputSchema": _BOARDS_SCHEMA,
                "annotations": {"readOnlyHint": True, "openWorldHint": False},
            }
        ]
        fanout: dict[str, dict[str, Any]] = {}
        for name in sorted(boards):
            for tool in boards[name].tools:
                title = f"{name}: {tool.get('title', tool['name'])}"
                out.append({**tool, "name": f"{name}.{tool['name']}", "title": title})
                fanout.setdefault(tool["name"], tool)
        for tname, tool in sorted(fanout.items()):
            entry = {
                "name": f"{FANOUT}.{tname}",
                "title": f"Every board: {tool.get('title', tname)}",
                "description": f"Call {tname} on every board that has it, at once. {tool.get('description', '')}",
                "inputSchema": tool["inputSchema"],
                "outputSchema": _FANOUT_SCHEMA,
            }
            if "annotations" in tool:
                entry["annotations"] = tool["annotations"]
            out.append(entry)
        return out

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Run one gateway tool; a CallToolResult as a dict. MCPError for an unknown tool."""
        boards = self.fleet.boards
        if name == BOARDS_TOOL:
            listed = [
                {
                    "name": key,
                    "server_name": b.server_name,
                    "server_id": b.server_id,
                    "description": b.description,
                    "tools": [t["name"] for t in b.tools],
                }
                for key, b in sorted(boards.items())
            ]
            return _structured({"boards": listed})
        prefix, _, tool = name.rpartition(".")
        if prefix == FANOUT:
            targets = {k: b for k, b in boards.items() if any(t["name"] == tool for t in b.tools)}
            if targets:
                return await self._fan_out(targets, tool, arguments)
        else:
            board = boards.get(prefix)
            if board is not None and any(t["name"] == tool for t in board.tools):
                try:
                    return await board.request("tools/call", {"name": tool, "arguments": arguments})
                except BoardError as exc:
                    if exc.code != -32603:
                        raise MCPError(exc.code, str(exc), exc.data) from exc
                    return _error(f"{prefix}: {exc}")
        raise MCPError(INVALID_PARAMS, f"Unknown tool: {name}; tools/list has the current ones")

    async def _fan_out(self, targets: dict[str, Board], tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        calls = [b.request("tools/call", {"name": tool, "arguments": arguments}) for b in targets.values()]
        results = await asyncio.gather(*calls, return_exceptions=True)
        merged: dict[str, Any] = {}
        for key, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                merged[key] = {"error": str(result)}
            elif "structuredContent" in result and not result.get("isError"):
                merged[key] = result["structuredContent"]
            else:
                merged[key] = {"content": result.get("content", []), "isError": bool(result.get("isError"))}
        return _structured(merged)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in self.tools()])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return types.CallToolResult.model_validate(await self.call(params.name, dict(params.arguments or {})))

    # -- list changes -------------------------------------------------------------------------

    async def _remember_session(self, ctx: ServerRequestContext[Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "notifications/initialized":
            self._sessions.add(ctx.session)
        return result

    def _changed(self) -> None:
        task = asyncio.create_task(self._announce())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self) -> None:
        await self.bus.publish(ToolsListChanged())
        for session in list(self._sessions):
            try:
                await session.send_tool_list_changed()
            except Exception:  # a session that ended: forget it
                self._sessions.discard(session)

    # -- serving ------------------------------------------------------------------------------

    def app(self, host: str, port: int, token: str | None) -> ASGIApp:
        """The ASGI app: the SDK's Streamable HTTP on /mcp, Host/Origin checked, and a bearer
        token when given."""
        names = ["127.0.0.1", "localhost", "[::1]"] if host in ("127.0.0.1", "localhost", "::1") else [host]
        security = TransportSecuritySettings(
            allowed_hosts=[f"{n}:{port}" for n in names] + names,
            allowed_origins=[f"http://{n}:{port}" for n in names],
        )
        app = self.server.streamable_http_app(host=host, transport_security=security)
        return _Bearer(app, token) if token else app

    async def serve(self, host: str, port: int, token: str | None) -> None:
        """Run the fleet and the HTTP endpoint until cancelled."""
        fleet_task = asyncio.create_task(self.fleet.run())
        config = uvicorn.Config(self.app(host, port, token), host=host, port=port, log_level="warning")
        try:
            await uvicorn.Server(config).serve()
        finally:
            await self.fleet.close()
            fleet_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fleet_task


def _structured(value: dict[str, Any]) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": json.dumps(value)}], "structuredContent": value}


def _error(message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "isError": True}


class _Bearer:
    """ASGI wrapper: requests without `Authorization: Bearer <token>` get 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = b'{"error":"unauthorized"}'
                headers = [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="boardmcp-gateway"'),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": 401, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
