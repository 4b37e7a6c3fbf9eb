"""A short soak (`boardmcp bench --soak` at 1,000 requests): mixed requests over HTTP, WebSocket
and serial, every answer checked, the live heap flat. The full 20,000 is `make soak`."""

from pathlib import Path

from host_tools.bench.soak import SoakOptions, run_soak, with_requests


def _soak(board: str, tmp_path: Path) -> None:
    options = with_requests(SoakOptions(board=board, out_md=tmp_path / "SOAK.md", workdir=tmp_path / "w"), 1000)
    result = run_soak(options, lambda _msg: None)
    assert result.done == 1000
    assert not result.failures, result.failures[:5]
    assert result.flat, result.windows
    assert "**Result: passed**" in (tmp_path / "SOAK.md").read_text()


def test_soak_at_the_esp32_heap(tmp_path: Path) -> None:
    _soak("esp32", tmp_path)


def test_soak_at_the_esp32s3_heap(tmp_path: Path) -> None:
    _soak("esp32s3", tmp_path)
