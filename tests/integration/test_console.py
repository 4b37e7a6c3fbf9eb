"""The emulated board's console with the real mpremote, while the real firmware runs on it."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wire import open_session

from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import load_profile

MPREMOTE = Path(sys.executable).with_name("mpremote")


def mpremote(board: EmulatedBoard, *args: str) -> str:
    proc = subprocess.run(
        [str(MPREMOTE), "connect", board.console, *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def serving(board: EmulatedBoard, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return bool(open_session(board))
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture
def own_board(tmp_path: Path) -> Iterator[EmulatedBoard]:
    """A board of this test's own: mpremote interrupts its server."""
    with EmulatedBoard(load_profile("esp32c3"), workdir=tmp_path) as b:
        yield b


def test_mpremote_interrupts_firmware_and_reset_brings_it_back(own_board: EmulatedBoard) -> None:
    assert serving(own_board)
    # mpremote breaks into main.py with Ctrl-C, soft-resets into the raw REPL and runs code on the VM.
    out = mpremote(own_board, "exec", "import sys, machine; print(sys.implementation.name, machine.freq())")
    assert out.split() == ["micropython", "160000000"], out
    assert "main.py" in mpremote(own_board, "fs", "ls")
    assert "server.mpy" in mpremote(own_board, "exec", "import os; print(os.listdir('boardmcp'))")
    # As on a chip, the server stays down at the REPL until the board is reset.
    mpremote(own_board, "reset")
    assert serving(own_board)
    assert "mcp: serving" in own_board.console_log
