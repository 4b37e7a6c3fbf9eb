"""The gateway's MCP server: every board on the broker behind one Streamable HTTP endpoint.

Each board's entries are namespaced by its short name (fleet.py):
- tools and prompts: `<board>.<name>` (e.g. `alpha.led`); completion of a prompt's arguments
  follows its prompt;
- resources and resource templates: `board://<board>/<the board's own URI>`
  (`board://alpha/sensor://bme280/temperature`): everything after `board://<board>/` is the
  board's URI, unchanged. Contents read through the gateway carry the URI the client asked for;
  content inside results (embedded resources, resource links) is passed through as the board wrote it;
- `all.<tool>`: fan-out, the tool called on every board that has it, concurrently; the
  result maps each board to its structured result (or its error);
- `boards`: the boards present, with their server-name, server-id and description.

With `expose=<board>`, that board's tools, prompts and resources are also served under their own
names and URIs (a single-board setup, or clients that expect bare names); the gateway's own
`boards` and `all.*` win a clash.

Requests go to the boards in the 2026-07-28 era (an envelope per request, over the MQTT session
the fleet opened), whatever era the client speaks: a board that needs client input answers
`input_required`. A 2026-07-28 client gets that result as it is and retries with the answers
(and the board's requestState), which the gateway forwards; for a handshake-era client the
gateway asks the client itself (elicitation, sampling, roots on the request's stream) and
retries for it. The client's capabilities, log level (`logging/setLevel` in the handshake era)
and progress token ride along; the board's progress and log messages come back on the
request's stream. Resource subscriptions (`resources/subscribe`, or a `subscriptions/listen`
naming URIs) subscribe the gateway to that resource on the board, again whenever the board
comes back (a reboot, a reconnect).

When a board appears, vanishes or changes a list, handshake-era sessions get
`notifications/{tools,prompts,resources}/list_changed` on their standalone stream, and
2026-07-28 clients on their `subscriptions/listen` streams.

    gateway = Gateway(Fleet("127.0.0.1", 1883), expose=None)
    await gateway.serve("127.0.0.1", 8080, token=None)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import warnings
from collections.abc import Awaitable
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.caching import CacheHint
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ToolsListChanged,
)
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from host_tools.gateway.fleet import Board, BoardError, Fleet

log = logging.getLogger("boardmcp.gateway")

FANOUT = "all"
BOARDS_TOOL = "boards"
URI_SCHEME = "board://"
MODERN = "2026-07-28"  # the era the gateway speaks to boards, request by request
INVALID_PARAMS = -32602
RESOURCE_NOT_FOUND = -32002
_PROTOCOL_KEY = "io.modelcontextprotocol/protocolVersion"
_SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
_INTERNAL = -32603  # what a board's departure or silence is reported as (fleet.BoardError)
# A board's request for client input (2026-07-28 inputRequests) -> the handshake-era request
# the gateway sends its client instead, and the result to expect.
_ASKS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "elicitation/create": (types.ElicitRequest, types.ElicitResult),
    "sampling/createMessage": (types.CreateMessageRequest, types.CreateMessageResultWithTools),
    "roots/list": (types.ListRootsRequest, types.ListRootsResult),
}
_BOARDS_SCHEMA = {
    "type": "object",
    "properties": {
        "boards": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "the prefix of its tools and prompts"},
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
# Boards come and go: any list is stale at once (2026-07-28 caching hints).
_NO_CACHE = CacheHint(ttl_ms=0, scope="private")
_LISTS = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")


class _Server(Server[Any]):
    # The lists change at run time: say so in the handshake (the SDK's default says not).
    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        changing = NotificationOptions(tools_changed=True, prompts_changed=True, resources_changed=True)
        return super().create_initialization_options(
            notification_options or changing, experimental_capabilities, extensions
        )


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


class Gateway:
    """The MCP server over a Fleet; serve() runs both. `expose`: a board's short name whose
    entries are also served under their own names."""

    def __init__(self, fleet: Fleet, expose: str | None = None) -> None:
        self.fleet = fleet
        self.expose = expose
        fleet.on_change = self._changed
        fleet.on_updated = self._updated
        self.bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self.bus)
        # Handshake-era clients, by connection (a ServerSession is per request; its connection
        # is the client's): one session to reach it, its log level, its resource subscriptions.
        self._sessions: dict[object, Any] = {}
        self._levels: dict[object, str] = {}
        # Subscriptions: gateway URI -> (server-name, the board's URI) it subscribed to.
        self._subscribed: dict[object, dict[str, tuple[str, str]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        with warnings.catch_warnings():
            # logging/setLevel is deprecated in 2026-07-28, but handshake-era clients use it.
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            self.server = self._server()
        self.server.middleware.append(self._remember_session)

    def _server(self) -> _Server:
        return _Server(
            "boardmcp-gateway",
            version="0.1.0",
            title="boardmcp fleet gateway",
            instructions=(
                "Tools and prompts of every board on the MQTT broker, named <board>.<name>; its resources as "
                "board://<board>/<uri>; all.<tool> calls a tool on every board at once; `boards` lists the "
                "boards. The lists change as boards come and go."
            ),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_subscribe_resource=self._subscribe,
            on_unsubscribe_resource=self._unsubscribe,
            on_subscriptions_listen=self._listen_stream,
            on_completion=self._complete,
            on_set_logging_level=self._set_level,
            cache_hints=dict.fromkeys(_LISTS, _NO_CACHE),
        )

    # -- names --------------------------------------------------------------------------------

    def _named(self, kind: str) -> list[tuple[str, str, Board, dict[str, Any]]]:
        """(gateway name, board key, board, entry) of every tool or prompt, exposed ones first."""
        boards = self.fleet.boards
        out = []
        exposed = boards.get(self.expose or "")
        if exposed is not None:
            out += [(e["name"], self.expose or "", exposed, e) for e in getattr(exposed, kind)]
        for key in sorted(boards):
            out += [(f"{key}.{e['name']}", key, boards[key], e) for e in getattr(boards[key], kind)]
        return out

    def _find(self, kind: str, name: str) -> tuple[str, Board, dict[str, Any]] | None:
        """(board key, board, entry) of a gateway tool or prompt name."""
        for gname, key, board, entry in self._named(kind):
            if gname == name:
                return key, board, entry
        return None

    def _board_uri(self, uri: str) -> tuple[str, Board, str] | None:
        """(board key, board, the board's URI) of a gateway resource URI."""
        boards = self.fleet.boards
        if uri.startswith(URI_SCHEME):
            key, _, inner = uri[len(URI_SCHEME) :].partition("/")
            board = boards.get(key)
            return (key, board, inner) if board is not None and inner else None
        board = boards.get(self.expose or "")
        return (self.expose or "", board, uri) if board is not None else None

    def _gateway_uris(self, key: str, uri: str) -> list[str]:
        """The gateway URIs of a board's resource: namespaced, and bare when the board is exposed."""
        return [f"{URI_SCHEME}{key}/{uri}"] + ([uri] if key == self.expose else [])

    # -- tools ------------------------------------------------------------------------------

    def tools(self) -> list[dict[str, Any]]:
        """Every tool the gateway offers now, as tools/list publishes them."""
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
        for name, key, _, tool in self._named("tools"):
            if name == BOARDS_TOOL or name.startswith(FANOUT + "."):
                continue  # an exposed board's tool that clashes with the gateway's own
            bare = name == tool["name"]
            title = tool.get("title", tool["name"]) if bare else f"{key}: {tool.get('title', tool['name'])}"
            out.append({**tool, "name": name, "title": title})
            if not bare:
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
        """Run one gateway tool without client context (no input, progress or logs); a
        CallToolResult as a dict. MCPError for an unknown tool."""
        return await self._call(name, {"name": name, "arguments": arguments}, _Asker(None))

    async def _call(self, name: str, params: dict[str, Any], asker: _Asker) -> dict[str, Any]:
        boards = self.fleet.boards
        arguments = params.get("arguments") or {}
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
        prefix, _, tool = name.partition(".")
        if prefix == FANOUT:
            targets = {k: b for k, b in boards.items() if any(t["name"] == tool for t in b.tools)}
            if targets:
                return await self._fan_out(targets, tool, arguments)
        found = self._find("tools", name)
        if found is not None:
            key, board, entry = found
            try:
                return await asker.forward(board, "tools/call", {**params, "name": entry["name"]})
            except BoardError as exc:
                if exc.code != _INTERNAL:
                    raise MCPError(exc.code, str(exc), exc.data) from exc
                return _error(f"{key}: {exc}")
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
    ) -> types.CallToolResult | types.InputRequiredResult:
        result = await self._call(params.name, _dump(params), _Asker(ctx, self._levels))
        return _typed(result, types.CallToolResult)

    # -- prompts and completion ---------------------------------------------------------------

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        prompts = [types.Prompt.model_validate({**p, "name": name}) for name, _, _, p in self._named("prompts")]
        return types.ListPromptsResult(prompts=prompts)

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        found = self._find("prompts", params.name)
        if found is None:
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {params.name}; prompts/list has the current ones")
        _, board, entry = found
        result = await _Asker(ctx, self._levels).relay(board, "prompts/get", {**_dump(params), "name": entry["name"]})
        return _typed(result, types.GetPromptResult)

    async def _complete(
        self, ctx: ServerRequestContext[Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        ref = _dump(params.ref)
        if ref.get("type") == "ref/prompt":
            found = self._find("prompts", str(ref.get("name")))
            target = (found[1], {**ref, "name": found[2]["name"]}) if found is not None else None
        else:
            located = self._board_uri(str(ref.get("uri")))
            target = (located[1], {**ref, "uri": located[2]}) if located is not None else None
        if target is None or "completions" not in target[0].capabilities:
            return types.CompleteResult(completion=types.Completion(values=[]))
        board, board_ref = target
        asker = _Asker(ctx, self._levels)
        result = await asker.relay(board, "completion/complete", {**_dump(params), "ref": board_ref})
        return types.CompleteResult.model_validate(result)

    # -- resources ----------------------------------------------------------------------------

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        out = []
        for key, board in self._boards_exposed_first():
            for r in board.resources:
                out.append(types.Resource.model_validate({**r, "uri": self._uri(key, r["uri"])}))
        return types.ListResourcesResult(resources=out)

    async def _list_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        out = []
        for key, board in self._boards_exposed_first():
            for t in board.templates:
                template = {**t, "uriTemplate": self._uri(key, t["uriTemplate"])}
                out.append(types.ResourceTemplate.model_validate(template))
        return types.ListResourceTemplatesResult(resource_templates=out)

    def _boards_exposed_first(self) -> list[tuple[str | None, Board]]:
        # (key, board); key None: the exposed board's bare entries.
        boards = self.fleet.boards
        exposed = boards.get(self.expose or "")
        return ([(None, exposed)] if exposed is not None else []) + sorted(boards.items())  # type: ignore[operator]

    @staticmethod
    def _uri(key: str | None, uri: str) -> str:
        return uri if key is None else f"{URI_SCHEME}{key}/{uri}"

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        located = self._board_uri(str(params.uri))
        if located is None:
            raise MCPError(RESOURCE_NOT_FOUND, f"Resource not found: {params.uri}", {"uri": str(params.uri)})
        _, board, inner = located
        result = await _Asker(ctx, self._levels).relay(board, "resources/read", {**_dump(params), "uri": inner})
        if result.get("resultType") != "input_required":
            # Contents carry gateway URIs: the board's, namespaced as the client asked.
            prefix = str(params.uri)[: -len(inner)]
            result["contents"] = [{**c, "uri": prefix + str(c.get("uri", ""))} for c in result.get("contents", [])]
        return _typed(result, types.ReadResourceResult)

    async def _subscribe(
        self, ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        uri = str(params.uri)
        conn = _connection(ctx)
        subs = self._subscribed.setdefault(conn, {})
        if uri not in subs:
            subs[uri] = await self._watch(uri)
            self._sessions[conn] = ctx.session
        return types.EmptyResult()

    async def _unsubscribe(
        self, ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        target = self._subscribed.get(_connection(ctx), {}).pop(str(params.uri), None)
        if target is not None:
            await self.fleet.unsubscribe(*target)
        return types.EmptyResult()

    async def _listen_stream(
        self, ctx: ServerRequestContext[Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        uris = list(params.notifications.resource_subscriptions or ())
        watched = []
        try:
            for uri in uris:
                # A URI no board has is honoured and never fires (as the SDK's handler does).
                with contextlib.suppress(MCPError):
                    watched.append(await self._watch(uri))
            return await self._listen(ctx, params)
        finally:
            for target in watched:
                with contextlib.suppress(Exception):
                    await self.fleet.unsubscribe(*target)

    async def _watch(self, uri: str) -> tuple[str, str]:
        # Subscribe the gateway to the resource on its board (once for every subscriber, and again
        # whenever the board comes back: fleet.py); the (server-name, board URI) to unsubscribe.
        located = self._board_uri(uri)
        if located is None:
            raise MCPError(RESOURCE_NOT_FOUND, f"Resource not found: {uri}", {"uri": uri})
        key, board, inner = located
        if "subscribe" not in (board.capabilities.get("resources") or {}):
            raise MCPError(INVALID_PARAMS, f"{key} does not support resource subscriptions")
        try:
            await self.fleet.subscribe(board, inner)
        except BoardError as exc:
            raise MCPError(exc.code, str(exc), exc.data) from exc
        return board.server_name, inner

    def _updated(self, board: Board, uri: str) -> None:
        key = next((k for k, b in self.fleet.boards.items() if b is board), None)
        if key is not None:
            self._spawn(self._tell_updated(self._gateway_uris(key, uri)))

    async def _tell_updated(self, uris: list[str]) -> None:
        for uri in uris:
            await self.bus.publish(ResourceUpdated(uri=uri))
        for conn, subs in list(self._subscribed.items()):
            for uri in uris:
                if uri in subs:
                    try:
                        await self._sessions[conn].send_resource_updated(uri)
                    except Exception:  # a session that ended: forget it
                        self._forget(conn)

    # -- logging ------------------------------------------------------------------------------

    async def _set_level(
        self, ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        # Handshake era: this client's level rides along on every request the gateway forwards.
        self._levels[_connection(ctx)] = params.level
        return types.EmptyResult()

    # -- list changes -------------------------------------------------------------------------

    async def _remember_session(self, ctx: ServerRequestContext[Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "notifications/initialized":
            self._sessions[_connection(ctx)] = ctx.session
        return result

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _changed(self) -> None:
        self._spawn(self._announce())

    async def _announce(self) -> None:
        for event in (ToolsListChanged(), PromptsListChanged(), ResourcesListChanged()):
            await self.bus.publish(event)
        for conn, session in list(self._sessions.items()):
            try:
                await session.send_tool_list_changed()
                await session.send_prompt_list_changed()
                await session.send_resource_list_changed()
            except Exception:  # a session that ended: forget it
                self._forget(conn)

    def _forget(self, conn: object) -> None:
        self._sessions.pop(conn, None)
        self._levels.pop(conn, None)
        for target in self._subscribed.pop(conn, {}).values():
            self._spawn(self.fleet.unsubscribe(*target))

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


class _Asker:
    """One client request forwarded to a board, in the board's 2026-07-28 era: the client's
    capabilities, log level and progress token in the envelope; the board's notifications back
    on the request's stream; its input_required answered by a handshake-era client through the
    gateway. `ctx` None: a call with no client behind it (fan-out)."""

    def __init__(self, ctx: ServerRequestContext[Any] | None, levels: dict[object, str] | None = None) -> None:
        self.ctx = ctx
        self.modern = ctx is not None and ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        meta: dict[str, Any] = dict(ctx.meta or {}) if ctx is not None else {}
        caps = ctx.session.client_capabilities if ctx is not None else None
        self.envelope: dict[str, Any] = {
            _PROTOCOL_KEY: MODERN,
            types.CLIENT_CAPABILITIES_META_KEY: _dump(caps) if caps is not None else {},
        }
        level = meta.get(types.LOG_LEVEL_META_KEY) if self.modern else (levels or {}).get(_connection(ctx))
        if level is not None:
            self.envelope[types.LOG_LEVEL_META_KEY] = level
        self.progress_token = meta.get("progress_token")  # the SDK's name for progressToken
        if self.progress_token is not None:
            self.envelope["progressToken"] = self.progress_token

    async def relay(self, board: Board, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """forward(), with a board's JSON-RPC error or departure as an MCPError."""
        try:
            return await self.forward(board, method, params)
        except BoardError as exc:
            raise MCPError(exc.code, str(exc), exc.data) from exc

    async def forward(self, board: Board, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The board's result; an input_required one only for a 2026-07-28 client."""
        params = {k: v for k, v in params.items() if k != "_meta"}
        on_note = self._note if self.ctx is not None else None
        while True:
            result = await board.request(method, {**params, "_meta": self.envelope}, on_note=on_note)
            meta = result.get("_meta")
            if isinstance(meta, dict):
                meta.pop(_SERVER_INFO_KEY, None)  # the board's; the client's server is the gateway
            if self.modern or self.ctx is None or result.get("resultType") != "input_required":
                return result
            answers = {k: await self._ask(r) for k, r in (result.get("inputRequests") or {}).items()}
            params = {**params, "inputResponses": answers}
            params.pop("requestState", None)
            if result.get("requestState") is not None:
                params["requestState"] = result["requestState"]

    async def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        # A handshake-era client answers a board's question as a request of ours on its stream.
        assert self.ctx is not None
        kinds = _ASKS.get(str(request.get("method")))
        if kinds is None:
            raise MCPError(INVALID_PARAMS, f"a board asked for {request.get('method')}, which the gateway cannot relay")
        req_type, result_type = kinds
        metadata = ServerMessageMetadata(related_request_id=self.ctx.request_id)
        answer = await self.ctx.session.send_request(req_type.model_validate(request), result_type, metadata=metadata)  # type: ignore[arg-type]
        return _dump(answer)

    async def _note(self, msg: dict[str, Any]) -> None:
        assert self.ctx is not None
        params = dict(msg.get("params") or {})
        if msg["method"] == "notifications/progress":
            params["progressToken"] = self.progress_token  # the client's own, again
            note: Any = types.ProgressNotification(params=types.ProgressNotificationParams.model_validate(params))
        elif msg["method"] == "notifications/message":
            log_params = types.LoggingMessageNotificationParams.model_validate(params)
            note = types.LoggingMessageNotification(params=log_params)
        else:
            return
        await self.ctx.session.send_notification(note, related_request_id=self.ctx.request_id)


def _connection(ctx: ServerRequestContext[Any] | None) -> object:
    # The client's connection: what a handshake-era client's state is kept by.
    return getattr(ctx.session, "_connection", None) if ctx is not None else None


def _typed(result: dict[str, Any], complete: type[Any]) -> Any:  # noqa: ANN401
    if result.get("resultType") == "input_required":
        return types.InputRequiredResult.model_validate(result)
    return complete.model_validate(result)


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
