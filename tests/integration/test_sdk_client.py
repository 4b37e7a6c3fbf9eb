"""The official MCP Python SDK client against the emulated board, in both protocol eras."""

import asyncio
from typing import Any

import httpx2
import pytest
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


@pytest.mark.parametrize("mode", MODES)
def test_lists_tools_with_schemas(board: EmulatedBoard, mode: str) -> None:
    async def check(c: Client) -> None:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert set(tools) == {"system_info", "led"}
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
