"""A hand-driven MCP-over-MQTT client for tests: it speaks the EMQX spec's topics and user
properties itself (aiomqtt, MQTT 5), so tests see exactly what the board publishes.

    async with McpOverMqtt(broker_port) as c:
        presence = await c.presence()                      # the first retained server/online
        await c.initialize(presence.server_id, presence.server_name)
        result = await c.request("tools/call", {"name": "system_info"})
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

WAIT_S = 20.0  # generous: CI has 2 cores shared with other boards


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    user_properties: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.payload)

    @property
    def server_id(self) -> str:
        return self.topic.split("/", 3)[2]

    @property
    def server_name(self) -> str:
        return self.topic.split("/", 3)[3]


class McpOverMqtt:
    """One MCP client (mcp-client-id) on the broker, with every message it receives queued by topic kind."""

    def __init__(
        self, port: int, client_id: str | None = None, username: str | None = None, password: str | None = None
    ) -> None:
        self.client_id = client_id or "test-" + secrets.token_hex(4)
        self.port = port
        props = Properties(PacketTypes.CONNECT)
        props.UserProperty = [("MCP-COMPONENT-TYPE", "mcp-client"), ("MCP-META", "{}")]
        disconnected = json.dumps({"jsonrpc": "2.0", "method": "notifications/disconnected"})
        self.client = aiomqtt.Client(
            "127.0.0.1",
            port,
            identifier=self.client_id,
            username=username,
            password=password,
            protocol=aiomqtt.ProtocolVersion.V5,
            properties=props,
            will=aiomqtt.Will(f"$mcp-client/presence/{self.client_id}", disconnected, qos=1),
        )
        self.queues: dict[str, asyncio.Queue[Received]] = {
            k: asyncio.Queue() for k in ("presence", "rpc", "capability")
        }
        self.server: tuple[str, str] | None = None
        self._next = 0
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        await self.client.subscribe(f"$mcp-rpc/{self.client_id}/#", options=SubscribeOptions(qos=1, noLocal=True))
        await self.client.subscribe("$mcp-server/capability/#", qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.client.__aexit__(exc_type, exc, tb)

    async def _read(self) -> None:
        async for m in self.client.messages:
            props = getattr(m.properties, "UserProperty", None) or []
            r = Received(m.topic.value, bytes(m.payload or b""), bool(m.retain), dict(props))  # type: ignore[arg-type]
            kind = r.topic.split("/")[1] if r.topic.startswith("$mcp-server/") else "rpc"
            await self.queues[kind].put(r)

    async def next(self, kind: str, timeout: float = WAIT_S) -> Received:
        """The next message of a kind (presence, rpc, capability)."""
        return await asyncio.wait_for(self.queues[kind].get(), timeout)

    async def presence(self, server_filter: str = "#") -> Received:
        """Subscribe to server presence and return the first message (the retained ones come first)."""
        await self.client.subscribe(f"$mcp-server/presence/+/{server_filter}", qos=1)
        return await self.next("presence")

    async def publish(self, topic: str, payload: bytes | str, client_id: str | None = None) -> None:
        """Publish as an MCP client does (spec user properties; `client_id` may lie or be '' to omit it)."""
        props = Properties(PacketTypes.PUBLISH)
        cid = self.client_id if client_id is None else client_id
        props.UserProperty = [("MCP-COMPONENT-TYPE", "mcp-client")] + ([("MCP-MQTT-CLIENT-ID", cid)] if cid else [])
        await self.client.publish(topic, payload, qos=1, properties=props)

    @property
    def rpc_topic(self) -> str:
        assert self.server is not None
        return f"$mcp-rpc/{self.client_id}/{self.server[0]}/{self.server[1]}"

    async def send(self, msg: dict[str, Any]) -> None:
        """A message on the RPC topic."""
        await self.publish(self.rpc_topic, json.dumps(msg))

    async def send_raw(self, payload: bytes) -> None:
        """Any bytes on the RPC topic."""
        await self.publish(self.rpc_topic, payload)

    async def reply(self) -> dict[str, Any]:
        """The next message on our RPC topic, checked for the spec's user properties."""
        r = await self.next("rpc")
        assert self.server is not None and r.topic == self.rpc_topic
        # spec §User Property: every PUBLISH says who sent it.
        assert r.user_properties == {"MCP-COMPONENT-TYPE": "mcp-server", "MCP-MQTT-CLIENT-ID": self.server[0]}
        result: dict[str, Any] = r.json
        return result

    async def initialize(self, server_id: str, server_name: str, version: str = "2025-11-25") -> dict[str, Any]:
        """spec §Initialization: initialize on the control topic, answered on the RPC topic."""
        self.server = (server_id, server_name)
        self._next += 1
        msg = {
            "jsonrpc": "2.0",
            "id": self._next,
            "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
        }
        await self.publish(f"$mcp-server/{server_id}/{server_name}", json.dumps(msg))
        answer = await self.reply()
        assert answer["id"] == self._next, answer
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        result: dict[str, Any] = answer["result"]
        return result

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request on the RPC topic; its response (result or error) whole."""
        self._next += 1
        await self.send({"jsonrpc": "2.0", "id": self._next, "method": method, "params": params or {}})
        answer = await self.reply()
        assert answer["id"] == self._next, answer
        return answer
