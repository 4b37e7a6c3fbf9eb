"""The emulated board end to end: the real VM on a pty, driven by a real mpremote."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from host_tools.emulator import runner
from host_tools.emulator.runner import BoardError, EmulatedBoard, _ephemeral_range, free_port
from host_tools.profiles import load_profile

MPREMOTE = Path(sys.executable).parent / "mpremote"


@pytest.fixture
def board(tmp_path: Path, tiny_firmware: Path) -> Iterator[EmulatedBoard]:
    with EmulatedBoard(load_profile("esp32s3"), workdir=tmp_path / "board", firmware_dir=tiny_firmware) as b:
        yield b


def mpremote(board: EmulatedBoard, *args: str) -> str:
    proc = subprocess.run(
        [str(MPREMOTE), "connect", board.console, *args], capture_output=True, text=True, timeout=20, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr + board.console_log
    return proc.stdout


def wait_for(board: EmulatedBoard, text: str, count: int = 1, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while board.console_log.count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not seen; console:\n{board.console_log}"
        time.sleep(0.02)


def children() -> set[int]:
    """Pids of this process's living children (zombies excluded)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def test_boots_and_serves(board: EmulatedBoard) -> None:
    assert board.url == f"http://127.0.0.1:{board.port}/mcp"
    assert board.token and len(board.token) >= 24
    wait_for(board, f"serving on {board.port}")
    assert "tiny firmware booting, reset_cause 1\r\n" in board.console_log  # cooked to \r\n
    assert (board.workdir / "console.log").read_bytes().decode() == board.console_log


def test_mpremote_exec_twice_and_fs_ls(board: EmulatedBoard) -> None:
    assert mpremote(board, "exec", "print(1)") == "1\n"
    # The first command left the board soft-reset in the raw REPL; a second one soft-resets again.
    assert mpremote(board, "exec", "import machine; print(machine.unique_id().hex())") == (board_mac_hex(board) + "\n")
    listing = mpremote(board, "fs", "ls")
    assert "main.py" in listing and "config.json" in listing
    assert board.console_log.count("MPY: soft reboot\r\n") == 3


def board_mac_hex(board: EmulatedBoard) -> str:
    from host_tools.emulator.runner import board_mac

    return board_mac(board.profile.name).replace(":", "")


@contextmanager
def interrupted(board: EmulatedBoard) -> Iterator[int]:
    """The console (an fd) once Ctrl-C has ended the running main.py into the friendly REPL."""
    wait_for(board, "serving on")
    fd = os.open(board.console, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, b"\x03")
        wait_for(board, ">>> ")
        yield fd
    finally:
        os.close(fd)


def test_ctrl_c_interrupts_main_into_the_repl(board: EmulatedBoard) -> None:
    with interrupted(board) as fd:
        os.write(fd, b"print(6 * 7)\r")
        wait_for(board, "42\r\n")
        assert "KeyboardInterrupt" in board.console_log
        # Ctrl-D at the friendly REPL soft-reboots and runs main.py again, as on a chip.
        os.write(fd, b"\x04")
        wait_for(board, "serving on", count=2)
        assert "MPY: soft reboot\r\ntiny firmware booting, reset_cause 1" in board.console_log
        assert select.select([fd], [], [], 0)[0]  # the user side sees the output too


def test_main_runs_as_on_a_chip(board: EmulatedBoard) -> None:
    """main.py runs in the REPL's globals, with "" first on sys.path: modules load by relative
    paths, as on a chip, so no module's __file__ (a qstr in the heap) holds the host's workdir."""
    with interrupted(board) as fd:
        os.write(fd, b"import sys, boardmcp\r")
        os.write(fd, b"print('=', __file__, repr(sys.path[0]), boardmcp.__file__, 'port' in cfg['http'])\r")
        wait_for(board, "= main.py '' boardmcp/__init__.mpy True\r\n")
        assert str(board.workdir) not in board.console_log


def test_machine_reset_reboots_with_main(board: EmulatedBoard) -> None:
    wait_for(board, "serving on")
    first_pid = board.pid
    mpremote(board, "exec", "--no-follow", "import machine; machine.reset()")
    wait_for(board, "tiny firmware booting, reset_cause 2")
    wait_for(board, "serving on", count=2)
    assert "rst:0xc (SW_CPU_RESET)" in board.console_log
    assert board.pid != first_pid


def test_stop_leaves_no_child_processes(tmp_path: Path, tiny_firmware: Path) -> None:
    before = children()
    board = EmulatedBoard(load_profile("esp32"), workdir=tmp_path / "b", firmware_dir=tiny_firmware, token=None)
    board.start()
    assert board.token is None
    pid = board.pid
    assert pid in children()
    mpremote(board, "exec", "print(1)")  # one restart, so a respawned VM is covered too
    board.stop()
    assert children() <= before
    assert (tmp_path / "b" / "fs" / "main.py").exists()  # the workdir is kept


def test_boot_failure_reports_the_console(tmp_path: Path, tiny_firmware: Path) -> None:
    (tiny_firmware / "main.py").write_text("raise RuntimeError('no wifi')\n")
    board = EmulatedBoard(load_profile("esp32"), workdir=tmp_path / "b", firmware_dir=tiny_firmware)
    started = time.monotonic()
    with pytest.raises(BoardError, match=r"(?s)main.py ended in the REPL.*RuntimeError: no wifi"):
        board.start()
    assert time.monotonic() - started < 5  # no waiting for the timeout
    assert board.pid is None


def test_a_reset_while_booting_is_waited_for(tmp_path: Path, tiny_firmware: Path) -> None:
    # Firmware that soft-resets once (as after applying a config), then serves.
    main = (tiny_firmware / "main.py").read_text()
    first_boot = (
        "import machine, os\n"
        "if 'booted' not in os.listdir():\n"
        "    open('booted', 'w').close()\n"
        "    machine.soft_reset()\n"
    )
    (tiny_firmware / "main.py").write_text(first_boot + main)
    with EmulatedBoard(load_profile("esp32"), workdir=tmp_path / "b", firmware_dir=tiny_firmware) as board:
        wait_for(board, "serving on")
        assert board.console_log.startswith("MPY: soft reboot\r\ntiny firmware booting, reset_cause 1")


def test_boot_timeout_reports_the_console(tmp_path: Path, tiny_firmware: Path) -> None:
    (tiny_firmware / "main.py").write_text("import time\nprint('waiting for wifi')\nwhile True:\n    time.sleep(1)\n")
    board = EmulatedBoard(load_profile("esp32"), workdir=tmp_path / "b", firmware_dir=tiny_firmware)
    with pytest.raises(BoardError, match=r"(?s)did not open within 1 s.*waiting for wifi"):
        board.start(timeout=1)


def test_free_ports_are_outside_the_ephemeral_range_and_never_repeat() -> None:
    # An outgoing connection takes its port from the ephemeral range, so a listening port
    # handed out from there can be taken before its listener binds it (EADDRINUSE at boot).
    low, high = _ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert not any(low <= p <= high for p in ports)


def test_a_port_someone_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.create_server(("127.0.0.1", free_port()))
    held = taken.getsockname()[1]
    monkeypatch.setattr(runner, "_handed_out", set())  # so only the bind can refuse `held`
    monkeypatch.setattr(runner.random, "sample", lambda pop, k: [held, *pop[:k]])
    with taken:
        assert free_port() != held
