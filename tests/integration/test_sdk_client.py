"""The official MCP Python SDK client against the emulated board, in both protocol eras."""

import asyncio
from typing import Any

import httpx2
import pytest
from mcp import types
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from host_tools.emulator.runner import EmulatedBoard

# "auto" probes server/discover (revision 2026-07-28); "legacy" forces the initialize handshake.
MODES = {"auto": "2026-07-28", "legacy": "2025-11-25"}


async def _session(board: EmulatedBoard, mode: str, fn: Any) -> Any:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {board.token}"})
    async with http, Client(streamable_http_client(board.url, http_client=http), mode=mode) as client:
        return await fn(client)


def run(board: EmulatedBoard, mode: str, fn: Any) -> Any:
    return asyncio.run(_session(board, mode, fn))


@pytest.mark.parametrize("mode", MODES)
def test_connects_in_each_era(board: EmulatedBoard, mode: str) -> None:
    async def check(c: Client) -> None:
        assert c.protocol_version == MODES[mode]
        assert c.server_info is not None and c.server_info.name == "boardmcp"

    run(board, mode, check)


def _profile_tools(board: EmulatedBoard) -> set[str]:
    """The tools a board's profile calls for: system and LED, GPIO, ADC, I2C, one per sensor."""
    p = board.profile
    names = {"system_info", "led"}
    names |= {"gpio_read", "gpio_write"} if p.gpio_allow else set()
    names |= {"adc_read"} if p.adc else set()
    names |= {"i2c_scan"} if p.i2c else set()
    return names | {f"read_{s.name}" for s in p.sensors}


@pytest.mark.parametrize("mode", MODES)
def test_lists_tools_with_schemas(board: EmulatedBoard, mode: str) -> None:
    async def check(c: Client) -> None:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert set(tools) == _profile_tools(board)
        for t in tools.values():
            assert t.description and t.input_schema["type"] == "object" and t.output_schema
        assert tools["system_info"].annotations.read_only_hint is True
        assert tools["led"].input_schema["properties"]["state"]["enum"] == ["on", "off", "toggle"]

    run(board, mode, check)


@pytest.mark.parametrize("mode", MODES)
def test_system_info(board: EmulatedBoard, mode: str) -> None:
    async def check(c: Client) -> None:
        r = await c.call_tool("system_info", {})
        assert not r.is_error
        info = r.structured_content
        assert info["chip"] == "esp32s3" and info["board"] == "esp32s3"
        assert info["micropython"].startswith("1.")
        assert 0 < info["heap_free_bytes"] < board.profile.heap_bytes
        assert info["uptime_s"] > 0
        wifi = info["wifi"]
        assert wifi["connected"] is True and wifi["ip"] == "127.0.0.1"
        assert wifi["ssid"] == board.wifi["ssid"] and -100 < wifi["rssi_dbm"] < 0
        assert wifi["hostname"].startswith("boardmcp-")

    run(board, mode, check)


@pytest.mark.parametrize("mode", MODES)
def test_led_on_off_toggle(board: EmulatedBoard, mode: str) -> None:
    async def check(c: Client) -> None:
        pin = board.profile.led_pin
        r = await c.call_tool("led", {"state": "on"})
        assert r.structured_content == {"on": True, "pin": pin}
        r = await c.call_tool("led", {"state": "toggle"})
        assert r.structured_content == {"on": False, "pin": pin}
        r = await c.call_tool("led", {"state": "toggle"})
        assert r.structured_content["on"] is True
        r = await c.call_tool("led", {"state": "off"})
        assert r.structured_content["on"] is False

    run(board, mode, check)


@pytest.mark.parametrize("mode", MODES)
def test_bad_tool_arguments_are_tool_errors(board: EmulatedBoard, mode: str) -> None:
    async def check(c: Client) -> None:
        r = await c.call_tool("led", {"state": "blink"})
        assert r.is_error
        assert "state must be one of: on, off, toggle" in r.content[0].text
        # and the server goes on serving
        assert not (await c.call_tool("led", {"state": "off"})).is_error

    run(board, mode, check)


async def _elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada", "username": "ada"})


async def _sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="Paris"), model="m")


@pytest.mark.parametrize("mode", MODES)
def test_board_asks_the_client_in_each_era(conformance_board: EmulatedBoard, mode: str) -> None:
    """Elicitation and sampling: requests on the SSE stream (handshake) or input_required
    results that the SDK answers and retries with (2026-07-28) — the same tools either way."""

    async def main() -> None:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {conformance_board.token}"})
        transport = streamable_http_client(conformance_board.url, http_client=http)
        async with http, Client(transport, mode=mode, elicitation_callback=_elicit, sampling_callback=_sample) as c:
            assert c.protocol_version == MODES[mode]
            texts = {}
            for name in ("test_input_required_result_elicitation", "test_sampling", "test_elicitation"):
                r = await c.call_tool(name, {})
                assert not r.is_error, r
                texts[name] = r.content[0].text
            assert texts["test_input_required_result_elicitation"] == "Hello, Ada!"
            assert "Paris" in texts["test_sampling"] and "ada" in texts["test_elicitation"]
            read = await c.read_resource("test://template/42/data")
            assert '"id": "42"' in read.contents[0].text
            prompt = await c.get_prompt("test_prompt_with_arguments", {"arg1": "x1", "arg2": "y2"})
            assert "x1" in prompt.messages[0].content.text and "y2" in prompt.messages[0].content.text

    asyncio.run(main())
