"""`boardmcp bridge`: stdio MCP for desktop clients (Claude Desktop, Cursor, ...), forwarded to a
board over Streamable HTTP, WebSocket or the serial console.

The bridge moves JSON-RPC messages and knows only what each link needs to carry them: on HTTP, the
session id and routing headers the board checks, SSE replies, and the session's GET stream; on
serial, which console lines are JSON-RPC (prints and REPL output are skipped).

    link = HTTPLink("http://192.168.1.23/mcp", token="s3cret")
    sys.exit(asyncio.run(run_bridge(link)))
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx2
import serial
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
_K_VERSION = "io.modelcontextprotocol/protocolVersion"
# Which params field the Mcp-Name header mirrors (revision 2026-07-28).
_NAME_FIELD = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_HEADER_SAFE = re.compile(r"[\x20-\x7E]*")
INTERNAL_ERROR = -32603
RequestId = str | int | None  # JSON-RPC ids (None: a reply that could not name its request)


class BridgeError(RuntimeError):
    """The board could not be reached."""


class Link(Protocol):
    """One way to a board: send a client message, receive the board's messages."""

    async def open(self) -> None:
        """Connect (raises BridgeError when the board cannot be reached)."""

    async def send(self, line: bytes) -> None:
        """Forward one JSON-RPC message from the client."""

    def messages(self) -> AsyncIterator[bytes]:
        """The board's JSON-RPC messages, one per item, until the link closes."""
        ...

    async def close(self) -> None:
        """Disconnect."""


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) and msg.get("jsonrpc") == "2.0" else None


def _error(rid: RequestId, message: str, code: int = INTERNAL_ERROR) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}).encode()


def with_path(url: str, path: str) -> str:
    """The URL as given, or with `path` when it names no path (http://board -> http://board/mcp)."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        parts = parts._replace(path=path)
    return urlunsplit(parts)


# -- WebSocket ---------------------------------------------------------------------------------


class WebSocketLink:
    """MCP over the board's WebSocket (`/ws`, subprotocol `mcp`): one message per text frame."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = with_path(url, "/ws")
        self.token = token
        self._ws: ClientConnection | None = None

    async def open(self) -> None:
        """Open the WebSocket, with the bearer token on the upgrade request."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            self._ws = await ws_connect(
                self.url, subprotocols=[Subprotocol("mcp")], additional_headers=headers, max_size=None
            )
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise BridgeError(f"cannot open {self.url}: {exc}") from exc

    async def send(self, line: bytes) -> None:
        """One text frame per message."""
        assert self._ws is not None
        await self._ws.send(line.decode())

    async def messages(self) -> AsyncIterator[bytes]:
        """Each text frame the board sends."""
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed):
            async for frame in self._ws:
                yield frame.encode() if isinstance(frame, str) else frame

    async def close(self) -> None:
        """The closing handshake."""
        if self._ws is not None:
            await self._ws.close()


# -- serial ------------------------------------------------------------------------------------


class SerialLink:
    """MCP as JSON-RPC lines on the board's serial console; other console output is skipped."""

    def __init__(self, port: str, baudrate: int = 115200) -> None:
        self.port = port
        self.baudrate = baudrate
        self._serial: serial.Serial | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None

    async def open(self) -> None:
        """Open the port without toggling DTR/RTS (which resets many ESP32 boards)."""
        ser = serial.Serial()
        ser.port = self.port
        ser.baudrate = self.baudrate
        ser.timeout = 0.2
        ser.dtr = False
        ser.rts = False
        try:
            ser.open()
        except serial.SerialException as exc:
            raise BridgeError(f"cannot open {self.port}: {exc}") from exc
        ser.reset_input_buffer()
        self._serial = ser
        loop = asyncio.get_running_loop()
        self._reader = threading.Thread(target=self._read, args=(loop,), name="boardmcp-serial", daemon=True)
        self._reader.start()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        # A thread: pyserial blocks. Whole lines only; anything that is not JSON-RPC is console chatter.
        assert self._serial is not None
        partial = b""
        try:
            while not self._stop.is_set():
                partial += self._serial.readline()
                if not partial.endswith(b"\n"):
                    continue
                line, partial = partial.strip(), b""
                if line.startswith(b"{") and _parse(line) is not None:
                    loop.call_soon_threadsafe(self._queue.put_nowait, line)
        except (OSError, serial.SerialException):
            pass
        loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def send(self, line: bytes) -> None:
        """One message, one line."""
        assert self._serial is not None
        await asyncio.to_thread(self._serial.write, line + b"\n")

    async def messages(self) -> AsyncIterator[bytes]:
        """The JSON-RPC lines the board prints."""
        while (line := await self._queue.get()) is not None:
            yield line

    async def close(self) -> None:
        """Stop reading and close the port."""
        self._stop.set()
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join)  # it notices within the read timeout
        if self._serial is not None:
            self._serial.close()


# -- Streamable HTTP ---------------------------------------------------------------------------


def encode_header_value(value: str) -> str:
    """An MCP header value: verbatim when it is plain printable ASCII, else `=?base64?...?=`."""
    if _HEADER_SAFE.fullmatch(value) and value == value.strip() and not value.startswith("=?base64?"):
        return value
    return f"=?base64?{base64.b64encode(value.encode()).decode()}?="


class HTTPLink:
    """MCP over Streamable HTTP: a POST per message, JSON or SSE back; the handshake era's
    session (Mcp-Session-Id) and its GET stream; the routing headers of revision 2026-07-28."""

    def __init__(self, url: str, token: str | None = None, log: Callable[[str], None] = print) -> None:
        self.url = with_path(url, "/mcp")
        self.token = token
        self._log = log
        self._http: httpx2.AsyncClient | None = None
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._tasks: dict[RequestId, asyncio.Task[None]] = {}  # request id -> its POST
        self._session: str | None = None
        self._version: str | None = None  # negotiated (handshake) or last enveloped (modern)
        self._param_headers: dict[str, dict[str, str]] = {}  # tool -> {argument: Mcp-Param name}
        self._stream: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Create the HTTP client (connections open per request)."""
        headers = {"Accept": "application/json, text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=None))

    async def send(self, line: bytes) -> None:
        """POST one message; a request's reply arrives on messages() when its POST answers."""
        msg = _parse(line)
        if msg is None:
            await self._out.put(_error(None, "Parse error: not a JSON-RPC message", -32700))
            return
        method = msg.get("method")
        params: dict[str, Any] = msg["params"] if isinstance(msg.get("params"), dict) else {}
        modern = isinstance(params.get("_meta"), dict) and _K_VERSION in params["_meta"]
        if method == "notifications/cancelled" and self._session is None:
            # Revision 2026-07-28 over HTTP: closing the request's stream is the cancellation.
            task = self._tasks.get(params.get("requestId"))
            if task is not None:
                task.cancel()
            return
        headers = self._headers(msg, params, modern)
        if method is not None and "id" in msg:
            rid = msg["id"]
            self._tasks[rid] = asyncio.create_task(self._request(line, headers, rid, method))
        else:
            try:
                await self._post(line, headers, None, None)
            except httpx2.HTTPError as exc:
                self._log(f"could not deliver a notification: {exc}")

    def _headers(self, msg: dict[str, Any], params: dict[str, Any], modern: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if modern:
            method = msg["method"]
            self._version = params["_meta"][_K_VERSION]
            headers["MCP-Protocol-Version"] = str(self._version)
            headers["Mcp-Method"] = method
            field = _NAME_FIELD.get(method)
            if field is not None and isinstance(params.get(field), str):
                headers["Mcp-Name"] = encode_header_value(params[field])
            args = params.get("arguments")
            if method == "tools/call" and isinstance(args, dict):
                for arg, name in self._param_headers.get(params.get("name", ""), {}).items():
                    value = args.get(arg)
                    if value is not None:
                        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
                        headers["Mcp-Param-" + name] = encode_header_value(text)
        elif self._session is not None:
            headers["Mcp-Session-Id"] = self._session
            if self._version is not None:
                headers["MCP-Protocol-Version"] = self._version
        elif self._version is not None and self._version not in HANDSHAKE_VERSIONS:
            headers["MCP-Protocol-Version"] = self._version  # a modern-era notification
        return headers

    async def _request(self, line: bytes, headers: dict[str, str], rid: RequestId, method: str) -> None:
        try:
            await self._post(line, headers, rid, method)
        except asyncio.CancelledError:
            pass  # cancelled by the client: no reply is due
        except httpx2.HTTPError as exc:
            await self._out.put(_error(rid, f"Board unreachable over HTTP: {exc}"))
        finally:
            self._tasks.pop(rid, None)

    async def _post(self, line: bytes, headers: dict[str, str], rid: RequestId, method: str | None) -> None:
        assert self._http is not None
        async with self._http.stream("POST", self.url, content=line, headers=headers) as resp:
            if method == "initialize" and "mcp-session-id" in resp.headers:
                self._session = resp.headers["mcp-session-id"]
            replied = False
            async for body in self._bodies(resp):
                msg = _parse(body)
                if msg is None:
                    continue
                if rid is not None and msg.get("id") == rid and ("result" in msg or "error" in msg):
                    replied = True
                    self._learn(method, msg)
                elif rid is not None and "id" in msg and msg["id"] is None and "error" in msg:
                    # A refusal that could not name the request (401, 403, ...): name it.
                    msg["id"] = rid
                    msg["error"]["message"] = f"HTTP {resp.status_code}: {msg['error'].get('message', '')}"
                    replied = True
                    await self._out.put(json.dumps(msg).encode())
                    continue
                await self._out.put(body)
            if rid is not None and not replied:
                await self._out.put(_error(rid, f"HTTP {resp.status_code} from the board, without a reply"))

    async def _bodies(self, resp: httpx2.Response) -> AsyncIterator[bytes]:
        # The JSON-RPC messages of one HTTP response: a JSON body, or the data of each SSE event.
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "text/event-stream":
            data: list[str] = []
            async for text in resp.aiter_lines():
                if text.startswith("data:"):
                    data.append(text[5:].removeprefix(" "))
                elif not text and data:
                    yield "\n".join(data).encode()
                    data = []
        elif ctype == "application/json":
            body = await resp.aread()
            if body:
                yield body

    def _learn(self, method: str | None, msg: dict[str, Any]) -> None:
        result = msg.get("result")
        if not isinstance(result, dict):
            return
        if method == "initialize":
            self._version = result.get("protocolVersion")
            if self._session is not None and self._stream is None:
                self._stream = asyncio.create_task(self._get_stream())
        elif method == "tools/list":
            # Arguments the board wants mirrored in Mcp-Param-* headers (x-mcp-header).
            for tool in result.get("tools", []):
                props = (tool.get("inputSchema") or {}).get("properties") or {}
                found = {k: v["x-mcp-header"] for k, v in props.items() if isinstance(v, dict) and "x-mcp-header" in v}
                self._param_headers[tool.get("name", "")] = found

    async def _get_stream(self) -> None:
        # The handshake session's standalone stream: notifications the board sends unasked.
        assert self._http is not None and self._session is not None
        headers = {"Mcp-Session-Id": self._session, "Accept": "text/event-stream"}
        if self._version:
            headers["MCP-Protocol-Version"] = self._version
        with contextlib.suppress(httpx2.HTTPError):
            async with self._http.stream("GET", self.url, headers=headers) as resp:
                if resp.status_code != 200:
                    return
                async for data in self._bodies(resp):
                    await self._out.put(data)

    async def messages(self) -> AsyncIterator[bytes]:
        """Replies and notifications, as their POSTs and the GET stream deliver them."""
        while (data := await self._out.get()) is not None:
            yield data

    async def close(self) -> None:
        """End the session (DELETE) and the requests in flight."""
        for task in [*self._tasks.values(), *([self._stream] if self._stream else [])]:
            task.cancel()
        if self._http is not None:
            if self._session is not None:
                with contextlib.suppress(httpx2.HTTPError):
                    await self._http.delete(self.url, headers={"Mcp-Session-Id": self._session})
            await self._http.aclose()
        await self._out.put(None)


# -- the bridge --------------------------------------------------------------------------------


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]) -> None:
    # A thread: reading a pipe blocks. EOF (the client closed its end) is None.
    for line in sys.stdin.buffer:
        if line.strip():
            loop.call_soon_threadsafe(queue.put_nowait, line.strip())
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def run_bridge(link: Link, log: Callable[[str], None] = lambda _m: None) -> int:
    """Forward stdin lines to the board and the board's messages to stdout until either ends.
    Returns 0 when the client closed stdin, 1 when the board went away."""
    try:
        await link.open()
    except BridgeError as exc:
        log(str(exc))
        return 1
    loop = asyncio.get_running_loop()
    incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
    threading.Thread(target=_stdin_lines, args=(loop, incoming), name="boardmcp-stdin", daemon=True).start()

    async def to_board() -> None:
        while (line := await incoming.get()) is not None:
            await link.send(line)

    async def to_client() -> None:
        out = sys.stdout.buffer
        async for data in link.messages():
            out.write(data.replace(b"\n", b" ") + b"\n")  # stdio framing: no newline inside a message
            out.flush()

    client = asyncio.create_task(to_board())
    board = asyncio.create_task(to_client())
    done, _ = await asyncio.wait({client, board}, return_when=asyncio.FIRST_COMPLETED)
    status = 0 if client in done else 1
    if status:
        log("the board closed the connection")
    client.cancel()
    await link.close()
    with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
        await asyncio.wait_for(board, 5)
    for task in (client, board):
        if task.done() and not task.cancelled() and task.exception() is not None:
            log(f"bridge failed: {task.exception()}")
            return 1
    return status
