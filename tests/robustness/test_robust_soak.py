"""A short soak (`boardmcp bench --soak` at 1,000 requests): mixed requests over HTTP, WebSocket
and serial, every answer checked, the live heap flat. The full 20,000 is `make soak`."""

from pathlib import Path

import pytest

from host_tools.bench.soak import SoakOptions, run_soak, with_requests


def _soak(board: str, tmp_path: Path) -> None:
    options = with_requests(SoakOptions(board=board, out_md=tmp_path / "SOAK.md", workdir=tmp_path / "w"), 1000)
    result = run_soak(options, lambda _msg: None)
    assert result.done == 1000
    assert not result.failures, result.failures[:5]
    assert result.flat, result.windows
    assert "**Result: passed**" in (tmp_path / "SOAK.md").read_text()


@pytest.mark.xfail(
    strict=False,
    reason="issue 8: esp32 (110,592 B heap) runs out of heap under five concurrent clients (-32603 "
    "'Out of memory', mostly while a tools module loads with 2-4 other requests in flight; allocations of "
    "24-368 B fail, so the heap is full, not only fragmented; a few 503s, and about one serial request per "
    "4,000 unanswered): 199 of 20,000 requests failed in docs/SOAK.md, with 13-15 KB free between requests "
    "(752 before the tools' definitions moved to tools/defs/, 6,117 before the HTTP buffer went back at "
    "parse time, boot.py was unloaded and tight boards collected early). The live heap stayed flat (-96 B)",
)
def test_soak_at_the_esp32_heap(tmp_path: Path) -> None:
    _soak("esp32", tmp_path)


def test_soak_at_the_esp32s3_heap(tmp_path: Path) -> None:
    _soak("esp32s3", tmp_path)
