"""`boardmcp gateway` in front of emulated boards on a real Mosquitto, driven by the official SDK
client in both eras: namespaced tools routed to the right board, fan-out, boards appearing and
vanishing (tools/list_changed, subscriptions/listen), resource subscriptions across reboots and
reconnects, auth; and 20 boards at once."""

import asyncio
import contextlib
import json
import warnings
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from host_tools.emulator.runner import EmulatedBoard
from host_tools.gateway.broker import Mosquitto
from host_tools.gateway.process import GatewayProcess
from host_tools.official_suite import OfficialSuiteError, Runner, ScenarioRun, locate_suites, scenario_runs
from host_tools.profiles import load_profile

MODES = {"auto": "2026-07-28", "legacy": "2025-11-25"}
# Begins with "-", as a generated urlsafe token may: it must reach the gateway as a value, not an option.
TOKEN = "-gateway-test-token"
WAIT_S = 60.0  # generous: 2 shared cores


def _board(broker: Mosquitto, workdir: Path, name: str, profile: str = "esp32s3") -> EmulatedBoard:
    mqtt = {"broker": "127.0.0.1", "port": broker.port, "server_id": f"id-{name}", "server_name": f"boardmcp/{name}"}
    return EmulatedBoard(load_profile(profile), workdir=workdir / name, mqtt=mqtt)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as b:
        yield b


@pytest.fixture(scope="module")
def fleet(broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, EmulatedBoard]]:
    """Two boards of different chips, so a result shows which board answered."""
    workdir = tmp_path_factory.mktemp("fleet")
    boards = {"alpha": _board(broker, workdir, "alpha", "esp32s3"), "beta": _board(broker, workdir, "beta", "esp32c3")}
    with contextlib.ExitStack() as stack:
        for b in boards.values():
            stack.enter_context(b)
        yield boards


@pytest.fixture(scope="module")
def gateway(
    broker: Mosquitto, fleet: dict[str, EmulatedBoard], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with GatewayProcess(broker.port, tmp_path_factory.mktemp("gateway"), token=TOKEN) as gw:
        yield gw


async def _session(
    url: str, mode: str, fn: Callable[[Client], Awaitable[Any]], token: str | None = TOKEN, **kw: Any
) -> Any:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"} if token else {})
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, **kw) as client:
        return await fn(client)


def run(gw: GatewayProcess, mode: str, fn: Callable[[Client], Awaitable[Any]], **kw: Any) -> Any:
    return asyncio.run(_session(gw.url, mode, fn, **kw))


async def _tools(client: Client, until: Callable[[set[str]], bool]) -> set[str]:
    """Tool names, once `until` holds for them (boards are discovered asynchronously)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            names = {t.name for t in (await client.list_tools()).tools}
            if until(names):
                return names
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("mode", MODES)
def test_tools_are_namespaced_and_routed(gateway: GatewayProcess, mode: str) -> None:
    async def check(c: Client) -> None:
        assert c.protocol_version == MODES[mode]
        names = await _tools(c, lambda n: {"alpha.system_info", "beta.system_info"} <= n)
        assert {"alpha.led", "beta.led", "all.system_info", "all.led", "boards"} <= names
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert tools["alpha.led"].input_schema["properties"]["state"]["enum"] == ["on", "off", "toggle"]
        assert tools["alpha.system_info"].annotations.read_only_hint is True
        alpha = await c.call_tool("alpha.system_info", {})
        beta = await c.call_tool("beta.system_info", {})
        assert alpha.structured_content["chip"] == "esp32s3" and beta.structured_content["chip"] == "esp32c3"
        bad = await c.call_tool("alpha.led", {"state": "blink"})
        assert bad.is_error  # the board's own argument check, through the gateway
        with pytest.raises(MCPError):
            await c.call_tool("gamma.led", {"state": "on"})

    run(gateway, mode, check)


@pytest.mark.parametrize("mode", MODES)
def test_fan_out_calls_every_board(gateway: GatewayProcess, mode: str) -> None:
    async def check(c: Client) -> None:
        await _tools(c, lambda n: {"alpha.led", "beta.led"} <= n)
        await c.call_tool("alpha.led", {"state": "on"})
        await c.call_tool("beta.led", {"state": "off"})
        toggled = await c.call_tool("all.led", {"state": "toggle"})
        assert {k: v["on"] for k, v in toggled.structured_content.items()} == {"alpha": False, "beta": True}
        infos = await c.call_tool("all.system_info", {})
        assert {k: v["chip"] for k, v in infos.structured_content.items()} == {"alpha": "esp32s3", "beta": "esp32c3"}
        boards = (await c.call_tool("boards", {})).structured_content["boards"]
        assert [(b["name"], b["server_id"]) for b in boards] == [("alpha", "id-alpha"), ("beta", "id-beta")]

    run(gateway, mode, check)


def test_a_token_is_required(gateway: GatewayProcess) -> None:
    r = httpx2.post(gateway.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"]

    async def check(c: Client) -> None:
        await c.list_tools()

    with pytest.raises(Exception):  # noqa: B017 (the SDK reports the 401 its own way)
        asyncio.run(_session(gateway.url, "legacy", check, token="wrong"))


def test_boards_appearing_and_vanishing_change_the_list(
    broker: Mosquitto, gateway: GatewayProcess, tmp_path: Path
) -> None:
    async def check(c: Client, notes: asyncio.Queue[str]) -> None:
        await _tools(c, lambda n: "alpha.led" in n)
        gamma = _board(broker, tmp_path, "gamma", "esp32c3")
        await asyncio.to_thread(gamma.start)
        try:
            assert await asyncio.wait_for(notes.get(), WAIT_S) == "notifications/tools/list_changed"
            await _tools(c, lambda n: {"gamma.led", "gamma.system_info"} <= n)
            assert (await c.call_tool("gamma.system_info", {})).structured_content["chip"] == "esp32c3"
        finally:
            await asyncio.to_thread(gamma.stop)  # killed: the broker publishes its will
        while await asyncio.wait_for(notes.get(), WAIT_S) != "notifications/tools/list_changed":
            pass
        names = await _tools(c, lambda n: not any(x.startswith("gamma.") for x in n))
        assert "alpha.led" in names

    notes: asyncio.Queue[str] = asyncio.Queue()

    async def on_message(message: Any) -> None:
        method = getattr(message, "method", None)
        if isinstance(method, str):
            await notes.put(method)

    run(gateway, "legacy", lambda c: check(c, notes), message_handler=on_message)


def test_modern_clients_hear_of_changes_on_a_listen_stream(
    broker: Mosquitto, gateway: GatewayProcess, tmp_path: Path
) -> None:
    async def check(c: Client) -> None:
        await _tools(c, lambda n: "alpha.led" in n)
        async with c.listen(tools_list_changed=True) as sub:
            delta = _board(broker, tmp_path, "delta", "esp32c3")
            await asyncio.to_thread(delta.start)
            try:
                async with asyncio.timeout(WAIT_S):
                    event = await anext(aiter(sub))
                assert type(event).__name__ == "ToolsListChanged"
                await _tools(c, lambda n: "delta.led" in n)
            finally:
                await asyncio.to_thread(delta.stop)

    run(gateway, "auto", check)


def test_over_tls_with_credentials(tmp_path: Path) -> None:
    """A broker that speaks only TLS and wants a password: the board (verifying the broker with the
    CA in its `tls` options) and the gateway (`--ca`, `--username`, `--password`) both get through."""
    users = {"board": "board-pw", "gateway": "gateway-pw"}
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(tmp_path / "broker", users=users, tls=True))
        mqtt = {
            "broker": "127.0.0.1",
            "port": broker.port,
            "tls": {"ca": str(broker.ca_der)},  # the VM runs on the host: a host path is a board path
            "username": "board",
            "password": "board-pw",
            "server_name": "boardmcp/sealed",
        }
        stack.enter_context(EmulatedBoard(load_profile("esp32c3"), workdir=tmp_path / "sealed", mqtt=mqtt))
        options = ("--ca", str(broker.ca), "--username", "gateway", "--password", "gateway-pw")
        gw = stack.enter_context(GatewayProcess(broker.port, tmp_path / "gateway", broker_options=options))

        async def check(c: Client) -> None:
            await _tools(c, lambda n: "sealed.system_info" in n)
            assert (await c.call_tool("sealed.system_info", {})).structured_content["chip"] == "esp32c3"

        try:
            asyncio.run(_session(gw.url, "legacy", check, token=None))
        except BaseException:
            print(gw.log[-3000:], broker.log[-3000:])  # shown with the failure
            raise


def test_subscriptions_outlive_a_board_reboot_and_a_broker_restart(tmp_path: Path) -> None:
    """A handshake-era client's resources/subscribe and a 2026-07-28 client's listen stream on a
    board's sensor keep bringing notifications/resources/updated after the board reboots (a new
    MCP session, none of the old subscriptions) and after the broker restarts (board and gateway
    both reconnect): the gateway subscribes again on the board."""
    uri = "board://eps/sensor://bh1750"
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(tmp_path / "broker"))
        board = stack.enter_context(_board(broker, tmp_path, "eps", "esp32s3"))
        gw = stack.enter_context(GatewayProcess(broker.port, tmp_path / "gateway"))
        legacy_updates: asyncio.Queue[str] = asyncio.Queue()
        modern_updates: asyncio.Queue[str] = asyncio.Queue()

        async def on_message(message: Any) -> None:
            if getattr(message, "method", None) == "notifications/resources/updated":
                await legacy_updates.put(str(message.params.uri))

        async def lit(c: Client, updates: asyncio.Queue[str], lux: float) -> None:
            # Updates until a read after one shows the sensor at `lux` (the first reading of a
            # new subscription is an update too, with whatever the sensor sees then).
            async with asyncio.timeout(WAIT_S):
                while True:
                    assert await updates.get() == uri
                    reading = json.loads((await c.read_resource(uri)).contents[0].text)
                    if abs(reading["illuminance"] - lux) < 50:
                        return

        async def change(legacy: Client, modern: Client, lux: float) -> None:
            for q in (legacy_updates, modern_updates):
                while not q.empty():
                    q.get_nowait()  # from before the disruption: not evidence of a subscription now
            board.set_environment("bh1750", {"lux": lux})
            await asyncio.gather(lit(legacy, legacy_updates, lux), lit(modern, modern_updates, lux))

        async def check() -> None:
            # The SDK's own HTTP clients: their read timeout outlasts a standalone stream's quiet spells.
            async with (
                Client(streamable_http_client(gw.url), mode="legacy", message_handler=on_message) as legacy,
                Client(streamable_http_client(gw.url), mode="auto") as modern,
            ):
                await _tools(legacy, lambda n: "eps.read_bh1750" in n)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", MCPDeprecationWarning)  # the handshake era's way
                    await legacy.subscribe_resource(uri)
                async with modern.listen(resource_subscriptions=[uri]) as sub:

                    async def relay() -> None:
                        async for event in sub:
                            await modern_updates.put(str(getattr(event, "uri", "")))

                    relay_task = asyncio.create_task(relay())
                    try:
                        await change(legacy, modern, 1000)
                        await asyncio.to_thread(board.stop)  # killed: the broker publishes its will
                        await asyncio.to_thread(board.start, 30.0)
                        await change(legacy, modern, 600)
                        await asyncio.to_thread(broker.restart)
                        await change(legacy, modern, 1500)
                    finally:
                        relay_task.cancel()

        try:
            asyncio.run(check())
        except BaseException:
            print(gw.log[-6000:])  # shown with the failure
            raise


def test_twenty_boards(tmp_path: Path) -> None:
    """All discovered; every call reaches its own board; one killed mid-run takes only its tools."""
    names = [f"b{i:02d}" for i in range(20)]
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(4) as pool:
        broker = stack.enter_context(Mosquitto(tmp_path / "broker"))  # its own: only these boards on it
        boards = {n: _board(broker, tmp_path, n, "esp32c3") for n in names}
        for b in boards.values():
            stack.callback(b.stop)
        list(pool.map(lambda b: b.start(30.0), boards.values()))
        gw = stack.enter_context(GatewayProcess(broker.port, tmp_path / "gateway"))

        async def check(c: Client) -> None:
            await _tools(c, lambda t: all(f"{n}.led" in t for n in names))
            # Even boards on, odd boards off, each through its own name; a fan-out toggle shows each got its own.
            states = {n: "on" if i % 2 == 0 else "off" for i, n in enumerate(names)}
            await asyncio.gather(*(c.call_tool(f"{n}.led", {"state": s}) for n, s in states.items()))
            toggled = (await c.call_tool("all.led", {"state": "toggle"})).structured_content
            assert {k: v["on"] for k, v in toggled.items()} == {n: s == "off" for n, s in states.items()}

            victim = "b07"
            survivors = [n for n in names if n != victim]

            async def traffic() -> list[Any]:
                out = []
                for _ in range(3):
                    out += await asyncio.gather(*(c.call_tool(f"{n}.system_info", {}) for n in survivors))
                return out

            calls = asyncio.create_task(traffic())
            await asyncio.to_thread(boards[victim].stop)
            results = await calls
            assert len(results) == 3 * len(survivors) and not any(r.is_error for r in results)
            remaining = await _tools(c, lambda t: not any(x.startswith(victim + ".") for x in t))
            assert all(f"{n}.led" in remaining for n in survivors)
            infos = (await c.call_tool("all.system_info", {})).structured_content
            assert sorted(infos) == survivors

        try:
            asyncio.run(_session(gw.url, "legacy", check, token=None))
        except BaseException:
            print(gw.log[-6000:])  # shown with the failure
            for n, b in boards.items():  # and the console of any board the gateway never listed
                if f"boardmcp/{n} (" not in gw.log:
                    print(f"--- console of {n}:\n{b.console_log[-1500:]}")
            raise


# -- the official conformance suites against the gateway ------------------------------------------

# Every non-extension scenario must pass through the gateway, run with `--expose` on a board of the
# conformance profile (it carries the suites' fixtures), behind the module's two other boards.
CONFORMANCE = "conformance"


def _suite_runs() -> list[ScenarioRun]:
    try:
        return [r for s in locate_suites() for r in scenario_runs(s) if not r.extension]
    except OfficialSuiteError:
        return []  # test_official_suites.py::test_suites_are_installed says what is missing


RUNS = _suite_runs()


@pytest.fixture(scope="module")
def suite_runner(
    broker: Mosquitto, fleet: dict[str, EmulatedBoard], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runner]:
    """The gateway without a token (the suites cannot send one), exposing the conformance board."""
    workdir = tmp_path_factory.mktemp("suites")
    with (
        _board(broker, workdir, CONFORMANCE, CONFORMANCE),
        GatewayProcess(broker.port, workdir / "gateway", expose=CONFORMANCE) as gw,
    ):

        async def discovered(c: Client) -> None:
            await _tools(c, lambda n: {"alpha.led", "beta.led", "test_simple_text"} <= n)

        asyncio.run(_session(gw.url, "legacy", discovered, token=None))
        yield Runner(locate_suites(), gw.url)


@pytest.mark.parametrize("run", RUNS, ids=[f"{r.suite}-{r.scenario}-{r.spec_version or 'default'}" for r in RUNS])
def test_official_suite_scenario(suite_runner: Runner, run: ScenarioRun) -> None:
    result = suite_runner.result(run)
    if not result.passed:
        pytest.fail(result.report(), pytrace=False)


@pytest.mark.parametrize("mode", MODES)
def test_namespaced_prompts_and_resources(suite_runner: Runner, mode: str) -> None:
    """The conformance board's prompts and resources under its prefix, beside the bare ones."""

    async def check(c: Client) -> None:
        prefix = f"{CONFORMANCE}."
        prompts = {p.name for p in (await c.list_prompts()).prompts}
        assert {"test_simple_prompt", prefix + "test_simple_prompt"} <= prompts
        got = await c.get_prompt(prefix + "test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
        assert "a" in got.messages[0].content.text
        uri = f"board://{CONFORMANCE}/test://static-text"
        assert uri in {str(r.uri) for r in (await c.list_resources()).resources}
        read = await c.read_resource(uri)
        assert str(read.contents[0].uri) == uri and read.contents[0].text
        templates = {t.uri_template for t in (await c.list_resource_templates()).resource_templates}
        assert f"board://{CONFORMANCE}/test://template/{{id}}/data" in templates
        data = await c.read_resource(f"board://{CONFORMANCE}/test://template/42/data")
        assert "42" in data.contents[0].text
        with pytest.raises(MCPError):
            await c.read_resource("board://gamma/test://static-text")

    asyncio.run(_session(suite_runner.url, mode, check, token=None))
