"""Streamable HTTP, byte by byte: statuses per era, sessions, routing headers, Origin/Host, the
bearer token and the size bounds. Each request is sent exactly as written, on its own connection."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from board_client import CLIENT_INFO, ENVELOPE, HANDSHAKE, MODERN
from board_target import Target
from conftest import close_shared

SPEC = "MCP 2025-11-25 basic/transports#streamable-http"
NEW = "MCP 2026-07-28 basic/transports#streamable-http"
VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")


def modern(method: str, params: dict[str, Any] | None = None, rid: int = 1) -> dict[str, Any]:
    """A modern-era request body."""
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**(params or {}), "_meta": ENVELOPE}}


def routing(method: str, name: str | None = None) -> dict[str, str]:
    """The headers a modern-era request carries."""
    return {"MCP-Protocol-Version": MODERN, "Mcp-Method": method} | ({"Mcp-Name": name} if name else {})


def initialize(target: Target, version: str = HANDSHAKE) -> tuple[str, dict[str, str]]:
    """Initialize a handshake session: (negotiated version, headers later requests carry)."""
    body = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        },
    }
    status, headers, reply = target.http(body)
    assert status == 200, f"initialize: HTTP {status} {reply}"
    negotiated = reply["result"]["protocolVersion"]
    assert "mcp-session-id" in headers, "a handshake-era initialize over HTTP must give an Mcp-Session-Id"
    return negotiated, {"Mcp-Session-Id": headers["mcp-session-id"], "MCP-Protocol-Version": negotiated}


Open = Callable[..., tuple[str, dict[str, str]]]


@pytest.fixture(scope="module", autouse=True)
def _alone(target: Target) -> None:
    """These checks open connections of their own: the protocol checks' client is closed first
    (one client at a time, as a person's board sees)."""
    close_shared()


@pytest.fixture
def open_session(http_target: Target) -> Iterator[Open]:
    """`initialize` for a check; every session it opens is ended (DELETE) afterwards, as a client
    should, so sessions a check leaves behind do not take the next one's heap."""
    opened: list[dict[str, str]] = []

    def open_(version: str = HANDSHAKE) -> tuple[str, dict[str, str]]:
        negotiated, headers = initialize(http_target, version)
        opened.append(headers)
        return negotiated, headers

    yield open_
    for headers in opened:
        http_target.http(None, headers, method="DELETE")


def still_serving(target: Target) -> None:
    """The board answers a well-formed request after a bad one."""
    status, _, reply = target.http(modern("server/discover", rid=99), routing("server/discover"))
    assert status == 200 and MODERN in reply["result"]["supportedVersions"], "the board stopped serving"


PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
UNSUPPORTED = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/list",
    "params": {"_meta": {**ENVELOPE, "io.modelcontextprotocol/protocolVersion": "v999"}},
}


@pytest.mark.check(
    spec=f"{SPEC}#session-management; MCP 2025-11-25 basic/lifecycle#version-negotiation",
    hint="version negotiation is wrong: an old client would be refused or misread: redeploy the firmware",
)
def test_version_negotiation(open_session: Open) -> None:
    for version in VERSIONS[:3]:
        assert open_session(version)[0] == version
    assert open_session("1999-01-01")[0] in VERSIONS


@pytest.mark.check(
    spec=f"{SPEC}#session-management",
    hint="sessions are not enforced or not ended: a client could talk to another client's session",
)
def test_sessions(http_target: Target, open_session: Open) -> None:
    _, session = open_session()
    assert http_target.http(PING, session)[0] == 200
    status = http_target.http(PING, {"MCP-Protocol-Version": HANDSHAKE})[0]
    assert status == 400, f"a handshake request without Mcp-Session-Id: HTTP {status}, want 400"
    assert http_target.http(PING, {**session, "Mcp-Session-Id": "not-a-session"})[0] == 404
    status, _, _ = http_target.http(None, session, method="DELETE")
    assert 200 <= status < 300, f"DELETE of a live session: HTTP {status}"
    assert http_target.http(PING, session)[0] == 404, "a deleted session must be gone (404)"


@pytest.mark.check(
    spec=f"{SPEC}#sending-messages-to-the-server (statuses); JSON-RPC 2.0 §5.1",
    hint="the board maps errors to the wrong HTTP status: clients will misreport failures; redeploy the firmware",
)
@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (b'{"jsonrpc": "2.0", "id": 1, "method": ', -32700, 400),
        (b'"tools/list"', -32600, 400),
        (b'{"jsonrpc":"1.0","id":2,"method":"ping"}', -32600, 400),
        (b'{"jsonrpc":"2.0","id":3,"method":"tools/explode"}', -32601, 200),
        (b'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}', -32602, 200),
    ],
    ids=["parse error", "not an object", "wrong jsonrpc", "unknown method", "unknown tool"],
)
def test_handshake_statuses(http_target: Target, open_session: Open, body: bytes, code: int, status: int) -> None:
    _, session = open_session()
    got, headers, reply = http_target.http(body, session)
    assert (got, reply["error"]["code"]) == (status, code)
    assert headers["content-type"].startswith("application/json")
    still_serving(http_target)


@pytest.mark.check(
    spec=f"{NEW} (errors as HTTP statuses; Mcp-Method/Mcp-Name must match the body: -32020)",
    hint="the board routes by headers it does not check against the body: redeploy the firmware",
)
@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{oops", routing("tools/list"), 400, -32700),
        (modern("tools/explode"), routing("tools/explode"), 404, -32601),
        (modern("tools/call", {"name": "nope"}), routing("tools/call", "nope"), 400, -32602),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}, routing("tools/list"), 400, -32602),
        (modern("tools/list"), routing("prompts/list"), 400, -32020),
        (modern("tools/call", {"name": "a"}), routing("tools/call", "b"), 400, -32020),
        (UNSUPPORTED, {"MCP-Protocol-Version": "v999", "Mcp-Method": "tools/list"}, 400, -32022),
    ],
    ids=["parse error", "unknown method", "unknown tool", "no envelope", "Mcp-Method", "Mcp-Name", "version"],
)
def test_modern_statuses(http_target: Target, body: Any, headers: dict[str, str], status: int, code: int) -> None:
    got, _, reply = http_target.http(body, headers)
    assert (got, reply["error"]["code"]) == (status, code), reply
    still_serving(http_target)


@pytest.mark.check(spec=f"{SPEC}#sending-messages-to-the-server (202 for notifications)", hint="redeploy the firmware")
def test_notifications_get_202(http_target: Target, open_session: Open) -> None:
    _, session = open_session()
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    status, _, body = http_target.http(note, session)
    assert (status, body) == (202, None)


@pytest.mark.check(
    spec=f"{SPEC}#security-warning (Origin, DNS rebinding: 403)",
    hint="the board accepts requests a web page could forge: add only trusted origins to config.json",
)
def test_foreign_origin_and_host_are_refused(http_target: Target, open_session: Open) -> None:
    _, session = open_session()
    assert http_target.http(PING, {**session, "Origin": "http://evil.example.com"})[0] == 403
    assert http_target.http(PING, {**session, "Host": "evil.example.com"})[0] == 403
    still_serving(http_target)


@pytest.mark.check(
    spec="MCP 2025-11-25 basic/authorization (401 + WWW-Authenticate: Bearer)",
    hint="anyone on the network can drive the board: provision a token (`boardmcp provision`)",
)
def test_token_is_required(http_target: Target) -> None:
    if not http_target.token:
        pytest.skip("no --token given: the board may serve without one (give it to check that it is enforced)")
    status, headers, _ = http_target.http(PING, auth=False)
    assert status == 401 and headers.get("www-authenticate", "").startswith("Bearer")
    assert http_target.http(PING, {"Authorization": "Bearer wrong"}, auth=False)[0] == 401
    still_serving(http_target)


@pytest.mark.check(
    spec="boardmcp bounds (docs/ARCHITECTURE.md): body 413 unread, head 431, then keep serving",
    hint="an oversized request is read or crashes the board: one client could exhaust its heap",
)
def test_bounds(http_target: Target) -> None:
    big = {"Content-Length": "999999"}
    assert http_target.http(None, {**big, "Content-Type": "application/json"})[0] == 413
    assert http_target.http(PING, {"X-Filler": "a" * 4000})[0] == 431
    assert http_target.http(PING, {f"X-A{i}": "b" for i in range(40)})[0] == 431
    still_serving(http_target)


@pytest.mark.check(
    spec=f"{SPEC}#listening-for-messages-from-the-server (GET: 400 without session, 405 modern); 404 other paths",
    hint="the board answers methods or paths it does not serve: redeploy the firmware",
)
def test_other_methods_and_paths(http_target: Target) -> None:
    assert http_target.http(None, method="GET")[0] == 400
    assert http_target.http(None, {"MCP-Protocol-Version": MODERN}, method="GET")[0] == 405
    assert http_target.http(PING, path="/other")[0] == 404
    still_serving(http_target)
