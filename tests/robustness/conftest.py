"""Fixtures for the robustness suite: an emulated board whose heap the tests can read.

The board runs the bench's stats probe beside the real firmware (host_tools/bench/board/probe.py):
a side port that reports the VM's heap after a gc.collect(), so every test can check that what
it did left nothing behind. The raw HTTP and WebSocket helpers are tests/integration/wire.py's.
"""

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))

from wire import Console, Stream, open_session, post, ws_frame, ws_read_frame, ws_upgrade

from host_tools.bench.targets import BenchBoard
from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import load_profile

V = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}
MAX_SESSIONS = 4  # firmware/boardmcp/server.py
MAX_CONNECTIONS = 8  # firmware/boardmcp/transport/http.py
# What the heap may differ from idle by after a test (bytes): the GC's view of a live heap
# moves by a few small blocks with where the last request's leftovers happened to land.
HEAP_SLACK = 2048
# How long the board may take to let go of what a test left: refused and cut-off connections
# linger (1 s), idle keep-alive connections time out (IDLE_MS), streams notice their client left.
SETTLE_S = 15
REQUEST_MS = 1500
IDLE_MS = 2000


def modern(method: str, params: dict | None = None, rid: int | str = 1) -> dict:
    """A 2026-07-28 request (with the _meta envelope)."""
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**(params or {}), "_meta": META}}


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    """The routing headers a 2026-07-28 request carries."""
    h = {"MCP-Protocol-Version": V, "Mcp-Method": method}
    if name:
        h["Mcp-Name"] = name
    return h


def wait_serving(board: EmulatedBoard, timeout: float = 30) -> None:
    """Retry, as a client would, until the board answers again (after a reset)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if serves(board):
                return
        except (OSError, IndexError, KeyError):
            pass
        assert time.monotonic() < deadline, "the board did not come back:\n" + board.console_log[-3000:]
        time.sleep(0.2)


def tools_of(board: EmulatedBoard) -> list[dict]:
    """The board's tools, as tools/list gives them."""
    return post(board, modern("tools/list"), modern_headers("tools/list"))[2]["result"]["tools"]


def call_tool(board: EmulatedBoard, name: str, arguments: object) -> tuple[int, dict, dict]:
    """One tools/call over HTTP: (status, headers, reply)."""
    body = modern("tools/call", {"name": name, "arguments": arguments})
    return post(board, body, modern_headers("tools/call", name))


def valid_arguments(schema: dict) -> dict:
    """The least a tool accepts: each required property's first enum value, or a plain value."""
    args = {}
    for name in schema.get("required", ()):
        prop = schema["properties"][name]
        if "enum" in prop:
            args[name] = prop["enum"][0]
        else:
            args[name] = {"integer": prop.get("minimum", 0), "number": 0, "boolean": False}.get(prop.get("type"), "x")
    return args


def serves(board: EmulatedBoard) -> bool:
    """One server/discover on a fresh connection succeeds."""
    status, _, reply = post(board, modern("server/discover", rid="alive"), modern_headers("server/discover"))
    return status == 200 and reply["result"]["supportedVersions"] == [V]


class Probed:
    """The board, its heap figures, and its idle heap (live bytes after a collection)."""

    def __init__(self, bench: BenchBoard) -> None:
        self.bench = bench
        self.board = bench.board
        self.pid = bench.board.pid
        self.idle = 0

    def live(self) -> int:
        """Bytes in use on the board once its loadable code is unloaded, its spare HTTP request
        buffer dropped and the heap collected. Both are the firmware's caches at work (which
        tools modules a test leaves loaded; whether its last request got a full-size buffer),
        not a leak."""
        return self.bench.stats("u").alloc

    def settle_idle(self) -> int:
        """The idle heap, once warm-up's connections have timed out."""
        time.sleep(IDLE_MS / 1000 + 1.5)
        self.bench.stats("d")  # what is loaded at idle, in the console log for unharmed()
        return min(self.live() for _ in range(3))

    def loaded(self) -> str:
        """The console's last two lists of loaded firmware modules (at idle, and now)."""
        self.bench.stats("d")
        time.sleep(0.2)  # the console relay writes the log
        return "\n".join([ln for ln in self.board.console_log.splitlines() if ln.startswith("probe: ")][-2:])

    def settle(self) -> int:
        """Wait (bounded) until the heap is back to idle; return the last reading."""
        deadline = time.monotonic() + SETTLE_S
        while (now := self.live()) > self.idle + HEAP_SLACK and time.monotonic() < deadline:
            time.sleep(0.25)
        return now


@pytest.fixture(scope="session")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probed]:
    """A default board (esp32s3) with the heap probe and short timeouts, warmed up: every
    transport used once and the session table full, so what stays loaded counts as idle."""
    workdir = tmp_path_factory.mktemp("robust")
    options = {"request_timeout_ms": REQUEST_MS, "idle_timeout_ms": IDLE_MS}
    bench = BenchBoard(load_profile("esp32s3"), workdir, http_options=options)
    with bench:
        p = Probed(bench)
        warm_up(p.board)
        p.idle = p.settle_idle()
        # Tools modules load on first use and stay loaded until the heap runs low (then all are
        # unloaded), so which are loaded after a test depends on what it called: idle is the
        # most the heap held while every tool was called once, in turn.
        for tool in tools_of(p.board):
            assert call_tool(p.board, tool["name"], valid_arguments(tool["inputSchema"]))[0] == 200
            p.idle = max(p.idle, p.live())
        yield p


def warm_up(board: EmulatedBoard) -> None:
    """Use every transport once and fill the session table: what stays loaded is idle. A
    failure carries the board's console, where a reset or a traceback shows."""
    try:
        _warm_up(board)
    except (AssertionError, OSError) as e:
        raise AssertionError(f"warm-up failed ({e!r}); the board's console ends:\n{board.console_log[-3000:]}") from e


def _warm_up(board: EmulatedBoard) -> None:
    # First (nothing else open yet): the connection table full and as many refusals lingering,
    # so what grows with concurrency (the scheduler's poll set, the connection and lingering
    # lists) has grown, and stays so.
    held = [
        Stream(board).send(modern("server/discover"), modern_headers("server/discover")) for _ in range(MAX_CONNECTIONS)
    ]
    for stream in held:
        assert stream.status == 200 and stream.json()["result"]
    refused = [socket.create_connection(("127.0.0.1", board.port), timeout=10) for _ in range(MAX_CONNECTIONS)]
    for s in refused:
        assert s.recv(12) == b"HTTP/1.1 503"
    for s in held + refused:
        s.close()
    # Until the board has seen those go: a request meanwhile may be refused, and past the
    # lingering limit a refusal is closed at once (a reset, as the client had sent its request).
    wait_serving(board)
    for _ in range(MAX_SESSIONS):
        session = open_session(board)
        assert post(board, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, session)[0] == 200
    assert serves(board)
    # Every list, and a call into every tools module: a module's first load interns its names
    # for good (qstrs), so idle comes after each has loaded once. Read-only tools, and the LED.
    for method in ("tools/list", "resources/list", "resources/templates/list", "prompts/list"):
        assert post(board, modern(method), modern_headers(method))[0] == 200
    tools = tools_of(board)
    calls = [(t["name"], valid_arguments(t["inputSchema"])) for t in tools if t["annotations"]["readOnlyHint"]]
    for name, arguments in [*calls, ("led", {"state": "toggle"})]:
        assert call_tool(board, name, arguments)[0] == 200
    # A GET stream and a listen stream (the first listen loads what listeners need, ~3 KB).
    Stream(board).send(None, open_session(board), method="GET").close()
    listen = modern("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    stream = Stream(board).send(listen, modern_headers("subscriptions/listen"))
    assert stream.event()["method"] == "notifications/subscriptions/acknowledged"
    stream.close()
    s, head = ws_upgrade(board)
    assert head.startswith(b"HTTP/1.1 101 "), head
    with s:
        s.sendall(ws_frame(1, b'{"jsonrpc":"2.0","id":1,"method":"ping"}'))
        assert ws_read_frame(s, head.partition(b"\r\n\r\n")[2])[0] == 1
    console = Console(board.console)
    try:
        assert console.call("ping", rid="warm")["result"] == {}
    finally:
        console.close()


@pytest.fixture
def board(probed: Probed) -> Iterator[EmulatedBoard]:
    """The probed board for one test, checked afterwards (see unharmed)."""
    yield fresh(probed)
    unharmed(probed)


def fresh(probed: Probed) -> EmulatedBoard:
    """The probed board, warmed up again if an earlier test reset it (and failed for it)."""
    if probed.board.pid != probed.pid:
        wait_serving(probed.board)
        warm_up(probed.board)
        probed.pid = probed.board.pid
        probed.idle = probed.settle_idle()
    return probed.board


def unharmed(probed: Probed) -> None:
    """The same VM as before the test (no crash or reset), still serving, heap back to idle."""
    assert probed.board.pid == probed.pid, "the board reset during the test:\n" + probed.board.console_log[-2000:]
    wait_serving(probed.board, timeout=10)  # a 503 while the test's connections wind down is retried
    live = probed.settle()
    assert live <= probed.idle + HEAP_SLACK, f"heap {live} B after the test, idle {probed.idle} B\n{probed.loaded()}"
