"""Faults on the emulated board (profile `faults`: the fault fixture tools of
firmware/boardmcp/tools/faults.py): a tool raising, running out of heap, holding the heap full,
hanging the loop (the watchdog), and Wi-Fi dropping and returning.

Sensor faults (a device unplugged, an I2C bus stuck low) belong with the sensor drivers.
"""

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import HEAP_SLACK, SETTLE_S, modern, modern_headers, serves, wait_serving, warm_up
from websockets.sync.client import connect
from wire import Console, post

from host_tools.bench.targets import BenchBoard
from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import load_profile

WATCHDOG_MS = 2000
FRAGMENTED = "fault: heap fragmented"  # fault_hold_heap's line once its holes are in place


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchBoard]:
    """A board with the fault tools, a short watchdog, and the heap probe."""
    bench = BenchBoard(
        load_profile("faults"),
        tmp_path_factory.mktemp("faults"),
        config_options={"watchdog_ms": WATCHDOG_MS},
    )
    with bench:
        warm_up(bench.board)
        # The faults tools module loads on its first call and stays loaded: count it as idle.
        assert call(bench.board, "fault_raise")[1]["result"]["isError"] is True
        yield bench


def call(board: EmulatedBoard, tool: str, arguments: dict | None = None, rid: int = 1) -> tuple[int, dict]:
    body = modern("tools/call", {"name": tool, "arguments": arguments or {}}, rid)
    status, _, reply = post(board, body, modern_headers("tools/call", tool))
    return status, reply


def live(bench: BenchBoard) -> int:
    return bench.stats("u").alloc  # as conftest.Probed.live


def back_to(bench: BenchBoard, idle: int) -> int:
    deadline = time.monotonic() + SETTLE_S
    while (now := live(bench)) > idle + HEAP_SLACK and time.monotonic() < deadline:
        time.sleep(0.25)
    return now


def test_a_raising_tool_is_an_error_result(faulty: BenchBoard) -> None:
    board = faulty.board
    pid, idle = board.pid, live(faulty)
    for rid in range(3):
        status, reply = call(board, "fault_raise", rid=rid)
        result = reply["result"]
        assert status == 200 and result["isError"] is True
        assert "RuntimeError" in result["content"][0]["text"]
    assert board.pid == pid and serves(board)
    assert back_to(faulty, idle) <= idle + HEAP_SLACK


def test_running_out_of_heap_fails_that_request_only(faulty: BenchBoard) -> None:
    """The heap filled to the last block inside a handler: on HTTP, WebSocket and serial the
    request gets -32603, the connection and the board go on, and the heap is freed."""
    board = faulty.board
    pid, idle = board.pid, live(faulty)
    status, reply = call(board, "fault_exhaust_heap", rid=7)
    assert (status, reply["id"], reply["error"]["code"]) == (200, 7, -32603)
    assert "memory" in reply["error"]["message"].lower()
    url = f"ws://127.0.0.1:{board.port}/ws"
    with connect(url, additional_headers={"Authorization": f"Bearer {board.token}"}, open_timeout=10) as ws:
        ws.send('{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"fault_exhaust_heap"}}')
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32603
        ws.send('{"jsonrpc":"2.0","id":9,"method":"ping"}')
        assert json.loads(ws.recv(timeout=10))["id"] == 9
    console = Console(board.console)
    try:
        reply = console.call("tools/call", {"name": "fault_exhaust_heap"}, rid=10)
        assert (reply["id"], reply["error"]["code"]) == (10, -32603)
        assert console.call("ping", rid=11)["result"] == {}
    finally:
        console.close()
    assert board.pid == pid and serves(board)
    assert back_to(faulty, idle) <= idle + HEAP_SLACK


def test_a_full_heap_while_clients_connect(faulty: BenchBoard) -> None:
    """While a handler holds the heap full, new clients get an error, a refusal or a dropped
    connection; the board's accept loop and reaper survive it, so nothing resets and a retrying
    client is served again."""
    board = faulty.board
    pid = board.pid
    holder = threading.Thread(target=lambda: _ignore_errors(call, board, "fault_hold_heap", {"ms": 1500}))
    holder.start()
    time.sleep(0.5)
    for _ in range(5):
        _ignore_errors(serves, board)
    holder.join()
    wait_serving(board)
    assert board.pid == pid, board.console_log[-2000:]
    assert "no longer serving" not in board.console_log


def test_a_fragmented_heap_still_takes_connections(faulty: BenchBoard) -> None:
    """Free heap only in holes smaller than a connection's 2 KB buffer, and the server's spare
    buffer held by a request still arriving: a new connection is served from a smaller one; a
    request head too long for that one is refused as out of memory (503, not 431), and with the
    heap whole again the same request is served."""
    board = faulty.board
    pid, idle = board.pid, live(faulty)
    hold = {"ms": 2500, "holes": 1536}  # every free block smaller than a 2 KB buffer
    holder = threading.Thread(target=lambda: _ignore_errors(call, board, "fault_hold_heap", hold))
    marks = board.console_log.count(FRAGMENTED)
    holder.start()
    deadline = time.monotonic() + 10
    while board.console_log.count(FRAGMENTED) == marks and time.monotonic() < deadline:
        time.sleep(0.05)
    long_head = modern_headers("server/discover") | {"X-Padding": "p" * 1200}
    arriving = socket.create_connection(("127.0.0.1", board.port), timeout=10)
    try:
        arriving.sendall(b"POST /mcp HTTP/1.1\r\n")  # takes the spare buffer, and keeps it
        time.sleep(0.3)
        status, _, _ = post(board, modern("server/discover", rid=21), long_head)
        assert status == 503
        status, reply = call(board, "system_info", rid=22)
        assert (status, reply["id"]) == (200, 22)
        assert reply["result"]["structuredContent"]["heap_free_bytes"] > 0
    finally:
        arriving.close()
        holder.join()
    status, _, reply = post(board, modern("server/discover", rid=23), long_head)
    assert (status, reply["id"]) == (200, 23)
    assert board.pid == pid and serves(board)
    assert back_to(faulty, idle) <= idle + HEAP_SLACK


def _ignore_errors(fn, *args) -> None:
    with contextlib.suppress(OSError, IndexError, KeyError, ValueError):
        fn(*args)


def test_a_hung_loop_is_reset_by_the_watchdog(faulty: BenchBoard) -> None:
    board = faulty.board
    pid = board.pid
    with pytest.raises((OSError, IndexError)):  # the connection dies with the board
        call(board, "fault_hang")
    wait_serving(board)
    assert board.pid != pid
    assert "task_wdt: Task watchdog got triggered" in board.console_log
    assert call(board, "system_info")[1]["result"]["structuredContent"]["board"] == "faults"


def test_ctrl_c_parks_the_watchdog(faulty: BenchBoard) -> None:
    """A user who breaks into the REPL is not reset under their hands by the watchdog."""
    board = faulty.board
    console = Console(board.console)
    try:
        pid = board.pid
        console.port.write(b"\x03")
        assert console.port.read_until(b">>> ").endswith(b">>> ")
        time.sleep(3 * WATCHDOG_MS / 1000)
        console.port.write(b"print(6 * 7)\r")
        assert b"42" in console.port.read_until(b">>> ")
        assert board.pid == pid
        console.port.write(b"import machine; machine.reset()\r")
    finally:
        console.close()
    wait_serving(board)


def test_wifi_drops_and_returns(faulty: BenchBoard) -> None:
    """The access point goes away: the board sees its link lost, retries with growing waits,
    and once the AP is back rejoins by itself; a client retrying meanwhile is served."""
    board = faulty.board
    pid = board.pid
    board.inject_fault("wifi", "down")
    try:
        deadline = time.monotonic() + 30
        while len(re.findall(r"wifi: rejoin failed \(status 201\); next try in (\d+) ms", board.console_log)) < 3:
            assert time.monotonic() < deadline, board.console_log[-2000:]
            time.sleep(0.2)
        waits = [int(w) for w in re.findall(r"next try in (\d+) ms", board.console_log)]
        assert waits[:3] == [1000, 2000, 4000]  # exponential backoff
        assert "wifi: lost 'boardmcp-lab' (status 200)" in board.console_log  # beacon timeout
        wifi = call(board, "system_info")[1]["result"]["structuredContent"]["wifi"]
        assert wifi["connected"] is False
    finally:
        board.inject_fault("wifi", None)
    deadline = time.monotonic() + 30
    while True:
        wifi = call(board, "system_info")[1]["result"]["structuredContent"]["wifi"]
        if wifi["connected"]:
            break
        assert time.monotonic() < deadline, board.console_log[-2000:]
        time.sleep(0.5)
    assert wifi["ssid"] == "boardmcp-lab" and wifi["ip"] == "127.0.0.1"
    assert "wifi: rejoined 'boardmcp-lab' as 127.0.0.1" in board.console_log
    assert board.pid == pid
