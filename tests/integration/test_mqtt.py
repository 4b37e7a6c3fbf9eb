"""MCP over MQTT 5 on emulated boards, through a real Mosquitto started by the tests: presence,
will, the RPC topics and user properties of EMQX's MCP-over-MQTT specification, MCP over them,
bad input, and a broker that goes away."""

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host_tools.emulator.runner import EmulatedBoard, board_mac, free_port
from host_tools.gateway.broker import Mosquitto
from host_tools.profiles import load_profile
from tests.integration.mqtt_wire import McpOverMqtt
from tests.integration.wire import open_session, post

HANDSHAKE_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as b:
        yield b


@pytest.fixture(scope="module")
def mqtt_board(broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedBoard]:
    """A board with only a broker configured: server-id and server-name are its defaults. The esp32,
    the tightest heap, so its requests take turns (Server.turn) on MQTT as on every transport."""
    workdir = tmp_path_factory.mktemp("mqtt-board")
    with EmulatedBoard(load_profile("esp32"), workdir=workdir, mqtt={"broker": "127.0.0.1", "port": broker.port}) as b:
        yield b


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _defaults(board: EmulatedBoard) -> tuple[str, str]:
    mac = board_mac(board.profile.name).replace(":", "")
    return "boardmcp-" + mac, f"boardmcp/boardmcp-{mac[-4:]}"


async def _connected(port: int, board: EmulatedBoard) -> McpOverMqtt:
    c = McpOverMqtt(port)
    await c.__aenter__()
    server_id, server_name = _defaults(board)
    while True:
        p = await c.presence()
        if p.server_id == server_id:
            await c.initialize(server_id, server_name)
            return c


def test_presence_is_retained_with_the_spec_shape(broker: Mosquitto, mqtt_board: EmulatedBoard) -> None:
    async def check() -> None:
        async with McpOverMqtt(broker.port) as c:
            p = await c.presence()
            server_id, server_name = _defaults(mqtt_board)
            assert (p.server_id, p.server_name) == (server_id, server_name)
            assert p.retain  # a late subscriber got it: retained
            assert p.user_properties == {"MCP-COMPONENT-TYPE": "mcp-server", "MCP-MQTT-CLIENT-ID": server_id}
            online = p.json
            assert online["jsonrpc"] == "2.0" and online["method"] == "notifications/server/online"
            assert "id" not in online
            params = online["params"]
            assert params["server_name"] == server_name
            assert "system_info" in params["description"] and "led" in params["description"]
            assert params["meta"]["implementation"] == "boardmcp"

    run(check())
    assert f"mqtt: serving MCP as {_defaults(mqtt_board)[1]}" in mqtt_board.console_log


@pytest.mark.parametrize("version", HANDSHAKE_VERSIONS)
def test_initialize_list_and_call(broker: Mosquitto, mqtt_board: EmulatedBoard, version: str) -> None:
    headers = open_session(mqtt_board, version)
    status, _, reply = post(mqtt_board, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers)
    assert status == 200
    over_http = reply["result"]["tools"]

    async def check() -> None:
        async with McpOverMqtt(broker.port) as c:
            p = await c.presence()
            init = await c.initialize(p.server_id, p.server_name, version)
            assert init["protocolVersion"] == version
            assert init["serverInfo"]["name"] == "boardmcp" and "tools" in init["capabilities"]
            listed = (await c.request("tools/list"))["result"]["tools"]
            # The same list as over HTTP, byte for byte once parsed: long enough (over 4 tools, some
            # KB) that the board counts it and then serialises it piece by piece onto the socket.
            assert listed == over_http
            assert len(listed) > 4 and len(json.dumps(listed)) > 3 * 1024
            info = (await c.request("tools/call", {"name": "system_info", "arguments": {}}))["result"]
            assert not info.get("isError") and info["structuredContent"]["chip"] == "esp32"
            led = (await c.request("tools/call", {"name": "led", "arguments": {"state": "on"}}))["result"]
            assert led["structuredContent"]["on"] is True
            bad = (await c.request("tools/call", {"name": "led", "arguments": {"state": "blink"}}))["result"]
            assert bad["isError"] is True
            assert (await c.request("ping"))["result"] == {}
            assert (await c.request("no/such/method"))["error"]["code"] == -32601

    run(check())


def test_requests_in_flight_at_once(broker: Mosquitto, mqtt_board: EmulatedBoard) -> None:
    async def check() -> None:
        c = await _connected(broker.port, mqtt_board)
        try:
            # Four requests before any answer (the board serves up to 4 per client at once): long
            # results and short ones share the socket, each answer one whole message.
            for rid in (101, 102, 103, 104):
                await c.send({"jsonrpc": "2.0", "id": rid, "method": "tools/list" if rid % 2 else "ping"})
            answers = {a["id"]: a for a in [await c.reply() for _ in range(4)]}
            assert sorted(answers) == [101, 102, 103, 104]
            assert answers[101]["result"] == answers[103]["result"] and len(answers[101]["result"]["tools"]) > 4
            assert answers[102]["result"] == answers[104]["result"] == {}
        finally:
            await c.__aexit__(None, None, None)

    run(check())


def test_answers_wait_their_turn_when_the_broker_takes_one_message_at_a_time(tmp_path: Path) -> None:
    # Receive Maximum 1: each answer waits for the PUBACK of the one before, holding a copy of
    # itself while other requests use the shared serialisation stream.
    with Mosquitto(tmp_path / "broker", options=("max_inflight_messages 1",)) as broker:
        mqtt = {"broker": "127.0.0.1", "port": broker.port, "server_id": "one-1", "server_name": "lab/one-1"}
        with EmulatedBoard(load_profile("esp32s3"), workdir=tmp_path / "board", mqtt=mqtt) as board:

            async def check() -> None:
                async with McpOverMqtt(broker.port) as c:
                    p = await c.presence("lab/one-1")
                    await c.initialize(p.server_id, p.server_name)
                    for rid in range(1, 5):
                        params = {"name": "system_info", "arguments": {}}
                        await c.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params})
                    answers = {a["id"]: a["result"] for a in [await c.reply() for _ in range(4)]}
                    assert sorted(answers) == [1, 2, 3, 4]
                    assert all(a["structuredContent"]["chip"] == "esp32s3" for a in answers.values())
                    assert len((await c.request("tools/list"))["result"]["tools"]) > 4

            run(check())
            assert "Traceback" not in board.console_log


def test_bad_messages_get_json_rpc_errors_and_the_board_serves_on(broker: Mosquitto, mqtt_board: EmulatedBoard) -> None:
    async def check() -> None:
        c = await _connected(broker.port, mqtt_board)
        try:
            await c.send_raw(b"{not json")
            assert (await c.reply())["error"]["code"] == -32700
            await c.send_raw(b"\xff\xfe\x00garbage")
            assert (await c.reply())["error"]["code"] == -32700
            await c.send_raw(json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).encode())
            assert (await c.reply())["error"]["code"] == -32600
            await c.send_raw(b'{"jsonrpc": "2.0", "id": 9, "method": 5}')
            assert (await c.reply())["error"]["code"] == -32600
            # Larger than the board takes: the broker drops it for the board (Maximum Packet Size).
            await c.send({"jsonrpc": "2.0", "id": 10, "method": "ping", "params": {"pad": "x" * 20000}})
            # An initialize without MCP-MQTT-CLIENT-ID names no client to answer: ignored.
            server_id, server_name = c.server or ("", "")
            await c.publish(f"$mcp-server/{server_id}/{server_name}", b'{"jsonrpc":"2.0","id":1}', client_id="")
            # A client that never initialized: ignored.
            await c.publish(f"$mcp-rpc/stranger/{server_id}/{server_name}", b'{"jsonrpc":"2.0","id":1,"method":"ping"}')
            answer = await c.request("ping")  # the next answer is to this: nothing else was answered
            assert answer["result"] == {}
        finally:
            await c.__aexit__(None, None, None)

    run(check())
    _http_serves(mqtt_board)


def _http_serves(board: EmulatedBoard) -> None:
    # The board's HTTP endpoint answers beside MQTT.
    open_session(board)


def test_a_client_that_says_disconnected_is_forgotten(broker: Mosquitto, mqtt_board: EmulatedBoard) -> None:
    async def check() -> None:
        c = await _connected(broker.port, mqtt_board)
        try:
            # spec §Client Disconnect: "disconnected" on the client's presence topic.
            await c.publish(
                f"$mcp-client/presence/{c.client_id}", b'{"jsonrpc":"2.0","method":"notifications/disconnected"}'
            )
            await c.send({"jsonrpc": "2.0", "id": 77, "method": "ping"})
            with pytest.raises(TimeoutError):
                await c.next("rpc", timeout=2.0)  # unsubscribed and forgotten: no answer
            server_id, server_name = c.server or ("", "")
            await c.initialize(server_id, server_name)  # and welcome again
            assert (await c.request("ping"))["result"] == {}
        finally:
            await c.__aexit__(None, None, None)

    run(check())


def test_the_least_recently_active_client_is_de_initialized_for_a_fifth(
    broker: Mosquitto, mqtt_board: EmulatedBoard
) -> None:
    async def check() -> None:
        clients = [await _connected(broker.port, mqtt_board) for _ in range(5)]
        try:
            # spec §Server Disconnect: the board tells the client it drops, on its RPC topic.
            note = await clients[0].reply()
            assert note == {"jsonrpc": "2.0", "method": "notifications/disconnected"}
            for c in clients[1:]:
                assert (await c.request("ping"))["result"] == {}
        finally:
            for c in clients:
                await c.__aexit__(None, None, None)

    run(check())


def test_user_and_password(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker", users={"board": "s3cret", "probe": "probe"}) as broker:
        mqtt = {"broker": "127.0.0.1", "port": broker.port, "username": "board", "server_name": "lab/auth"}
        with (
            EmulatedBoard(load_profile("esp32c3"), workdir=tmp_path / "ok", mqtt={**mqtt, "password": "s3cret"}),
            EmulatedBoard(load_profile("esp32"), workdir=tmp_path / "bad", mqtt={**mqtt, "password": "no"}) as bad,
        ):

            async def check() -> None:
                async with McpOverMqtt(broker.port, username="probe", password="probe") as c:
                    p = await c.presence("lab/auth")
                    await c.initialize(p.server_id, p.server_name)

            run(check())
            _wait_for(lambda: "broker refused the connection" in bad.console_log)
            assert "mqtt: serving MCP" not in bad.console_log


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def test_will_clears_presence_when_the_board_dies(broker: Mosquitto, tmp_path: Path) -> None:
    mqtt = {"broker": "127.0.0.1", "port": broker.port, "server_id": "dies-1", "server_name": "lab/dies-1"}
    board = EmulatedBoard(load_profile("esp32c3"), workdir=tmp_path, mqtt=mqtt)
    board.start()

    async def check() -> None:
        async with McpOverMqtt(broker.port) as c:
            p = await c.presence("lab/dies-1")
            assert p.payload and p.retain
            board.stop()  # the VM is killed: no DISCONNECT, so the broker publishes the will
            gone = await c.next("presence")
            assert gone.topic == p.topic and gone.payload == b""
        async with McpOverMqtt(broker.port) as late:
            await late.client.subscribe("$mcp-server/presence/+/lab/dies-1", qos=1)
            with pytest.raises(TimeoutError):
                await late.next("presence", timeout=2.0)  # nothing retained any more

    try:
        run(check())
    finally:
        board.stop()


def test_the_board_reconnects_after_the_broker_restarts(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        mqtt = {"broker": "127.0.0.1", "port": broker.port, "server_id": "re-1", "server_name": "lab/re-1"}
        with EmulatedBoard(load_profile("esp32c3"), workdir=tmp_path / "board", mqtt=mqtt) as board:
            _wait_for(lambda: board.console_log.count("mqtt: serving MCP") == 1)
            broker.restart()  # retained presence is gone with the old broker
            _wait_for(lambda: board.console_log.count("mqtt: serving MCP") == 2)

            async def check() -> None:
                async with McpOverMqtt(broker.port) as c:
                    p = await c.presence("lab/re-1")
                    await c.initialize(p.server_id, p.server_name)
                    assert (await c.request("ping"))["result"] == {}

            run(check())


class _BrokenBroker:
    """Not a broker: a loopback peer that answers each CONNECT with `reply`, then closes. It counts
    connections, so a test sees the board retry."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                conn.settimeout(5)
                try:
                    conn.recv(4096)
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    "reply",
    [
        b"\x20\xff\xff\xff\xff\xff",  # a remaining length over four bytes
        b"\x20\x03\x00\x00\x09",  # CONNACK whose properties overrun it
        b"\x20\x05\x00\x00\x02\x99\x00",  # an unknown property
        b"\x30\x02\x00\x40",  # PUBLISH instead of CONNACK, its topic past its end
        b"\x20\xfe\xff\x03",  # claims 65534 bytes, then closes
    ],
    ids=["length", "overrun", "property", "not-connack", "short"],
)
def test_malformed_packets_do_not_hurt_the_board(tmp_path: Path, reply: bytes) -> None:
    fake = _BrokenBroker(reply)
    try:
        mqtt = {"broker": "127.0.0.1", "port": fake.port, "server_id": "x", "server_name": "lab/x"}
        with EmulatedBoard(load_profile("esp32c3"), workdir=tmp_path, mqtt=mqtt) as board:
            _wait_for(lambda: fake.connections >= 2)  # it gave up on the first and tried again
            _http_serves(board)
            assert "Traceback" not in board.console_log
    finally:
        fake.close()
