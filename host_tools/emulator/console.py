"""The emulated board's serial console: a pty relay that makes the unix VM behave like a chip's UART.

A user (mpremote, picocom) opens `ConsoleRelay.path`; the relay copies bytes between that pty and
the VM's pty, and fixes the three ways the unix port differs from a chip:

- Output: `print()` writes bare `\\n`; a chip's UART gets `\\r\\n`. Every `\\n` not preceded by `\\r`
  becomes `\\r\\n`.
- Ctrl-D (soft reset) ends the unix process; a chip prints `MPY: soft reboot` and restarts. The relay
  tracks the REPL mode from the output and, when the VM exits, starts a new one: in raw-REPL mode
  without main.py, re-entering the raw REPL itself and hiding the banner (so mpremote sees exactly
  what a chip sends), in friendly mode with main.py (a full boot).
- A reset requested by the board (machine.reset(), the watchdog, deep sleep, a crash) restarts the
  VM with main.py, as a chip reboots.

Like a UART with nobody listening, output is dropped when the user side is not being read.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Set by the sim (host_tools/emulator/board/_boardsim.py): the VM ended itself to reset.
RESET_SIGNAL = signal.SIGUSR1
# machine.*_RESET values, shared with the sim.
PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5

RAW_BANNER = b"raw REPL; CTRL-B to exit"
FRIENDLY_PROMPT = b">>> "
SOFT_REBOOT = b"MPY: soft reboot\r\n"
# What an ESP32's ROM prints first after each kind of reset, so the console shows why it rebooted.
_ROM_LINES = {
    HARD_RESET: b"rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    WDT_RESET: b"rst:0x7 (TG0WDT_SYS_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    DEEPSLEEP_RESET: b"rst:0x5 (DEEPSLEEP_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
}
_LOG_KEEP = 1 << 20  # bytes of console output kept in memory (the log file has everything)
_CRASH_BACKOFF_S = 0.5  # a VM that dies at once is not restarted in a tight loop


@dataclass
class VM:
    """One run of the MicroPython VM: its process and the master side of its pty."""

    proc: subprocess.Popen[bytes]
    master: int


# spawn(run_main, reset_cause) starts a VM; reset_cause None keeps the previous one (soft reset).
Spawn = Callable[[bool, int | None], VM]


class ConsoleRelay:
    """Relay between the user's pty (`path`) and the VM, restarting the VM the way a chip reboots.

    `spawn` starts a VM; `take_reset_request` returns (and clears) the reset cause the sim left
    before it signalled RESET_SIGNAL.
    """

    def __init__(self, spawn: Spawn, take_reset_request: Callable[[], int | None], log_path: Path) -> None:
        self._spawn = spawn
        self._take_reset_request = take_reset_request
        self._user_master, self._user_slave = os.openpty()
        # Raw, so the user's bytes reach the VM untouched; the relay keeps the slave open so a
        # client closing it causes no EIO/hangup on the master.
        tty.setraw(self._user_slave)
        _set_nonblocking(self._user_master)
        self.path = os.ttyname(self._user_slave)
        self._wake_r, self._wake_w = os.pipe()
        self._log_file = log_path.open("ab")
        self._log = bytearray()
        self._log_lock = threading.Lock()
        self._vm: VM | None = None
        self._raw_mode = False
        self._tail = b""  # last output bytes, to spot the prompts across reads
        self._last_byte = b""
        self._swallow_until: bytes | None = None  # hide VM output until this marker
        self._swallowed = bytearray()
        self._held_input = bytearray()  # user input while a restart hides the VM
        self._to_vm = bytearray()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.crashes = 0  # VM exits that were not a reset or soft reboot
        self.prompts = 0  # friendly-REPL prompts seen: main.py ended or was interrupted
        self._started_at = 0.0

    # -- public ----------------------------------------------------------------------------

    def start(self) -> None:
        """Boot the first VM (with main.py, power-on reset) and start relaying."""
        self._vm = self._spawn(True, PWRON_RESET)
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="boardmcp-console", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop relaying, kill the VM and close every pty."""
        self._stopping.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._vm is not None:
            _kill(self._vm)
            self._vm = None
        for fd in (self._user_master, self._user_slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log_file.close()

    @property
    def pid(self) -> int | None:
        """Process id of the running VM, if any."""
        return self._vm.proc.pid if self._vm is not None else None

    def log_text(self) -> str:
        """Console output so far (last MiB), as the user saw it."""
        with self._log_lock:
            return self._log.decode("utf-8", "replace")

    def note(self, text: str) -> None:
        """Print an emulator message on the console (and in the log)."""
        self._emit(f"\r\n[boardmcp emulator] {text}\r\n".encode())

    # -- relay loop ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            vm = self._vm
            if vm is None:
                return
            rlist = [self._wake_r, self._user_master, vm.master]
            wlist = [vm.master] if self._to_vm else []
            readable, writable, _ = select.select(rlist, wlist, [])
            if self._stopping.is_set():
                return
            if vm.master in writable:
                self._flush_to_vm(vm)
            if vm.master in readable:
                try:
                    data = os.read(vm.master, 4096)
                except OSError:  # EIO: every slave fd closed, the VM is gone
                    data = b""
                if data:
                    self._from_vm(data)
                else:
                    self._restart(vm)
                    continue
            if self._user_master in readable:
                with contextlib.suppress(BlockingIOError):
                    data = os.read(self._user_master, 4096)
                    if self._swallow_until is not None:
                        self._held_input += data
                    else:
                        self._to_vm += data
                        self._flush_to_vm(vm)

    def _flush_to_vm(self, vm: VM) -> None:
        try:
            n = os.write(vm.master, self._to_vm)
        except BlockingIOError:
            return
        except OSError:  # the VM is exiting; its input is lost, as on a resetting chip
            self._to_vm.clear()
            return
        del self._to_vm[:n]

    def _from_vm(self, data: bytes) -> None:
        data = self._cook(data)
        window = self._tail + data
        raw_at, friendly_at = window.rfind(RAW_BANNER), window.rfind(FRIENDLY_PROMPT)
        if raw_at != friendly_at:  # both -1 means no prompt in this read
            self._raw_mode = raw_at > friendly_at
            self.prompts += friendly_at > raw_at
        self._tail = window[-32:]
        if self._swallow_until is not None:
            self._swallowed += data
            at = self._swallowed.find(self._swallow_until)
            if at < 0:
                del self._swallowed[: -len(self._swallow_until)]
                return
            data = bytes(self._swallowed[at:])
            self._swallowed.clear()
            self._swallow_until = None
            self._to_vm += self._held_input
            self._held_input.clear()
        self._emit(data)

    def _cook(self, data: bytes) -> bytes:
        # A chip's UART sends \r\n; print() on the unix port writes bare \n.
        *lines, rest = data.split(b"\n")
        out = bytearray()
        prev = self._last_byte
        for line in lines:
            out += line
            out += b"\n" if (line[-1:] or prev) == b"\r" else b"\r\n"
            prev = b"\n"
        out += rest
        self._last_byte = data[-1:]
        return bytes(out)

    def _emit(self, data: bytes) -> None:
        with self._log_lock:
            self._log += data
            del self._log[:-_LOG_KEEP]
        self._log_file.write(data)
        self._log_file.flush()
        # Like a UART: when nobody reads, the bytes are gone.
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._user_master, data)

    # -- reboots ---------------------------------------------------------------------------

    def _restart(self, vm: VM) -> None:
        rc = _kill(vm)
        self._to_vm.clear()
        self._last_byte = b""
        # A VM that died while its banner was hidden must not leave the console muted.
        self._swallow_until = None
        self._swallowed.clear()
        self._held_input.clear()
        if rc == -RESET_SIGNAL:
            cause = self._take_reset_request() or HARD_RESET
        elif rc == 0:  # Ctrl-D at a REPL: the unix port exits where a chip soft-reboots
            cause = SOFT_RESET
        else:
            self.note(f"VM exited with code {rc}; rebooting")
            self.crashes += 1
            cause = HARD_RESET
            if time.monotonic() - self._started_at < _CRASH_BACKOFF_S:
                time.sleep(_CRASH_BACKOFF_S)
        if self._stopping.is_set():
            self._vm = None
            return
        if cause == SOFT_RESET:
            self._emit(SOFT_REBOOT)
            if self._raw_mode:
                # A chip in raw-REPL mode skips main.py and answers with the raw banner again.
                self._vm = self._spawn(False, None)
                self._swallow_until = RAW_BANNER
                self._to_vm += b"\x01"
            else:
                self._vm = self._spawn(True, None)
        else:
            self._emit(_ROM_LINES.get(cause, b""))
            self._raw_mode = False
            self._vm = self._spawn(True, cause)
        self._started_at = time.monotonic()


def _set_nonblocking(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def _kill(vm: VM) -> int:
    """End the VM and anything it started (its process group); return its exit status."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(vm.proc.pid, signal.SIGKILL)
    rc = vm.proc.wait()
    with contextlib.suppress(OSError):
        os.close(vm.master)
    return rc
