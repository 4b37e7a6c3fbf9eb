"""The MCP contract over every transport the target offers, in both eras: discovery and lifecycle,
every method the server advertises, and JSON-RPC error codes."""

from typing import Any

import pytest
from board_client import HANDSHAKE, MODERN, Client

SPEC = "MCP 2025-11-25"
NEW = "MCP 2026-07-28"
REFLASH = "redeploy the firmware (`boardmcp deploy`) and check the board's console for a traceback"


def capabilities(client: Client) -> dict[str, Any]:
    """What the server says it can do: from initialize (handshake) or server/discover (modern)."""
    if client.era == "handshake":
        assert client.initialize_result is not None
        return client.initialize_result["capabilities"]
    return client.request("server/discover")["result"]["capabilities"]


def result(reply: dict[str, Any], what: str = "") -> dict[str, Any]:
    """The result of a reply, failing with the error the board sent instead."""
    assert "result" in reply, f"{what or 'expected a result'}: {reply.get('error')}"
    return reply["result"]


def error_code(reply: dict[str, Any]) -> int:
    """The JSON-RPC error code of a reply, failing if it is a result."""
    assert "error" in reply, f"expected an error, got a result: {reply.get('result')}"
    assert isinstance(reply["error"].get("message"), str) and reply["error"]["message"], "an error needs a message"
    return reply["error"]["code"]


def list_all(client: Client, method: str, key: str) -> list[dict[str, Any]]:
    """Every item of a paginated list, following nextCursor (bounded, so a cursor loop fails)."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    for _ in range(100):
        page = result(client.request(method, params))
        items += page[key]
        if not page.get("nextCursor"):
            return items
        params = {"cursor": page["nextCursor"]}
    raise AssertionError(f"{method}: more than 100 pages; the cursors loop")


@pytest.mark.check(
    spec=f"{SPEC} basic/lifecycle#initialization; {NEW} server/discover",
    hint="the board answers but not as an MCP server of a supported revision: " + REFLASH,
)
def test_discovery(client: Client) -> None:
    if client.era == "handshake":
        init = client.initialize_result
        assert init is not None and init["protocolVersion"] == HANDSHAKE
        assert init["serverInfo"]["name"] and init["serverInfo"]["version"]
    else:
        found = result(client.request("server/discover"))
        assert MODERN in found["supportedVersions"]
    assert isinstance(capabilities(client), dict)


@pytest.mark.check(spec=f"{SPEC} basic/utilities/ping", hint="the board's request loop is stuck: " + REFLASH)
def test_ping(client: Client) -> None:
    if client.era == "modern":
        # Revision 2026-07-28 removes ping; an unknown method is -32601.
        assert error_code(client.request("ping")) == -32601
    else:
        assert result(client.request("ping")) == {}


@pytest.mark.check(
    spec=f"{SPEC} server/tools#listing-tools; {SPEC} server/utilities/pagination",
    hint="a tool the profile builds is malformed, or pagination is broken: check the profile and the tools' schemas",
)
def test_tools_list_pages(client: Client) -> None:
    assert "tools" in capabilities(client)
    tools = list_all(client, "tools/list", "tools")
    names = [t["name"] for t in tools]
    assert names and len(names) == len(set(names)), f"tool names must be unique: {names}"
    for tool in tools:
        assert tool["inputSchema"].get("type") == "object", f"{tool['name']}: inputSchema must be an object schema"
        assert isinstance(tool.get("description"), str), f"{tool['name']}: no description"
    assert error_code(client.request("tools/list", {"cursor": "not-a-cursor"})) == -32602


@pytest.mark.check(
    spec=f"{SPEC} server/tools#calling-tools (structuredContent, outputSchema)",
    hint="a read-only tool failed or returned what its outputSchema does not allow: read its message; "
    "a sensor or bus fault shows up here first (check the wiring)",
)
def test_read_only_tools_answer(client: Client) -> None:
    tools = list_all(client, "tools/list", "tools")
    callable_ = [
        t for t in tools if (t.get("annotations") or {}).get("readOnlyHint") and not t["inputSchema"].get("required")
    ]
    if not callable_:
        pytest.skip("the server lists no read-only tool that takes no arguments")
    for tool in callable_:
        called = result(client.request("tools/call", {"name": tool["name"], "arguments": {}}), tool["name"])
        assert not called.get("isError"), f"{tool['name']}: {called.get('content')}"
        assert isinstance(called["content"], list)
        schema = tool.get("outputSchema")
        if schema:
            structured = called.get("structuredContent")
            assert isinstance(structured, dict), f"{tool['name']} has an outputSchema but no structuredContent"
            missing = set(schema.get("required", ())) - set(structured)
            assert not missing, f"{tool['name']}: structuredContent lacks {sorted(missing)}"


@pytest.mark.check(
    spec=f"{SPEC} server/resources#listing-resources, #reading-resources",
    hint="a resource the server lists cannot be read: if it is a sensor, check its wiring and address",
)
def test_resources_list_and_read(client: Client) -> None:
    if "resources" not in capabilities(client):
        pytest.skip("the server does not advertise resources")
    resources = list_all(client, "resources/list", "resources")
    for res in resources:
        contents = result(client.request("resources/read", {"uri": res["uri"]}))["contents"]
        assert contents and all(c["uri"] == res["uri"] for c in contents), res["uri"]
        assert all("text" in c or "blob" in c for c in contents), res["uri"]
    list_all(client, "resources/templates/list", "resourceTemplates")


@pytest.mark.check(spec=f"{SPEC} server/prompts#listing-prompts", hint="a prompt is malformed: " + REFLASH)
def test_prompts_list(client: Client) -> None:
    if "prompts" not in capabilities(client):
        pytest.skip("the server does not advertise prompts")
    prompts = list_all(client, "prompts/list", "prompts")
    assert all(isinstance(p.get("name"), str) for p in prompts)


@pytest.mark.check(spec=f"{SPEC} server/utilities/logging", hint="logging/setLevel is refused: " + REFLASH)
def test_logging_level(client: Client) -> None:
    if client.era == "modern" or "logging" not in capabilities(client):
        pytest.skip("logging/setLevel is a handshake-era method the server advertises with `logging`")
    assert result(client.request("logging/setLevel", {"level": "warning"})) == {}
    assert error_code(client.request("logging/setLevel", {"level": "loud"})) == -32602


@pytest.mark.check(
    spec="JSON-RPC 2.0 §5.1 (-32601, -32602); " + SPEC + " server/tools#error-handling",
    hint="the server answers unknown methods or bad arguments with the wrong error: " + REFLASH,
)
def test_error_codes(client: Client) -> None:
    assert error_code(client.request("tools/explode")) == -32601
    assert error_code(client.request("tools/call", {"name": "no_such_tool", "arguments": {}})) == -32602
    assert error_code(client.request("tools/call", {"arguments": {}})) == -32602
    # The board keeps serving after each.
    assert "tools" in result(client.request("tools/list"))


@pytest.mark.check(
    spec="JSON-RPC 2.0 §5.1 (-32700, -32600); stream transports: one message per line or frame",
    hint="the transport passes unparsable messages on, or drops them silently: " + REFLASH,
)
@pytest.mark.parametrize("era", ["handshake"], scope="session")
def test_unreadable_messages(client: Client, transport: str) -> None:
    if transport == "http":
        pytest.skip("over HTTP, test_http.py sends unreadable bodies itself")
    assert error_code(client.send_raw(b"{oops")) == -32700
    assert error_code(client.send_raw(b'{"jsonrpc":"1.0","id":2,"method":"ping"}')) == -32600
    assert result(client.request("ping")) == {}
