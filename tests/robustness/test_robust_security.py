"""Security on the emulated board: the token never leaves it, DNS rebinding is refused, pin
arguments cannot reach pins the profile does not offer, tools leave the filesystem alone, and
each client is rate limited (429). Token and Host/Origin basics are test_http_errors.py's and
test_websocket.py's; the token comparison is checked in test_fuzz_logic.py."""

import ast
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Probed, call_tool, fresh, modern, modern_headers, serves, tools_of, valid_arguments, wait_serving
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from wire import Console, open_session, post, raw_exchange

from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import load_profile, repo_root

FIRMWARE = repo_root() / "firmware"


@pytest.fixture
def every_tool_board(probed: Probed) -> Iterator[EmulatedBoard]:
    """The probed board for a test that calls every tool: afterwards the same VM, still serving.
    Its heap is not compared with idle: calling every tool leaves every tools module loaded (as
    designed, until the heap runs low), which is not a leak; the other tests check for those."""
    board = fresh(probed)
    yield board
    assert board.pid == probed.pid, "the board reset during the test:\n" + board.console_log[-2000:]
    wait_serving(board, timeout=10)


def test_the_token_is_never_returned_or_logged(every_tool_board: EmulatedBoard) -> None:
    """Every tool, list and read, on HTTP (both eras), WebSocket and serial, and refusals that
    carried a wrong token: no answer and no console line holds the token."""
    board = every_tool_board
    token = board.token
    assert token
    seen: list[str] = []
    for tool in tools_of(board):
        seen.append(json.dumps(call_tool(board, tool["name"], valid_arguments(tool["inputSchema"]))[2]))
    for method in ("tools/list", "resources/list", "resources/templates/list", "prompts/list", "server/discover"):
        seen.append(json.dumps(post(board, modern(method), modern_headers(method))))
    session = open_session(board)
    for method in ("tools/list", "resources/list", "prompts/list", "ping"):
        seen.append(json.dumps(post(board, {"jsonrpc": "2.0", "id": 1, "method": method}, session)))
    for wrong in (token[:-1], token + "x", token.upper(), "Basic " + token):
        reply = post(board, modern("tools/list"), {**modern_headers("tools/list"), "Authorization": wrong}, auth=False)
        assert reply[0] == 401
        seen.append(json.dumps(reply))
    url = f"ws://127.0.0.1:{board.port}/ws"
    with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "system_info"}}))
        seen.append(ws.recv(timeout=10))
    console = Console(board.console)
    try:
        seen.append(json.dumps(console.call("tools/call", {"name": "system_info"})))
    finally:
        console.close()
    assert not [s for s in seen if token in s]
    assert token not in board.console_log


def test_firmware_prints_no_configuration() -> None:
    """No print() in the firmware formats the config or the token (the portal says only that
    a token was saved; it shows it once on the setup page, to whoever set the board up)."""
    for path in (FIRMWARE / "boardmcp").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                assert not _printed_names(node) & {"cfg", "token", "config", "_bearer"}, f"{path}:{node.lineno}"


def _printed_names(node: ast.AST) -> set[str]:
    # Names whose values reach the output: those only tested (`a if token else b`) do not.
    if isinstance(node, ast.IfExp):
        return _printed_names(node.body) | _printed_names(node.orelse)
    names = {node.id} if isinstance(node, ast.Name) else {node.attr} if isinstance(node, ast.Attribute) else set()
    for child in ast.iter_child_nodes(node):
        names |= _printed_names(child)
    return names


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("evil.example.com", None),
        ("127.0.0.1.evil.example.com", None),
        ("localhost.evil.example.com:80", None),
        ("localhost.", None),
        ("boardmcp-0000.local.evil.example.com", None),
        ("127.0.0.1", "http://evil.example.com"),
        ("127.0.0.1", "http://127.0.0.1.evil.example.com"),
        ("127.0.0.1", "null"),
        ("127.0.0.1", "http://localhost.evil.example.com:8080"),
        ("127.0.0.1", "file://"),
    ],
)
def test_dns_rebinding_is_refused(board: EmulatedBoard, host: str, origin: str | None) -> None:
    """A browser tricked into calling the board sends the attacker's name as Host, or its page's
    Origin: both are refused with 403, on /mcp and on the WebSocket upgrade."""
    body = json.dumps(modern("tools/list")).encode()
    extra = f"Origin: {origin}\r\n" if origin else ""
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Type: application/json\r\n"
        f"Authorization: Bearer {board.token}\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    assert raw_exchange(board.port, head.encode() + body)[0] == 403
    upgrade = (
        f"GET /ws HTTP/1.1\r\nHost: {host}\r\n{extra}Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {board.token}\r\n\r\n"
    )
    assert raw_exchange(board.port, upgrade.encode())[0] == 403


# Values a caller might try to slip past a pin allowlist.
PIN_BYPASSES = ["5", "GPIO5", "D5", -1, -2147483648, 5.5, 1e300, True, False, None, 2**64, [5], {"pin": 5}, "0x05"]


def test_pin_arguments_cannot_bypass_the_allowlist(every_tool_board: EmulatedBoard) -> None:
    """For every tool that takes a pin, and for the LED tool (whose pin is the profile's, not
    the caller's), odd pin values are refused as input errors before any pin is touched."""
    board = every_tool_board
    profile = load_profile("esp32s3")
    reserved = [p for group in profile.reserved for p in group.pins]
    checked = 0
    for tool in tools_of(board):
        props = tool["inputSchema"].get("properties", {})
        base = valid_arguments(tool["inputSchema"])
        values = [*PIN_BYPASSES, *reserved] if "pin" in props else [5]
        for value in values:
            status, _, reply = call_tool(board, tool["name"], {**base, "pin": value})
            result = reply.get("result")
            refused = status in (200, 400) and (("error" in reply) or (result is not None and result.get("isError")))
            assert refused, (tool["name"], value, reply)
            checked += 1
    assert checked  # the LED tool at least
    assert serves(board)


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_tools_leave_the_filesystem_alone(every_tool_board: EmulatedBoard) -> None:
    """Calling every tool (with valid and with odd arguments) changes no file on the board."""
    board = every_tool_board
    fs = board.workdir / "fs"
    before = _tree(fs)
    for tool in tools_of(board):
        for arguments in (valid_arguments(tool["inputSchema"]), {"path": "/config.json"}, {"file": "main.py"}):
            call_tool(board, tool["name"], arguments)
    assert _tree(fs) == before


def test_firmware_runs_no_code_it_receives() -> None:
    """No exec/eval/compile anywhere in the firmware; __import__ only of the firmware's own
    modules (a "boardmcp." prefix: fixtures named by the profile, handlers loaded on first use)."""
    for path in (FIRMWARE / "boardmcp").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("exec", "eval", "compile"), f"{path}:{node.lineno}"
                if node.func.id == "__import__":
                    arg = node.args[0]
                    prefix = arg.left if isinstance(arg, ast.BinOp) else arg
                    assert isinstance(prefix, ast.Constant), f"{path}:{node.lineno}"
                    assert str(prefix.value).startswith("boardmcp."), f"{path}:{node.lineno}"


# -- rate limiting --------------------------------------------------------------------------------

RATE = {"per_s": 4, "burst": 8}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedBoard]:
    """A board limiting each client to 8 requests at once, then 4 a second."""
    workdir = tmp_path_factory.mktemp("limited")
    with EmulatedBoard(load_profile("esp32s3"), workdir=workdir, http_options={"rate": RATE}) as b:
        yield b


def test_rate_limit_answers_429_with_retry_after(limited: EmulatedBoard) -> None:
    statuses = [post(limited, modern("tools/list"), modern_headers("tools/list")) for _ in range(RATE["burst"] + 4)]
    assert [s[0] for s in statuses[: RATE["burst"]]] == [200] * RATE["burst"]
    status, headers, reply = statuses[-1]
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert reply["error"]["code"] == -32600 and reply["id"] is None
    # The WebSocket upgrade counts too.
    with pytest.raises(InvalidStatus) as info:
        connect(f"ws://127.0.0.1:{limited.port}/ws", additional_headers={"Authorization": f"Bearer {limited.token}"})
    assert info.value.response.status_code == 429
    # Waiting as told is enough.
    time.sleep(int(headers["retry-after"]))
    assert post(limited, modern("tools/list"), modern_headers("tools/list"))[0] == 200
