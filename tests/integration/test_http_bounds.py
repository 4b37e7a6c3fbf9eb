"""Bounds over HTTP, each with a clear refusal, after which the board keeps serving:
connections, GET streams, listen streams, slow and idle clients."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wire import Stream, open_session, post, raw_exchange

from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import load_profile

V = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}
MAX_CONNECTIONS = 8  # firmware/boardmcp/transport/http.py
MAX_STREAMS = 3
MAX_LISTENERS = 3  # firmware/boardmcp/server.py


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedBoard]:
    """A board with short timeouts, so slow and idle clients are cut off quickly."""
    options = {"request_timeout_ms": 800, "idle_timeout_ms": 1500}
    workdir: Path = tmp_path_factory.mktemp("bounds")
    with EmulatedBoard(load_profile("esp32s3"), workdir=workdir, http_options=options) as b:
        yield b


def serves(board: EmulatedBoard) -> bool:
    body = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": META}}
    return post(board, body, {"MCP-Protocol-Version": V, "Mcp-Method": "server/discover"})[0] == 200


def test_connections_beyond_the_limit_get_503(board: EmulatedBoard) -> None:
    held = [socket.create_connection(("127.0.0.1", board.port)) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        status, headers, reply = raw_exchange(board.port, b"GET /mcp HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert status == 503 and headers["connection"] == "close" and reply["error"]["message"]
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)
    assert serves(board)


def test_get_streams_are_bounded(board: EmulatedBoard) -> None:
    streams = []
    try:
        for _ in range(MAX_STREAMS):
            s = Stream(board).send(None, open_session(board), method="GET")
            assert s.status == 200
            streams.append(s)
        extra = Stream(board).send(None, open_session(board), method="GET")
        assert extra.status == 503 and extra.headers["retry-after"]
        extra.close()
        assert serves(board)
    finally:
        for s in streams:
            s.close()


def test_listen_streams_are_bounded(board: EmulatedBoard) -> None:
    headers = {"MCP-Protocol-Version": V, "Mcp-Method": "subscriptions/listen"}

    def listen(rid: int) -> Stream:
        body = {
            "jsonrpc": "2.0",
            "id": rid,
            "method": "subscriptions/listen",
            "params": {"notifications": {"resourceSubscriptions": []}, "_meta": META},
        }
        return Stream(board).send(body, headers)

    streams = [listen(i) for i in range(MAX_LISTENERS)]
    try:
        for s in streams:
            assert s.event()["method"] == "notifications/subscriptions/acknowledged"
        extra = listen(99)
        assert extra.status == 400 and extra.json()["error"]["code"] == -32600
        extra.close()
    finally:
        for s in streams:
            s.close()
    time.sleep(0.3)  # the board notices the closed streams and frees their slots
    again = listen(100)
    assert again.event()["method"] == "notifications/subscriptions/acknowledged"
    again.close()


def test_slow_client_is_cut_off_while_others_are_served(board: EmulatedBoard) -> None:
    slow = socket.create_connection(("127.0.0.1", board.port), timeout=5)
    slow.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    while time.monotonic() - started < 0.5:
        assert serves(board)
        slow.sendall(b"X")  # a byte at a time, never finishing the head
        time.sleep(0.1)
    slow.settimeout(5)
    data = b""
    try:
        while chunk := slow.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    slow.close()
    assert data == b""  # dropped at the request deadline, without an answer
    assert serves(board)


def test_idle_keep_alive_connection_is_closed(board: EmulatedBoard) -> None:
    s = Stream(board, timeout=5)
    body = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": META}}
    s.send(body, {"MCP-Protocol-Version": V, "Mcp-Method": "server/discover"})
    assert s.status == 200 and s.json()["result"]
    time.sleep(2)
    assert s.closed()
    s.close()
