"""A blocking MCP client for the conformance checks, over the bridge's links (host_tools/bridge.py):
the same `request`/`notify` over Streamable HTTP, WebSocket and serial, in either protocol era.

    with Client.open(HTTPLink(url, token), "http", "modern") as c:
        tools = c.request("tools/list")["result"]["tools"]

The links carry the era's transport details (session id, routing headers, SSE, console chatter);
this class adds the era's envelope (`_meta` on every request, or the initialize handshake) and
matches replies to requests. Each client runs its own event loop, only while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any, Self

from host_tools.bridge import Link

MODERN = "2026-07-28"
HANDSHAKE = "2025-11-25"
ERAS = ("handshake", "modern")
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
CLIENT_INFO = {"name": "boardmcp-conformance", "version": "1"}
REPLY_TIMEOUT_S = 15.0


class Client:
    """One MCP client connection to the target: `transport` (http, ws, serial) in `era`."""

    def __init__(self, link: Link, transport: str, era: str) -> None:
        self.link = link
        self.transport = transport
        self.era = era
        self.notifications: list[dict[str, Any]] = []  # what the board sent unasked, in order
        self.initialize_result: dict[str, Any] | None = None
        self.broken = False  # the link closed or a reply never came: do not reuse this client
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, link: Link, transport: str, era: str) -> Self:
        """Connect; in the handshake era also initialize and send notifications/initialized."""
        client = cls(link, transport, era)
        try:
            client._run(client._open())
            if era == "handshake":
                params = {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": CLIENT_INFO}
                reply = client.request("initialize", params)
                assert "result" in reply, f"initialize over {transport} failed: {reply}"
                client.initialize_result = reply["result"]
                client.notify("notifications/initialized")
        except BaseException:
            client.close()  # a half-open client would hold the board's connections and heap
            raise
        return client

    async def _open(self) -> None:
        await self.link.open()
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        # Every message the link delivers, decoded, into one queue; None when the link ends.
        async for data in self.link.messages():
            with contextlib.suppress(ValueError):
                msg = json.loads(data)
                if isinstance(msg, dict):
                    await self._inbox.put(msg)
        await self._inbox.put(None)

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """`params` as this era sends them: with the `_meta` envelope in the modern era."""
        params = dict(params or {})
        if self.era == "modern":
            params["_meta"] = {**ENVELOPE, **params.get("_meta", {})}
        return params

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request; return the board's reply to it (the whole message: result or error).
        Nothing is retried: a board that runs out of heap on a conformance check fails it."""
        rid = next(self._ids)
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": self.params(params)}
        return self._run(self._exchange(json.dumps(msg).encode(), rid))

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification (no reply is due)."""
        msg = {"jsonrpc": "2.0", "method": method, "params": self.params(params)}
        self._run(self.link.send(json.dumps(msg).encode()))

    def send_raw(self, line: bytes) -> dict[str, Any]:
        """Send bytes as one message (on WebSocket and serial only: the HTTP link checks what it
        sends) and return the next reply the board makes that names no other request."""
        assert self.transport != "http", "raw bytes over HTTP: use the HTTP checks' own requests"
        return self._run(self._exchange(line, None))

    async def _exchange(self, line: bytes, rid: int | None) -> dict[str, Any]:
        try:
            await self.link.send(line)
            return await self._reply(rid)
        except BaseException:
            self.broken = True
            raise

    async def _reply(self, rid: int | None) -> dict[str, Any]:
        while True:
            msg = await asyncio.wait_for(self._inbox.get(), REPLY_TIMEOUT_S)
            if msg is None:
                raise ConnectionError(f"the board closed the {self.transport} link")
            if ("result" in msg or "error" in msg) and msg.get("id") == rid:
                return msg
            if rid is None and "error" in msg:
                return msg  # an error for a line that had no usable id
            self.notifications.append(msg)

    def close(self) -> None:
        """Disconnect (an HTTP session is ended with DELETE) and drop the loop."""
        try:
            self._run(self.link.close())
            if self._pump is not None:
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    self._run(self._pump)
        finally:
            self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
