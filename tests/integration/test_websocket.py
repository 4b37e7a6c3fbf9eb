"""MCP over WebSocket (/ws) on the emulated board: the `websockets` client, and hand-made frames."""

import json
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from wire import ws_frame, ws_read_frame, ws_read_message, ws_upgrade

from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import load_profile

V = "2026-07-28"
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}
MAX_MESSAGE = 8192


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedBoard]:
    """A board of this module's own. Its 6-8 KB messages need large free blocks; on the board the
    whole session shares, with every lazily loaded feature resident, the emulated heap (64-bit
    objects in the chip's byte budget) is sometimes too fragmented for them (issue 8)."""
    with EmulatedBoard(load_profile("esp32s3"), workdir=tmp_path_factory.mktemp("ws")) as b:
        yield b


def ws_connect(board: EmulatedBoard, **kw: Any) -> ClientConnection:
    headers = kw.pop("additional_headers", {"Authorization": f"Bearer {board.token}"})
    return connect(
        f"ws://127.0.0.1:{board.port}/ws", subprotocols=["mcp"], additional_headers=headers, open_timeout=10, **kw
    )


def call(ws: ClientConnection, method: str, params: dict[str, Any] | None = None, rid: int = 1) -> Any:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    ws.send(json.dumps(msg))
    return json.loads(ws.recv(timeout=10))


def test_handshake_era_session(board: EmulatedBoard) -> None:
    with ws_connect(board) as ws:
        assert ws.subprotocol == "mcp"
        client = {"name": "test", "version": "1"}
        init = call(ws, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client})
        assert init["result"]["protocolVersion"] == "2025-06-18"
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        tools = call(ws, "tools/list", rid=2)["result"]["tools"]
        assert {"system_info", "led"} <= {t["name"] for t in tools}  # and the profile's hardware tools
        info = call(ws, "tools/call", {"name": "system_info"}, rid=3)["result"]["structuredContent"]
        assert info["board"] == "esp32s3"
        assert call(ws, "ping", rid="p")["result"] == {}


def test_modern_era_on_the_same_socket(board: EmulatedBoard) -> None:
    with ws_connect(board) as ws:
        found = call(ws, "server/discover", {"_meta": ENVELOPE})["result"]
        assert found["supportedVersions"] == [V] and found["resultType"] == "complete"
        r = call(ws, "tools/call", {"name": "led", "arguments": {"state": "on"}, "_meta": ENVELOPE}, rid=2)
        assert r["result"]["structuredContent"]["on"] is True
        # Each message is classified on its own: without the envelope it is handshake-era,
        # where server/discover does not exist; a partial envelope is the modern ladder's -32602.
        assert call(ws, "server/discover", rid=3)["error"]["code"] == -32601
        bad = call(ws, "tools/list", {"_meta": {"io.modelcontextprotocol/protocolVersion": V}}, rid=4)
        assert bad["error"]["code"] == -32602


def test_protocol_errors_keep_the_connection(board: EmulatedBoard) -> None:
    with ws_connect(board) as ws:
        ws.send("{not json")
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32700
        ws.send("[1, 2]")
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32600
        assert call(ws, "ping")["result"] == {}


def test_fragmented_and_large_messages(board: EmulatedBoard) -> None:
    with ws_connect(board) as ws:
        text = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"})
        ws.send([text[:5], text[5:9], "", text[9:]])  # one message in four frames
        assert json.loads(ws.recv(timeout=10)) == {"jsonrpc": "2.0", "id": 7, "result": {}}
        # Larger than the board's 2 KiB connection buffer, in one frame and in fragments. (6 KB
        # messages are not always served on the default board yet: its heap fragments, issue 8.)
        ping = {"jsonrpc": "2.0", "id": 8, "method": "ping", "params": {"pad": "é" * 1600}}
        big = json.dumps(ping, ensure_ascii=False)
        assert len(big.encode()) < MAX_MESSAGE
        ws.send(big)
        assert json.loads(ws.recv(timeout=10))["id"] == 8
        ws.send([big[:1600], big[1600:]])
        assert json.loads(ws.recv(timeout=10))["id"] == 8


def test_ping_pong_and_close_handshake(board: EmulatedBoard) -> None:
    with ws_connect(board) as ws:
        assert ws.ping(b"are you there").wait(10)
        ws.close(1000, "bye")
        assert ws.close_code == 1000  # echoed by the board: the closing handshake completed


def _closed_with(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosedError) as info:
        ws.recv(timeout=10)
    assert info.value.rcvd is not None
    return info.value.rcvd.code


def test_oversized_message_closes_1009(board: EmulatedBoard) -> None:
    with ws_connect(board) as ws:
        ws.send("x" * (MAX_MESSAGE + 1))
        assert _closed_with(ws) == 1009
    with ws_connect(board) as ws:
        ws.send(["y" * 5000, "y" * 5000])  # each fragment fits, the message does not
        assert _closed_with(ws) == 1009
    with ws_connect(board) as ws:  # the board serves on
        assert call(ws, "ping")["result"] == {}


def test_binary_frames_close_1003(board: EmulatedBoard) -> None:
    with ws_connect(board) as ws:
        ws.send(b'{"jsonrpc":"2.0","id":1,"method":"ping"}')
        assert _closed_with(ws) == 1003


def test_auth_and_origin_apply_to_the_upgrade(board: EmulatedBoard) -> None:
    with pytest.raises(InvalidStatus) as info:
        ws_connect(board, additional_headers={})
    assert info.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as info:
        ws_connect(board, origin="http://evil.example")
    assert info.value.response.status_code == 403
    with ws_connect(board, origin=f"http://localhost:{board.port}") as ws:
        assert call(ws, "ping")["result"] == {}


# -- hand-made frames ---------------------------------------------------------------------------


def _close_code_after(board: EmulatedBoard, frames: bytes) -> int:
    s, head = ws_upgrade(board)
    with s:
        assert head.startswith(b"HTTP/1.1 101 ")
        s.sendall(frames)
        opcode, payload, _ = ws_read_frame(s, head.partition(b"\r\n\r\n")[2])
        assert opcode == 8, (opcode, payload)
        return int(struct.unpack("!H", payload[:2])[0])


def test_unmasked_client_frame_closes_1002(board: EmulatedBoard) -> None:
    assert _close_code_after(board, ws_frame(1, b'{"jsonrpc":"2.0","id":1,"method":"ping"}', mask=None)) == 1002


def test_bad_frame_sequences_close_1002(board: EmulatedBoard) -> None:
    assert _close_code_after(board, ws_frame(0, b"stray continuation")) == 1002
    assert _close_code_after(board, ws_frame(1, b"{", fin=False) + ws_frame(1, b"}")) == 1002
    assert _close_code_after(board, ws_frame(9, b"fragmented ping", fin=False)) == 1002
    assert _close_code_after(board, ws_frame(3, b"reserved opcode")) == 1002
    assert _close_code_after(board, bytes([0xC1, 0x80]) + b"\0\0\0\0") == 1002  # RSV1 without an extension


def test_frame_length_is_checked_before_reading(board: EmulatedBoard) -> None:
    # A 64-bit length the board must not try to allocate or wait for.
    header = struct.pack("!BBQ", 0x81, 0xFF, 1 << 40) + b"\1\2\3\4"
    assert _close_code_after(board, header) == 1009


def test_control_frames_between_fragments(board: EmulatedBoard) -> None:
    s, head = ws_upgrade(board)
    with s:
        text = b'{"jsonrpc":"2.0","id":"f","method":"ping"}'
        s.sendall(ws_frame(1, text[:10], fin=False) + ws_frame(9, b"hi") + ws_frame(0, text[10:]))
        opcode, payload, rest = ws_read_frame(s, head.partition(b"\r\n\r\n")[2])
        assert (opcode, payload) == (10, b"hi")  # the pong first, then the reply
        opcode, payload, _ = ws_read_frame(s, rest)
        assert opcode == 1 and json.loads(payload) == {"jsonrpc": "2.0", "id": "f", "result": {}}


def test_not_an_upgrade(board: EmulatedBoard) -> None:
    s, head = ws_upgrade(board, "Sec-WebSocket-Version: 8\r\n")
    s.close()
    # A repeated version header joins to "13, 8": not 13, so 426 naming the version served.
    assert head.startswith(b"HTTP/1.1 426") and b"Sec-WebSocket-Version: 13" in head


def test_a_long_result_is_not_interleaved_with_other_messages(board: EmulatedBoard) -> None:
    """Requests served at once on one socket: the long tools/list result goes out as a fragmented
    message, and the other replies wait for its last fragment (RFC 6455 section 5.4)."""
    s, head = ws_upgrade(board)
    with s:
        listing = {"jsonrpc": "2.0", "id": "list", "method": "tools/list", "params": {"_meta": ENVELOPE}}
        frames = ws_frame(1, json.dumps(listing).encode())
        for i in range(3):
            frames += ws_frame(1, json.dumps({"jsonrpc": "2.0", "id": i, "method": "ping"}).encode())
        s.sendall(frames)
        rest = head.partition(b"\r\n\r\n")[2]
        replies = {}
        while len(replies) < 4:
            opcode, payload, count, rest = ws_read_message(s, rest)
            assert opcode == 1, (opcode, payload)
            reply = json.loads(payload)
            replies[reply["id"]] = (reply, count)
        tools, count = replies["list"]
        assert count > 1  # sent in fragments (else this test shows nothing)
        assert {"system_info", "led"} <= {t["name"] for t in tools["result"]["tools"]}
        assert all(replies[i][0]["result"] == {} for i in range(3))
