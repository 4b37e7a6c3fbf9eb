"""`boardmcp emulate` (what `make emulate` runs) for every board profile: it prints the URL,
console and token, serves MCP, and Ctrl-C stops it and every child process cleanly."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wire import raw_exchange

from host_tools.profiles import list_profiles, load_profile

V = "2026-07-28"

BOARDMCP = Path(sys.executable).with_name("boardmcp")


def _children(pid: int) -> set[int]:
    """Every live descendant of pid, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("board", list_profiles())
def test_emulate_serves_then_stops_cleanly(board: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(BOARDMCP), "emulate", "--board", board, "--workdir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = {}
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        for line in proc.stdout:
            key, _, value = line.partition(":")
            printed[key.strip()] = value.strip()
            if line.startswith("Press Ctrl-C") or time.monotonic() > deadline:
                break
        url = printed["MCP endpoint"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        assert Path(printed["Console (pty)"]).exists()
        token = printed["Auth header"].removeprefix("Authorization: Bearer ")
        port = int(url.split(":")[2].split("/")[0])

        meta = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}
        params = {"name": "system_info", "_meta": meta}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
        request = (
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"MCP-Protocol-Version: {V}\r\nMcp-Method: tools/call\r\nMcp-Name: system_info\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
        )
        status, _, reply = raw_exchange(port, request.encode())
        assert status == 200
        assert reply["result"]["structuredContent"]["chip"] == load_profile(board).chip

        children = _children(proc.pid)
        assert children, "the VM should run as a child"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
        leftovers = [pid for pid in children if _alive(pid)]
        assert not leftovers, f"processes left behind: {leftovers}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
