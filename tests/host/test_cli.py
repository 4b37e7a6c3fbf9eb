"""The `boardmcp` CLI, run as a real subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def boardmcp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "host_tools", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )


def processes_in(directory: Path) -> list[int]:
    """Pids of processes whose working directory is `directory`."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if Path(os.readlink(cwd)) == directory:
                found.append(int(cwd.parent.name))
        except OSError:
            continue
    return found


def test_help_explains_the_commands() -> None:
    out = boardmcp("--help")
    assert out.returncode == 0
    assert "emulate" in out.stdout and "boards" in out.stdout
    out = boardmcp("emulate", "--help")
    assert "--board" in out.stdout and "--no-token" in out.stdout and "--workdir" in out.stdout


def test_boards_lists_profiles() -> None:
    out = boardmcp("boards")
    assert out.returncode == 0
    assert [line.split()[0] for line in out.stdout.splitlines()] == [
        "conformance",
        "esp32",
        "esp32c3",
        "esp32s3",
        "faults",
    ]


def test_unknown_board_is_a_clear_error() -> None:
    out = boardmcp("emulate", "--board", "nope")
    assert out.returncode == 2
    assert "unknown board 'nope'" in out.stderr and "Traceback" not in out.stderr


def test_emulate_prints_endpoints_and_stops_cleanly_on_ctrl_c(tmp_path: Path, tiny_firmware: Path) -> None:
    workdir = tmp_path / "board"
    argv = ["emulate", "--board", "esp32c3", "--workdir", str(workdir), "--firmware", str(tiny_firmware)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "host_tools", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines = []
    deadline = time.monotonic() + 20
    while not lines or not lines[-1].startswith("Press Ctrl-C"):
        assert time.monotonic() < deadline and proc.poll() is None, lines
        lines.append(proc.stdout.readline().strip())
    text = "\n".join(lines)
    assert "MCP endpoint:  http://127.0.0.1:" in text
    assert "mpremote connect /dev/pts/" in text
    assert "Authorization: Bearer " in text
    assert processes_in(workdir / "fs")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    stderr = proc.stderr.read()
    assert "booting the emulated" in stderr and "Traceback" not in stderr
    assert processes_in(workdir / "fs") == []
