"""MCP as JSON-RPC lines on the emulated board's console (its pty), next to the REPL."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_console import mpremote
from wire import Console

from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import load_profile

CLIENT = {"name": "test", "version": "1"}
SERVING = "mcp: serving JSON-RPC lines on this console"


@pytest.fixture
def console(board: EmulatedBoard) -> Iterator[Console]:
    c = Console(board.console)
    yield c
    c.close()


def test_serves_mcp_lines(console: Console, board: EmulatedBoard) -> None:
    init = console.call("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": CLIENT})
    assert init["result"]["serverInfo"]["name"] == "boardmcp"
    console.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    tools = console.call("tools/list", rid=2)["result"]["tools"]
    assert {"system_info", "led"} <= {t["name"] for t in tools}  # and the profile's hardware tools
    info = console.call("tools/call", {"name": "system_info"}, rid=3)["result"]["structuredContent"]
    assert info["board"] == "esp32s3"
    # The modern era on the same line, message by message.
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    assert console.call("server/discover", {"_meta": meta}, rid=4)["result"]["supportedVersions"] == ["2026-07-28"]


def test_bad_lines_get_errors_and_blank_lines_nothing(console: Console) -> None:
    console.send(b"")
    console.send(b"\r")
    console.send(b"{oops")
    assert console.receive() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "Parse error: the body is not valid JSON"},
    }
    console.send(b'{"jsonrpc":"2.0","id":5,"method":"ping"}\r')  # CRLF line endings are fine
    assert console.receive() == {"jsonrpc": "2.0", "id": 5, "result": {}}


def test_overlong_line_is_dropped_with_an_error(console: Console) -> None:
    console.send(b'{"jsonrpc":"2.0","id":6,"method":"ping","params":{"pad":"' + b"x" * 20000 + b'"}}')
    reply = console.receive()
    assert reply["id"] is None and reply["error"]["code"] == -32600
    assert console.call("ping", rid=7) == {"jsonrpc": "2.0", "id": 7, "result": {}}
    # A long line within the bound is served.
    reply = console.call("ping", {"pad": "y" * 3000}, rid=8)
    assert reply == {"jsonrpc": "2.0", "id": 8, "result": {}}


@pytest.fixture
def own_board(tmp_path: Path) -> Iterator[EmulatedBoard]:
    """A board of this test's own: mpremote interrupts its server."""
    with EmulatedBoard(load_profile("esp32c3"), workdir=tmp_path) as b:
        yield b


def test_ctrl_c_still_reaches_the_repl(own_board: EmulatedBoard) -> None:
    console = Console(own_board.console)
    assert console.call("ping", rid="before")["result"] == {}
    console.close()
    assert mpremote(own_board, "exec", "print(6 * 7)").split() == ["42"]
    booted = own_board.console_log.count(SERVING)
    mpremote(own_board, "reset")
    console = Console(own_board.console)
    try:
        deadline = time.monotonic() + 15
        while own_board.console_log.count(SERVING) == booted:
            assert time.monotonic() < deadline, own_board.console_log
            time.sleep(0.05)
        assert console.call("ping", rid="after")["result"] == {}
    finally:
        console.close()
