"""Hardware tools through the real HTTP server on emulated boards: tools derived from each profile,
the GPIO pin policy (refusals with reasons, bypass attempts), ADC and sensor readings in SI units,
sensor:// resources and their subscriptions, and injected faults (errors a model can act on,
recovery once repaired, the server serving throughout)."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from wire import Stream, open_session, post

from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import load_profile

V = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}
BASE_TOOLS = {"system_info", "led", "gpio_read", "gpio_write", "adc_read"}


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedBoard]:
    """A default esp32s3 of this module's own: the drivers, sessions and faults used here do not
    change the heap the other modules' tests see on the shared board."""
    with EmulatedBoard(load_profile("esp32s3"), workdir=tmp_path_factory.mktemp("esp32s3-hw")) as b:
        yield b


@pytest.fixture(scope="module")
def session(board: EmulatedBoard) -> dict[str, str]:
    return open_session(board)


def rpc(board: EmulatedBoard, session: dict[str, str], method: str, params: dict[str, Any] | None = None) -> Any:
    """One handshake-era request; the JSON-RPC reply."""
    status, _, reply = post(board, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}, session)
    assert status == 200, reply
    return reply


def call(board: EmulatedBoard, session: dict[str, str], name: str, **args: Any) -> dict[str, Any]:
    """tools/call; the result (isError or not)."""
    reply = rpc(board, session, "tools/call", {"name": name, "arguments": args})
    assert "result" in reply, reply
    return reply["result"]


def ok(board: EmulatedBoard, session: dict[str, str], name: str, **args: Any) -> dict[str, Any]:
    result = call(board, session, name, **args)
    assert not result.get("isError"), result
    return result["structuredContent"]


def refused(board: EmulatedBoard, session: dict[str, str], name: str, **args: Any) -> str:
    result = call(board, session, name, **args)
    assert result.get("isError") is True, result
    return result["content"][0]["text"]


def tool_names(board: EmulatedBoard) -> set[str]:
    return {t["name"] for t in rpc(board, open_session(board), "tools/list")["result"]["tools"]}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedBoard]:
    """An esp32s3 with the CRC-checked parts: an SHT4x on I2C and a DS18B20 on 1-Wire GPIO 4."""
    root = tmp_path_factory.mktemp("bench")
    profile = {
        "extends": "esp32s3",
        "name": "bench",
        "gpio_allow": [5, 6, 7],
        "sensors": [
            {"name": "air", "type": "sht4x", "bus": 0, "address": 0x44},
            {"name": "water", "type": "ds18b20", "pin": 4},
        ],
    }
    (root / "bench.json").write_text(json.dumps(profile))
    with EmulatedBoard(load_profile(root / "bench.json"), workdir=root / "board") as b:
        yield b


# -- tools per profile -----------------------------------------------------------------------------


def test_default_board_tools_and_annotations(board: EmulatedBoard, session: dict[str, str]) -> None:
    tools = {t["name"]: t for t in rpc(board, session, "tools/list")["result"]["tools"]}
    assert set(tools) == BASE_TOOLS | {"i2c_scan", "read_bme280", "read_bh1750"}
    for t in tools.values():
        assert t["inputSchema"]["type"] == "object" and t["outputSchema"]["type"] == "object"
        assert t["annotations"]["readOnlyHint"] is (t["name"] not in ("led", "gpio_write"))
    assert tools["gpio_write"]["annotations"]["destructiveHint"] is True
    assert tools["adc_read"]["inputSchema"]["properties"]["channel"]["enum"] == ["battery"]
    units = {k: v["description"] for k, v in tools["read_bme280"]["outputSchema"]["properties"].items()}
    assert units == {"temperature": "degC", "humidity": "%RH", "pressure": "Pa"}
    assert tools["read_bh1750"]["outputSchema"]["properties"]["illuminance"]["description"] == "lx"


@pytest.mark.parametrize(("name", "extra"), [("esp32", set()), ("esp32c3", {"i2c_scan"})])
def test_other_profiles_get_their_own_tools(tmp_path: Path, name: str, extra: set[str]) -> None:
    with EmulatedBoard(load_profile(name), workdir=tmp_path) as b:
        assert tool_names(b) == BASE_TOOLS | extra


def test_sdk_client_reads_a_sensor_in_the_modern_era(board: EmulatedBoard) -> None:
    async def main() -> Any:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {board.token}"})
        async with http, Client(streamable_http_client(board.url, http_client=http)) as c:
            assert c.protocol_version == V
            return (await c.call_tool("read_bme280", {})).structured_content

    reading = asyncio.run(main())
    assert 10 < reading["temperature"] < 40 and 0 <= reading["humidity"] <= 100
    assert 90000 < reading["pressure"] < 110000


# -- GPIO --------------------------------------------------------------------------------------------


def test_gpio_write_and_read_back(board: EmulatedBoard, session: dict[str, str]) -> None:
    assert ok(board, session, "gpio_write", pin=5, value=1) == {"pin": 5, "value": 1}
    assert ok(board, session, "gpio_read", pin=5) == {"pin": 5, "value": 1}
    ok(board, session, "gpio_write", pin=5, value=0)
    assert ok(board, session, "gpio_read", pin=5)["value"] == 0
    assert ok(board, session, "gpio_read", pin=6, pull="up")["value"] == 1
    assert ok(board, session, "gpio_read", pin=6, pull="down")["value"] == 0
    assert ok(board, session, "gpio_write", pin=7.0, value=1) == {"pin": 7, "value": 1}  # JSON 7.0 is 7


@pytest.mark.parametrize(
    ("pin", "reason"),
    [
        (26, "flash (SPI)"),
        (35, "octal flash/PSRAM"),
        (19, "USB D-/D+"),
        (43, "UART0"),
        (0, "strapping"),
        (8, "in use by I2C bus 0"),
        (1, "analog input battery (use adc_read)"),
        (21, "the board's LED (use the led tool)"),
        (22, "not in this board's GPIO allowlist"),
    ],
)
def test_gpio_write_refused_with_the_reason(
    board: EmulatedBoard, session: dict[str, str], pin: int, reason: str
) -> None:
    text = refused(board, session, "gpio_write", pin=pin, value=1)
    assert f"GPIO {pin} refused (" in text and reason in text
    assert "nothing was changed" in text and "Usable pins: 2, 4, 5" in text


def test_refused_write_drives_nothing(board: EmulatedBoard, session: dict[str, str]) -> None:
    led = board.profile.led_pin
    assert ok(board, session, "led", state="off")["on"] is False
    refused(board, session, "gpio_write", pin=led, value=1)
    assert ok(board, session, "led", state="toggle")["on"] is True  # it was still off
    ok(board, session, "led", state="off")


@pytest.mark.parametrize(
    "args",
    [
        {"pin": "5", "value": 1},
        {"pin": "GPIO5", "value": 1},
        {"pin": -1, "value": 1},
        {"pin": 7.5, "value": 1},
        {"pin": 49, "value": 1},
        {"pin": 1e9, "value": 1},
        {"pin": True, "value": 1},
        {"pin": None, "value": 1},
        {"pin": [5], "value": 1},
        {"pin": {"id": 5}, "value": 1},
        {"pin": 5, "value": 2},
        {"pin": 5, "value": "1"},
        {"pin": 5, "value": True},
        {"pin": 5},
        {"pin": 5, "value": 1, "force": True},
        {"value": 1},
    ],
)
def test_gpio_bypass_attempts_are_refused(board: EmulatedBoard, session: dict[str, str], args: dict) -> None:
    ok(board, session, "gpio_write", pin=5, value=0)
    reply = rpc(board, session, "tools/call", {"name": "gpio_write", "arguments": args})
    assert reply["result"]["isError"] is True, reply
    assert reply["result"]["content"][0]["text"]
    assert ok(board, session, "gpio_read", pin=5)["value"] == 0  # nothing was driven


def test_gpio_read_of_a_reserved_pin_is_refused(board: EmulatedBoard, session: dict[str, str]) -> None:
    assert "flash (SPI)" in refused(board, session, "gpio_read", pin=27)
    assert "pull" in refused(board, session, "gpio_read", pin=5, pull="sideways")


# -- ADC, I2C, sensors -------------------------------------------------------------------------------


def test_adc_read_in_range_with_units(board: EmulatedBoard, session: dict[str, str]) -> None:
    r = ok(board, session, "adc_read", channel="battery")
    assert r["channel"] == "battery" and r["unit"] == "V"
    assert 1.9 < r["pin_volts"] < 1.96  # the emulator puts 1.93 V on GPIO1
    assert abs(r["value"] - 2 * r["pin_volts"]) < 0.01  # 1:2 divider
    assert refused(board, session, "adc_read", channel="solar")


def test_i2c_scan_names_the_declared_parts(board: EmulatedBoard, session: dict[str, str]) -> None:
    r = ok(board, session, "i2c_scan")
    assert r == {
        "bus": 0,
        "devices": [
            {"address": 0x23, "hex": "0x23", "sensor": "bh1750"},
            {"address": 0x76, "hex": "0x76", "sensor": "bme280"},
        ],
        "missing": [],
    }


def test_sensor_readings_are_physical(board: EmulatedBoard, session: dict[str, str]) -> None:
    env = ok(board, session, "read_bme280")
    assert 10 < env["temperature"] < 40 and 0 <= env["humidity"] <= 100 and 90000 < env["pressure"] < 110000
    light = ok(board, session, "read_bh1750")
    assert 0 <= light["illuminance"] < 100000


def test_sensor_resources_are_listed_and_readable(board: EmulatedBoard, session: dict[str, str]) -> None:
    listed = {r["uri"]: r for r in rpc(board, session, "resources/list")["result"]["resources"]}
    assert {"sensor://bme280", "sensor://bh1750"} <= set(listed)
    assert listed["sensor://bme280"]["mimeType"] == "application/json"
    contents = rpc(board, session, "resources/read", {"uri": "sensor://bme280"})["result"]["contents"]
    assert contents[0]["uri"] == "sensor://bme280"
    reading = json.loads(contents[0]["text"])
    assert set(reading) == {"temperature", "humidity", "pressure"} and 90000 < reading["pressure"] < 110000


def test_subscribed_sensor_notifies_on_the_get_stream(board: EmulatedBoard) -> None:
    session = open_session(board)
    assert rpc(board, session, "resources/subscribe", {"uri": "sensor://bh1750"})["result"] == {}
    get = Stream(board, timeout=30).send(None, session, method="GET")
    try:
        assert get.status == 200
        note = get.event()  # the poller's first reading for this subscriber
        assert note == {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": "sensor://bh1750"},
        }
    finally:
        rpc(board, session, "resources/unsubscribe", {"uri": "sensor://bh1750"})
        Stream(board).send(None, session, method="DELETE").close()
        get.close()


def test_subscribed_sensor_notifies_on_a_listen_stream(board: EmulatedBoard) -> None:
    listen = {
        "jsonrpc": "2.0",
        "id": 9,
        "method": "subscriptions/listen",
        "params": {"notifications": {"resourceSubscriptions": ["sensor://bme280"]}, "_meta": META},
    }
    s = Stream(board, timeout=30).send(listen, {"MCP-Protocol-Version": V, "Mcp-Method": "subscriptions/listen"})
    try:
        ack = s.event()
        assert ack["params"]["notifications"] == {"resourceSubscriptions": ["sensor://bme280"]}
        note = s.event()
        assert note["method"] == "notifications/resources/updated"
        assert note["params"]["uri"] == "sensor://bme280"
        assert note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 9
    finally:
        s.close()


# -- faults ------------------------------------------------------------------------------------------


def test_absent_sensor_then_recovery(board: EmulatedBoard, session: dict[str, str]) -> None:
    board.inject_fault("bme280", "absent")
    try:
        text = refused(board, session, "read_bme280")
        assert "bme280 did not answer at 0x76 on I2C bus 0" in text and "run i2c_scan" in text
        assert ok(board, session, "i2c_scan")["missing"] == ["bme280"]
        read = rpc(board, session, "resources/read", {"uri": "sensor://bme280"})
        assert "did not answer" in json.dumps(read)
        assert ok(board, session, "read_bh1750")  # the other part on the bus still works
        assert ok(board, session, "system_info")["board"] == "esp32s3"
    finally:
        board.inject_fault("bme280", None)
    assert 90000 < ok(board, session, "read_bme280")["pressure"] < 110000


def test_stuck_bus_then_recovery(board: EmulatedBoard, session: dict[str, str]) -> None:
    board.inject_fault("i2c0", "stuck")
    try:
        for tool in ("read_bh1750", "read_bme280", "i2c_scan"):
            text = refused(board, session, tool)
            assert "bus is stuck" in text and "power-cycle" in text
        assert ok(board, session, "adc_read", channel="battery")["unit"] == "V"
    finally:
        board.inject_fault("i2c0", None)
    assert ok(board, session, "i2c_scan")["missing"] == []
    assert ok(board, session, "read_bh1750")["illuminance"] >= 0


def test_crc_faults_on_sht4x_and_ds18b20(bench: EmulatedBoard) -> None:
    session = open_session(bench)
    assert tool_names(bench) >= {"read_air", "read_water", "i2c_scan"}
    air, water = ok(bench, session, "read_air"), ok(bench, session, "read_water")
    assert 10 < air["temperature"] < 40 and 0 <= air["humidity"] <= 100 and 10 < water["temperature"] < 40
    for name, where in (("air", "0x44 on I2C bus 0"), ("water", "the 1-Wire bus on GPIO 4")):
        bench.inject_fault(name, "crc")
        try:
            text = refused(bench, session, "read_" + name)
            assert f"{name} at {where}" in text and "checksum mismatch" in text and "retry" in text
        finally:
            bench.inject_fault(name, None)
        assert ok(bench, session, "read_" + name)["temperature"] > 10
    bench.inject_fault("water", "absent")
    try:
        assert "did not answer at the 1-Wire bus on GPIO 4" in refused(bench, session, "read_water")
    finally:
        bench.inject_fault("water", None)
    assert ok(bench, session, "read_water")["temperature"] > 10
