"""`boardmcp bench --soak`: many mixed requests over HTTP, WebSocket and serial against an emulated
board at a profile's heap, every answer checked, the live heap read all along.

    result = run_soak(SoakOptions(board="esp32", requests=20000), progress=print)
    result.failures, result.windows[-1].live

Five clients run at once, each on its own thread and connection: HTTP keep-alive in each protocol
era, HTTP with a new connection per request, a WebSocket, and the serial console. Each first makes
WARM_UP requests (uncounted), then all take requests from one shared count, cycling through
tools/list, tools/call (system_info, led), discover or ping. After every `window` requests the heap
is read while no request is in flight (the bench's stats probe), once the firmware's caches are
dropped (its loaded tools modules and spare request buffer, as a full heap drops them) and a
gc.collect() has run: a leak shows as a live heap that keeps rising from window to window, and
fragmentation as a largest free block that keeps shrinking. (With
the caches, the reading jumped by 1.5 KB from window to window with whether a tools module
happened to be loaded, which no median over a few windows hides.)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import serial
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from host_tools.bench.client import HANDSHAKE, MODERN, BenchClientError, Speaker, check_result, parse_response
from host_tools.bench.targets import BenchBoard
from host_tools.profiles import load_profile, repo_root

Progress = Callable[[str], None]
_META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
# The live heap's typical reading may rise by this much over the run and still count as flat: the
# GC's view moves by a few small blocks with where the last request's leftovers landed.
FLAT_SLACK = 1024
TIMEOUT_S = 5  # a request unanswered this long has failed
WARM_UP = 12  # requests each client makes before the soak (every kind at least twice)


def default_out() -> Path:
    """Where `make soak` writes its report (docs/BENCHMARKS.md quotes its summary)."""
    return repo_root() / "docs" / "SOAK.md"


@dataclass(frozen=True)
class SoakOptions:
    """What to run and where to write it."""

    board: str = "esp32"
    requests: int = 20000
    window: int = 1000
    out_md: Path | None = field(default_factory=default_out)
    workdir: Path = field(default_factory=lambda: repo_root() / "build" / "soak")
    command: str = "make soak"


@dataclass(frozen=True)
class Window:
    """The heap after `done` requests: live bytes once caches are dropped and a collection has
    run, free bytes, and the largest of the free blocks (what the biggest allocation can have: a
    heap that fragments loses it while its free bytes stay)."""

    done: int
    live: int
    free: int
    largest_free: int
    elapsed_s: float


@dataclass
class SoakResult:
    """What one soak did and saw."""

    options: SoakOptions
    heap_bytes: int = 0
    idle: int = 0
    by_client: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def done(self) -> int:
        """Requests answered (successfully or not)."""
        return sum(self.by_client.values())

    @property
    def growth(self) -> int:
        """The live heap's median over the last quarter of the windows less its median over the
        first quarter (bytes); a leak raises it. The GC is conservative: a stale pointer now
        and then keeps a dead block (up to ~12 KB measured) or lets one go, so a single reading
        may stray either way, and the median is what the server keeps."""
        if not self.windows:
            return 0
        quarter = max(1, len(self.windows) // 4)
        first = statistics.median_low(w.live for w in self.windows[:quarter])
        return statistics.median_low(w.live for w in self.windows[-quarter:]) - first

    @property
    def flat(self) -> bool:
        """The live heap's median did not grow by more than FLAT_SLACK."""
        return bool(self.windows) and self.growth <= FLAT_SLACK

    @property
    def passed(self) -> bool:
        """Every request answered successfully and the heap stayed flat."""
        return not self.failures and self.done == self.options.requests and self.flat


class _Counter:
    """The shared request budget, and the hook that samples the heap every `window` requests.

    A client calls `take()` before each request, so a call also says its previous request is
    answered. The sample waits until no request is in flight: the heap it reads holds what the
    server keeps, not whatever five clients happened to have half-served at that instant."""

    def __init__(self, total: int, window: int, on_window: Callable[[int], None]) -> None:
        self.total = total
        self.window = window
        self.issued = 0
        self.by_client: dict[str, int] = {}  # requests taken, by the taking thread's name
        self.busy: set[str] = set()  # threads with a request in flight
        self.sampling = False
        self.cond = threading.Condition()
        self.on_window = on_window

    def take(self) -> bool:
        """Whether the calling client may make one more request (False: the budget is spent)."""
        name = threading.current_thread().name
        with self.cond:
            self._leave_locked(name)
            self.cond.wait_for(lambda: not self.sampling)
            if self.issued >= self.total:
                return False
            self.issued += 1
            self.by_client[name] = self.by_client.get(name, 0) + 1
            if self.issued % self.window == 0:
                self.sampling = True
                self.cond.wait_for(lambda: not self.busy)
                try:
                    self.on_window(self.issued)
                finally:
                    self.sampling = False
                    self.cond.notify_all()
            self.busy.add(name)
            return True

    def leave(self) -> None:
        """The calling client makes no more requests (it ended, or failed in its own way)."""
        with self.cond:
            self._leave_locked(threading.current_thread().name)

    def _leave_locked(self, name: str) -> None:
        self.busy.discard(name)
        self.cond.notify_all()


def _check_message(reply: dict[str, Any], rid: object) -> None:
    if reply.get("id") != rid or "error" in reply or reply.get("result", {}).get("isError"):
        raise BenchClientError(json.dumps(reply)[:300])


def _http_client(bench: BenchBoard, era: str, reconnect: bool) -> Callable[[_Counter, Callable[[str], None]], int]:
    speaker = Speaker(bench.endpoint, era)
    speaker.open()
    hello = "server/discover" if era == MODERN else "ping"
    cycle = [
        speaker.request("tools/list", {}, close=reconnect),
        speaker.request("tools/call", {"name": "system_info", "arguments": {}}, close=reconnect),
        speaker.request("tools/call", {"name": "led", "arguments": {"state": "toggle"}}, close=reconnect),
        speaker.request(hello, {}, close=reconnect),
    ]

    def run(counter: _Counter, fail: Callable[[str], None]) -> int:
        done = 0
        sock: socket.socket | None = None
        buf = bytearray()
        while counter.take():
            request = cycle[done % len(cycle)]
            done += 1
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", bench.endpoint.port), timeout=TIMEOUT_S)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(request)
                while (parsed := parse_response(buf)) is None:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise BenchClientError("connection closed before the response")
                    buf += chunk
                status, _, body, used, closes = parsed
                del buf[:used]
                check_result(status, body)
                if closes:
                    sock.close()
                    sock = None
            except (OSError, BenchClientError, ValueError) as exc:
                fail(f"http {era}{' new connection' if reconnect else ''}: {exc}")
                if sock is not None:
                    sock.close()
                sock, buf = None, bytearray()
        if sock is not None:
            sock.close()
        return done

    return run


def _messages(modern: bool) -> list[tuple[str, dict[str, Any]]]:
    hello = ("server/discover", {}) if modern else ("ping", {})
    out = [("tools/list", {}), ("tools/call", {"name": "system_info", "arguments": {}}), hello]
    if modern:
        out = [(m, {**p, "_meta": _META}) for m, p in out]
    return out


def _ws_client(bench: BenchBoard) -> Callable[[_Counter, Callable[[str], None]], int]:
    def run(counter: _Counter, fail: Callable[[str], None]) -> int:
        url = f"ws://127.0.0.1:{bench.endpoint.port}/ws"
        auth = {"Authorization": f"Bearer {bench.endpoint.token}"}
        cycle = _messages(True) + _messages(False)
        done = 0

        def exchange(ws: ClientConnection, method: str, params: dict[str, Any]) -> bool:
            # One request and its answer; False once the board has closed the connection.
            try:
                ws.send(json.dumps({"jsonrpc": "2.0", "id": done, "method": method, "params": params}))
                _check_message(_answer(functools.partial(_ws_reply, ws), done), done)
            except (OSError, WebSocketException, BenchClientError, ValueError) as exc:
                fail(f"websocket: {exc}")
                return ws.protocol.close_code is None
            return True

        more = counter.take()
        while more:
            try:
                with connect(url, additional_headers=auth) as ws:
                    while more:
                        done += 1
                        more = counter.take()  # the next request's turn, whatever becomes of this one
                        if not exchange(ws, *cycle[(done - 1) % len(cycle)]):
                            break  # the board closed it: the next request opens another
            except (OSError, WebSocketException) as exc:  # connecting failed: that request failed
                done += 1
                fail(f"websocket: {exc}")
                more = counter.take()
        return done

    return run


def _serial_client(bench: BenchBoard) -> Callable[[_Counter, Callable[[str], None]], int]:
    def run(counter: _Counter, fail: Callable[[str], None]) -> int:
        cycle = _messages(True) + _messages(False)
        done = 0
        port = serial.Serial(bench.board.console, timeout=TIMEOUT_S)
        try:
            port.reset_input_buffer()
            while counter.take():
                method, params = cycle[done % len(cycle)]
                done += 1
                message = {"jsonrpc": "2.0", "id": done, "method": method, "params": params}
                port.write(json.dumps(message).encode() + b"\n")
                try:
                    _check_message(_answer(functools.partial(_read_reply, port), done), done)
                except (OSError, BenchClientError, ValueError) as exc:
                    fail(f"serial: {exc}")
        finally:
            port.close()
        return done

    return run


def _answer(read: Callable[[], dict[str, Any]], rid: int) -> dict[str, Any]:
    # The reply to request `rid`, as a client matches replies by id: a late reply to an earlier
    # request (one that timed out here) is skipped, not taken for this one.
    while True:
        reply = read()
        if not (isinstance(reply.get("id"), int) and reply["id"] < rid):
            return reply


def _ws_reply(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=TIMEOUT_S))


def _read_reply(port: serial.Serial) -> dict[str, Any]:
    # The next JSON-RPC line; anything else on the console (prints) is skipped.
    while True:
        line = port.readline()
        if not line.endswith(b"\n"):
            raise BenchClientError(f"no answer on the console within {TIMEOUT_S} s")
        if line.startswith(b"{"):
            msg = json.loads(line)
            if isinstance(msg, dict) and msg.get("jsonrpc") == "2.0":
                return msg


def run_soak(options: SoakOptions, progress: Progress) -> SoakResult:
    """Boot the board, run the soak, write the report (if `out_md`); return what was seen."""
    profile = load_profile(options.board)
    result = SoakResult(options, heap_bytes=profile.heap_bytes)
    bench = BenchBoard(profile, options.workdir)
    progress(f"soak: booting {profile.name} ({profile.heap_bytes:,} B heap)")
    with bench:
        clients = {
            "HTTP keep-alive, 2026-07-28": _http_client(bench, MODERN, False),
            "HTTP keep-alive, 2025-11-25": _http_client(bench, HANDSHAKE, False),
            "HTTP new connection each": _http_client(bench, MODERN, True),
            "WebSocket": _ws_client(bench),
            "serial console": _serial_client(bench),
        }
        started = time.perf_counter()

        def sample(done: int) -> None:
            stats = bench.stats("f")
            window = Window(done, stats.alloc, stats.free, stats.largest_free, time.perf_counter() - started)
            result.windows.append(window)
            progress(
                f"soak: {done:>6,} requests, live heap {window.live:,} B, free {window.free:,} B "
                f"(largest block {window.largest_free:,} B)"
            )

        def go() -> None:
            # Every client has warmed up (what loads on first use is loaded): the soak starts.
            nonlocal started
            result.idle = bench.stats("u").alloc
            started = time.perf_counter()

        counter = _Counter(options.requests, options.window, sample)
        ready = threading.Barrier(len(clients), action=go)
        lock = threading.Lock()

        def fail(why: str) -> None:
            with lock:
                result.failures.append(why)

        def work(client: Callable[[_Counter, Callable[[str], None]], int]) -> None:
            try:
                try:
                    client(_Counter(WARM_UP, WARM_UP + 1, lambda _done: None), fail)  # uncounted
                finally:
                    ready.wait()
                client(counter, fail)
            except Exception as exc:  # a client library failing in its own way ends that client, noted
                fail(f"{threading.current_thread().name} stopped: {type(exc).__name__}: {exc}")
            finally:
                counter.leave()

        threads = [threading.Thread(target=work, args=(client,), name=name) for name, client in clients.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result.by_client = dict(counter.by_client)
        result.wall_s = time.perf_counter() - started
    verdict = "passed" if result.passed else "FAILED"
    progress(
        f"soak {verdict}: {result.done:,} requests in {result.wall_s:.1f} s, {len(result.failures)} failed, "
        f"live heap median {result.growth:+,} B from the first quarter to the last"
    )
    for why in result.failures[:5]:
        progress(f"  {why}")
    if options.out_md is not None:
        options.out_md.write_text(report(result))
        progress(f"soak: wrote {options.out_md}")
    return result


def report(result: SoakResult) -> str:
    """The soak's figures as Markdown (docs/SOAK.md)."""
    o = result.options
    lines = [
        "# Soak",
        "",
        f"`{o.command}` ({time.strftime('%Y-%m-%d')}): {o.requests:,} mixed requests against the emulated "
        f"`{o.board}` board at its heap ({result.heap_bytes:,} B), five clients at once, every answer checked. "
        "Written by host_tools/bench/soak.py.",
        "",
        f"- **Result: {'passed' if result.passed else 'FAILED'}** — {result.done:,} answered, "
        f"{len(result.failures):,} failed, in {result.wall_s:.1f} s "
        f"({result.done / max(result.wall_s, 1e-9):,.0f} req/s).",
        f"- **Live heap** (caches dropped, after a collection): {result.idle:,} B once the clients had warmed up; "
        f"its median moved {result.growth:+,} B from the first quarter of the run to the last "
        f"({'flat' if result.flat else 'GROWING'}: allowed {FLAT_SLACK} B).",
        *_fragmentation(result),
        "",
        "| client | requests |",
        "|---|---:|",
        *[f"| {name} | {n:,} |" for name, n in result.by_client.items()],
        "",
        "| after requests | live heap (B) | free heap (B) | largest free block (B) | elapsed (s) |",
        "|---:|---:|---:|---:|---:|",
        *[f"| {w.done:,} | {w.live:,} | {w.free:,} | {w.largest_free:,} | {w.elapsed_s:.1f} |" for w in result.windows],
    ]
    if result.failures:
        lines += ["", f"First failures ({len(result.failures)} in all):", ""]
        lines += [f"- {why}" for why in result.failures[:10]]
    return "\n".join(lines) + "\n"


def _fragmentation(result: SoakResult) -> list[str]:
    # The report's line on the largest free block, first window against last.
    if not result.windows:
        return []
    first, last = result.windows[0], result.windows[-1]
    return [
        f"- **Largest free block** (what the biggest allocation can have): {first.largest_free:,} B of "
        f"{first.free:,} B free after {first.done:,} requests, {last.largest_free:,} B of {last.free:,} B "
        f"after {last.done:,}."
    ]


def with_requests(options: SoakOptions, requests: int) -> SoakOptions:
    """The same soak with another request count (the window shrinks to keep ~20 samples)."""
    return dataclasses.replace(options, requests=requests, window=max(50, requests // 20))
