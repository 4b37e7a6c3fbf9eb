"""`boardmcp bridge` with the official MCP SDK's stdio client, to the emulated board on each transport."""

import asyncio
import os
import sys
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from host_tools.bridge import SerialLink
from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import load_profile

BOARDMCP = str(Path(sys.executable).with_name("boardmcp"))
MODES = {"auto": "2026-07-28", "legacy": "2025-11-25"}


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedBoard]:
    """A board of this module's own: each bridge run is a desktop client session on every transport."""
    with EmulatedBoard(load_profile("esp32s3"), workdir=tmp_path_factory.mktemp("bridge")) as b:
        yield b


def bridge_args(board: EmulatedBoard, transport: str) -> list[str]:
    if transport == "http":
        return ["bridge", "--url", f"http://127.0.0.1:{board.port}"]  # /mcp is the default path
    if transport == "ws":
        return ["bridge", "--ws", f"ws://127.0.0.1:{board.port}/ws"]
    return ["bridge", "--serial", board.console]


def run(board: EmulatedBoard, transport: str, mode: str, fn: Any, token: str | None = None) -> Any:
    env = {"BOARDMCP_TOKEN": board.token if token is None else token}
    params = StdioServerParameters(command=BOARDMCP, args=bridge_args(board, transport), env=env)

    async def session() -> Any:
        async with Client(stdio_client(params), mode=mode) as client:
            return await fn(client)

    return asyncio.run(session())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", ["http", "ws", "serial"])
def test_sdk_through_the_bridge(board: EmulatedBoard, transport: str, mode: str) -> None:
    async def check(c: Client) -> None:
        assert c.protocol_version == MODES[mode]
        tools = {t.name for t in (await c.list_tools()).tools}
        assert {"system_info", "led"} <= tools  # and the profile's hardware tools
        info = (await c.call_tool("system_info", {})).structured_content
        assert info is not None and info["board"] == "esp32s3"
        r = await c.call_tool("led", {"state": "blink"})
        assert r.is_error and "state must be one of" in r.content[0].text

    run(board, transport, mode, check)


def test_a_wrong_token_is_an_error_the_client_sees(board: EmulatedBoard) -> None:
    async def check(c: Client) -> None:
        pass

    with pytest.raises(BaseExceptionGroup) as info:
        run(board, "http", "legacy", check, token="wrong")
    assert info.group_contains(MCPError, match="HTTP 401: A valid bearer token is required")


def test_serial_link_skips_console_chatter() -> None:
    # A pty stands in for the board's UART: the link must pass JSON-RPC lines and nothing else.
    master, slave = os.openpty()
    tty.setraw(slave)

    async def exchange() -> list[bytes]:
        link = SerialLink(os.ttyname(slave))
        await link.open()
        await link.send(b'{"jsonrpc":"2.0","id":1,"method":"ping"}')
        sent = b""
        while not sent.endswith(b"\n"):
            sent += os.read(master, 4096)
        assert sent == b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
        os.write(master, b"MPY: soft reboot\r\n{not json\r\n[1]\r\n" + b'{"jsonrpc":"2.0","id":1,"result":{}}\r\n')
        os.write(master, b'Traceback (most recent call last):\r\n{"jsonrpc":"2.0","method":"n"}\n')
        got = []
        async for msg in link.messages():
            got.append(msg)
            if len(got) == 2:
                break
        await link.close()
        return got

    try:
        got = asyncio.run(exchange())
    finally:
        os.close(master)
        os.close(slave)
    assert got == [b'{"jsonrpc":"2.0","id":1,"result":{}}', b'{"jsonrpc":"2.0","method":"n"}']
