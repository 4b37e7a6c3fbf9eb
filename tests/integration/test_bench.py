"""`boardmcp bench --smoke`: the whole harness, end to end, with a handful of requests."""

from pathlib import Path

from host_tools.bench.targets import FastMCPServer
from host_tools.cli import main


def test_bench_smoke_writes_the_report_and_chart(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    assert main(["bench", "--smoke", "--out", str(out), "--workdir", str(tmp_path / "work")]) == 0
    text = out.read_text()
    for section in ("## Targets (issue 8)", "### Modern era (2026-07-28)", "### Handshake era (2025-11-25)", "## Heap"):
        assert section in text
    # Every request kind, mode and era was measured on both servers (failures, e.g. the board
    # running out of heap under 8 clients, are the firmware's to fix, not the harness's).
    modes = (" | keep-alive |", " | new connection |", " | 8 concurrent |")
    measured = [r for r in text.splitlines() if any(m in r for m in modes) and "<sensor>" not in r]
    assert len(measured) == 2 * 3 * 3
    assert not [r for r in measured if "n/a" in r]
    assert "FastMCP memory" in text and "Instructions per `tools/call`:** not measured" in text
    assert "**Floor:** the keep-alive `tools/call system_info` request answered with no MCP work" in text
    assert (tmp_path / "benchmarks-latency.png").read_bytes().startswith(b"\x89PNG")


def test_the_comparison_server_takes_a_token_that_begins_with_a_dash(tmp_path: Path) -> None:
    # secrets.token_urlsafe begins with "-" once in 64 runs; argparse must not read it as an option.
    server = FastMCPServer(tmp_path / "fastmcp.log")
    server.token = "-" + server.token
    with server:  # returns once the server answers server/discover sent with this token
        assert server.proc is not None and server.proc.poll() is None
