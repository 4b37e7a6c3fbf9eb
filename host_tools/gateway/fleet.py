"""The MCP-over-MQTT client side: one MQTT 5 connection that finds every MCP server on a broker by
its presence, initializes with each and calls it (EMQX "MCP over MQTT" specification, the MQTT
transport of mcp-over-mqtt 2025-03-26; "spec §Section" below).

    fleet = Fleet("127.0.0.1", 1883, on_change=refresh)
    task = asyncio.create_task(fleet.run())          # connects, reconnects, forever
    board = fleet.boards["boardmcp-1a2b"]           # every initialized server, by its short name
    result = await board.request("tools/call", {"name": "system_info", "arguments": {}})

The fleet keeps each board's tools, prompts, resources and resource templates (refreshed on
its list_changed), and the resource subscriptions the gateway holds on boards (`subscribe`):
they outlive a board's session, so a board that comes back (a reboot, an MQTT reconnect of the
board or of the gateway: a new session either way) is subscribed again before it is ready.

A request may pass `on_note`: the board's notifications about it (progress by its token; log
messages, which carry no request id over MQTT, while it holds the board's log lock) go there, in
order, before the request returns.

A board's short name is the last level of its server-name (`boardmcp/boardmcp-1a2b` ->
`boardmcp-1a2b`); when two server-names share it, the whole server-name with `/` as `_`.
Several instances (server-ids) of one server-name are one server (spec §Terminology): the first
one initialized serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger("boardmcp.gateway")

LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"

PROTOCOL_VERSION = "2025-11-25"  # what the gateway asks boards for (the handshake era)
CLIENT_INFO = {"name": "boardmcp-gateway", "version": "0.1.0"}
# spec §Timeouts: the recommended defaults.
TIMEOUTS_S = {"initialize": 30.0, "tools/call": 60.0, "ping": 10.0}
DEFAULT_TIMEOUT_S = 30.0
BACKOFF_MAX_S = 30.0
_DISCONNECTED = {"jsonrpc": "2.0", "method": "notifications/disconnected"}


class BoardError(Exception):
    """A board answered with a JSON-RPC error, went away, or did not answer in time."""

    def __init__(self, message: str, code: int = -32603, data: Any = None) -> None:  # noqa: ANN401
        super().__init__(message)
        self.code = code
        self.data = data


class BoardUnreachable(BoardError):
    """The board went away or did not answer in time (it never said no)."""


@dataclass
class Board:
    """One MCP server instance on the broker (a server-id) and what it told us."""

    fleet: Fleet
    server_id: str
    server_name: str
    description: str = ""
    capabilities: dict[str, Any] = field(default_factory=dict)  # from its initialize result
    tools: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    ready: bool = False
    _next_id: int = 0
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _progress: dict[str, asyncio.Queue[dict[str, Any] | None]] = field(default_factory=dict)
    _log_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _log_queue: asyncio.Queue[dict[str, Any] | None] | None = None

    @property
    def rpc_topic(self) -> str:
        """spec §Message Topics: `$mcp-rpc/{mcp-client-id}/{server-id}/{server-name}`."""
        return f"$mcp-rpc/{self.fleet.client_id}/{self.server_id}/{self.server_name}"

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        on_note: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> Any:  # noqa: ANN401
        """Send one request and return its result; BoardError for an error, a timeout or a departure.
        With `on_note`, the board's notifications about this request go there (see the module doc)."""
        if on_note is None:
            return await self._request(method, params, timeout)
        meta = (params or {}).get("_meta") or {}
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        relay = asyncio.create_task(_drain(queue, on_note))
        token = None
        try:
            if "progressToken" in meta:
                # Tokens are unique per board, not per client: the gateway's own replaces the client's.
                token = f"gw-{secrets.token_hex(4)}"
                self._progress[token] = queue
                params = {**(params or {}), "_meta": {**meta, "progressToken": token}}
            if LOG_LEVEL_KEY not in meta:
                return await self._request(method, params, timeout)
            async with self._log_lock:
                self._log_queue = queue
                try:
                    return await self._request(method, params, timeout)
                finally:
                    self._log_queue = None
        finally:
            self._progress.pop(token or "", None)
            queue.put_nowait(None)
            await relay  # what the board said about the request goes out before its result

    async def _request(self, method: str, params: dict[str, Any] | None, timeout: float | None) -> Any:  # noqa: ANN401
        self._next_id += 1
        rid = self._next_id
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        # spec §Initialization: initialize goes to the control topic, the rest to the RPC topic.
        topic = f"$mcp-server/{self.server_id}/{self.server_name}" if method == "initialize" else self.rpc_topic
        try:
            await self.fleet.publish(topic, msg)
            reply = await asyncio.wait_for(future, timeout or TIMEOUTS_S.get(method, DEFAULT_TIMEOUT_S))
        except TimeoutError:
            raise BoardUnreachable(f"{self.server_name} did not answer {method} in time") from None
        finally:
            self._pending.pop(rid, None)
        if "error" in reply:
            err = reply["error"]
            raise BoardError(str(err.get("message", "error")), int(err.get("code", -32603)), err.get("data"))
        return reply.get("result")

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send one notification on the RPC topic."""
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        await self.fleet.publish(self.rpc_topic, msg)

    def take(self, msg: dict[str, Any]) -> None:
        """A response from the board: wake its request."""
        future = self._pending.get(msg.get("id"))  # type: ignore[arg-type]
        if future is not None and not future.done():
            future.set_result(msg)

    def noted(self, msg: dict[str, Any]) -> None:
        """A notification from the board about a request: to that request's queue, if it waits."""
        params = msg.get("params") or {}
        if msg["method"] == "notifications/progress":
            queue = self._progress.get(str(params.get("progressToken")))
        else:
            queue = self._log_queue
        if queue is not None:
            queue.put_nowait(msg)

    def gone(self) -> None:
        """The board went away: fail what waits on it."""
        self.ready = False
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BoardUnreachable(f"{self.server_name} went away"))


class Fleet:
    """Every MCP server on the broker whose server-name matches `server_filter` (spec
    §Service Discovery). `on_change` is called (no arguments) whenever the set of ready boards
    or one's lists change; `on_updated(board, uri)` when a board says a subscribed resource changed."""

    def __init__(
        self,
        host: str,
        port: int = 1883,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        server_filter: str = "#",
        on_change: Callable[[], None] | None = None,
        on_updated: Callable[[Board, str], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.tls = tls  # None: plain TCP
        self.server_filter = server_filter
        self.on_change = on_change or (lambda: None)
        self.on_updated = on_updated or (lambda board, uri: None)  # notifications/resources/updated
        self.client_id = ""
        self.instances: dict[str, Board] = {}  # server-id -> Board
        self.subscriptions: dict[tuple[str, str], int] = {}  # (server-name, the board's URI) -> subscribers
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()

    # -- what the gateway sees ----------------------------------------------------------------

    @property
    def boards(self) -> dict[str, Board]:
        """Ready boards by short name (one instance per server-name)."""
        by_name: dict[str, Board] = {}
        for board in self.instances.values():
            if board.ready and board.server_name not in by_name:
                by_name[board.server_name] = board
        short = [name.rsplit("/", 1)[-1] for name in by_name]
        return {
            (s if short.count(s) == 1 else name.replace("/", "_")): board
            for s, (name, board) in zip(short, by_name.items(), strict=True)
        }

    async def wait_for(self, predicate: Callable[[dict[str, Board]], bool], timeout: float) -> dict[str, Board]:
        """Wait until predicate(boards) holds; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self.boards))
        return self.boards

    # -- resource subscriptions ---------------------------------------------------------------

    async def subscribe(self, board: Board, uri: str) -> None:
        """One more subscriber to the board's resource `uri`: the first subscribes on the board
        (BoardError if it refuses); kept for every later session with a board of its server-name."""
        key = (board.server_name, uri)
        if not self.subscriptions.get(key):
            await board.request("resources/subscribe", {"uri": uri})
        self.subscriptions[key] = self.subscriptions.get(key, 0) + 1

    async def unsubscribe(self, server_name: str, uri: str) -> None:
        """One subscriber fewer; the last one unsubscribes on the board, if it is present."""
        key = (server_name, uri)
        left = self.subscriptions.get(key, 0) - 1
        if left > 0:
            self.subscriptions[key] = left
            return
        self.subscriptions.pop(key, None)
        board = next((b for b in self.instances.values() if b.ready and b.server_name == server_name), None)
        if board is not None:
            with contextlib.suppress(BoardError):
                await board.request("resources/unsubscribe", {"uri": uri})

    async def _resubscribe(self, board: Board) -> None:
        # A new session has none of the gateway's subscriptions: hand them over again. One the
        # board now refuses (its resource gone) is kept, for when it comes back.
        for name, uri in list(self.subscriptions):
            if name == board.server_name:
                try:
                    await board.request("resources/subscribe", {"uri": uri})
                except BoardUnreachable:
                    raise
                except BoardError as exc:
                    log.warning("%s refused the subscription to %s: %s", board.server_name, uri, exc)

    # -- the connection -----------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected to the broker (a fresh mcp-client-id per connection, spec §MQTT Client
        ID), reconnecting with backoff; never returns (cancel it)."""
        backoff = 1.0
        while True:
            try:
                await self._connection()
            except aiomqtt.MqttError as exc:
                log.warning("broker %s:%d: %s", self.host, self.port, exc)
            else:
                backoff = 1.0
            self._lost()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _connection(self) -> None:
        self.client_id = "boardmcp-gateway-" + secrets.token_hex(6)
        connect = Properties(PacketTypes.CONNECT)
        connect.SessionExpiryInterval = 0  # spec §Session Expiry Interval
        connect.UserProperty = [  # spec §User Property
            ("MCP-COMPONENT-TYPE", "mcp-client"),
            ("MCP-META", json.dumps(CLIENT_INFO)),
        ]
        # spec §Client Disconnect: the will says "disconnected" on our presence topic.
        will = aiomqtt.Will(f"$mcp-client/presence/{self.client_id}", json.dumps(_DISCONNECTED), qos=1)
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            username=self.username,
            password=self.password,
            tls_context=self.tls,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            properties=connect,
            clean_start=True,
            keepalive=30,
            # A PUBACK then the next request are two small writes: without this the second waits
            # for the broker's delayed ACK.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        async with client:
            self._client = client
            f = self.server_filter
            # spec §MCP Client Subscriptions; No Local on the RPC topic.
            await client.subscribe(f"$mcp-rpc/{self.client_id}/+/{f}", options=SubscribeOptions(qos=1, noLocal=True))
            await client.subscribe(f"$mcp-server/capability/+/{f}", qos=1)
            await client.subscribe(f"$mcp-server/presence/+/{f}", qos=1)
            self.connected.set()
            log.info("connected to %s:%d as %s", self.host, self.port, self.client_id)
            try:
                async for message in client.messages:
                    self._dispatch(message.topic.value, bytes(message.payload or b""))  # type: ignore[arg-type]
            finally:
                self.connected.clear()
                self._client = None

    async def close(self) -> None:
        """spec §Client Disconnect: say "disconnected" before leaving (run() is cancelled after)."""
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self.publish(f"$mcp-client/presence/{self.client_id}", _DISCONNECTED)

    async def publish(self, topic: str, msg: dict[str, Any]) -> None:
        """Publish one JSON-RPC message at QoS 1 with the spec's user properties."""
        client = self._client
        if client is None:
            raise BoardUnreachable("not connected to the broker")
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("MCP-COMPONENT-TYPE", "mcp-client"), ("MCP-MQTT-CLIENT-ID", self.client_id)]
        try:
            await client.publish(topic, json.dumps(msg, separators=(",", ":")), qos=1, properties=props)
        except aiomqtt.MqttError as exc:
            raise BoardUnreachable(f"publish failed: {exc}") from exc

    def _lost(self) -> None:
        for board in self.instances.values():
            board.gone()
        self.instances.clear()
        self._changed_now()

    # -- messages in --------------------------------------------------------------------------

    def _dispatch(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/", 3)  # [$mcp-server, presence|capability, server-id, server-name] or
        if len(parts) < 4:  # [$mcp-rpc, mcp-client-id, server-id, server-name]
            return
        if topic.startswith("$mcp-server/presence/"):
            self._presence(parts[2], parts[3], payload)
            return
        try:
            msg = json.loads(payload)
        except ValueError:
            log.warning("not JSON on %s", topic)
            return
        if not isinstance(msg, dict):
            return
        if topic.startswith("$mcp-server/capability/"):
            board = self.instances.get(parts[2])
            if board is None or not board.ready:
                return
            if str(msg.get("method", "")).endswith("/list_changed"):
                self._spawn(self._refresh(board))
            elif msg.get("method") == "notifications/resources/updated":  # spec §Resource Update
                self.on_updated(board, str((msg.get("params") or {}).get("uri", "")))
        elif topic.startswith("$mcp-rpc/"):
            board = self.instances.get(parts[2])
            if board is None:
                return
            if "method" not in msg:
                board.take(msg)
            elif msg["method"] == "notifications/disconnected":
                self._remove(board.server_id)  # spec §Server Disconnect: it de-initialized us
            elif "id" in msg:
                self._spawn(self._answer(board, msg))
            elif msg["method"] == "notifications/resources/updated":
                self.on_updated(board, str((msg.get("params") or {}).get("uri", "")))
            elif str(msg["method"]).endswith("/list_changed"):
                self._spawn(self._refresh(board))
            else:
                board.noted(msg)

    def _presence(self, server_id: str, server_name: str, payload: bytes) -> None:
        # spec §Service Registration / Unregistration.
        if not payload:
            self._remove(server_id)
            return
        try:
            online = json.loads(payload)
            params = online["params"]
        except (ValueError, KeyError, TypeError):
            log.warning("malformed presence of %s", server_id)
            return
        if server_id in self.instances:
            return
        board = Board(self, server_id, server_name, str(params.get("description", "")))
        self.instances[server_id] = board
        self._spawn(self._initialize(board))

    def _remove(self, server_id: str) -> None:
        board = self.instances.pop(server_id, None)
        if board is not None:
            was_ready = board.ready
            board.gone()
            log.info("%s (%s) went away", board.server_name, server_id)
            if was_ready:
                self._changed_now()

    async def _initialize(self, board: Board) -> None:
        # Retried with backoff while the board stays present: a busy board may miss a deadline.
        backoff = 1.0
        while self.instances.get(board.server_id) is board:
            try:
                init = await board.request(
                    "initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}
                )
                board.capabilities = dict(init.get("capabilities") or {})
                await board.notify("notifications/initialized")
                await self._lists(board)
                await self._resubscribe(board)
            except BoardError as exc:
                log.warning("%s (%s): %s; retrying in %g s", board.server_name, board.server_id, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            if self.instances.get(board.server_id) is board:
                board.ready = True
                log.info(
                    "%s (%s): %d tools, %d prompts, %d resources",
                    board.server_name,
                    board.server_id,
                    len(board.tools),
                    len(board.prompts),
                    len(board.resources) + len(board.templates),
                )
                self._changed_now()
            return

    async def _refresh(self, board: Board) -> None:
        with contextlib.suppress(BoardError):
            await self._lists(board)
            self._changed_now()

    @staticmethod
    async def _lists(board: Board) -> None:
        # What the board's capabilities say it has (a list_changed says which one, but a
        # board's lists are short: all of them are fetched again).
        async def fetch(method: str, key: str) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            cursor = None
            while True:
                result = await board.request(method, {"cursor": cursor} if cursor else {})
                items += result.get(key, [])
                cursor = result.get("nextCursor")
                if not cursor:
                    return items

        caps = board.capabilities
        board.tools = await fetch("tools/list", "tools") if "tools" in caps else []
        board.prompts = await fetch("prompts/list", "prompts") if "prompts" in caps else []
        has_resources = "resources" in caps
        board.resources = await fetch("resources/list", "resources") if has_resources else []
        board.templates = await fetch("resources/templates/list", "resourceTemplates") if has_resources else []

    async def _answer(self, board: Board, msg: dict[str, Any]) -> None:
        # The gateway declares no client capabilities: it answers ping, and nothing else.
        if msg["method"] == "ping":
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": msg["id"], "result": {}}
        else:
            reply = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "Method not found"}}
        with contextlib.suppress(BoardError):
            await self.publish(board.rpc_topic, reply)

    def _spawn(self, coro: Any) -> None:  # noqa: ANN401
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _changed_now(self) -> None:
        self.on_change()
        self._spawn(self._notify_waiters())

    async def _notify_waiters(self) -> None:
        async with self._changed:
            self._changed.notify_all()


async def _drain(
    queue: asyncio.Queue[dict[str, Any] | None], on_note: Callable[[dict[str, Any]], Awaitable[None]]
) -> None:
    # One request's notifications, in the order the board sent them, until None.
    while (msg := await queue.get()) is not None:
        try:
            await on_note(msg)
        except Exception as exc:  # the client went away: the board's answer still counts
            log.debug("dropped a notification: %s", exc)
