"""Run a board profile as an emulated board: the real MicroPython VM, simulated hardware.

    with EmulatedBoard(load_profile("esp32s3"), workdir=Path("build/esp32s3")) as board:
        print(board.url, board.console, board.token)

Layout of `workdir`:
    fs/           the board's filesystem, staged as `deploy` writes it (the VM's cwd)
    sim/          machine, network, esp32, the sensor models (_dev_*), compiled to .mpy, and this
                  instance's sim.json (first on sys.path)
    state/        what the board keeps in flash outside its filesystem (NVS), faults.json: the
                  faults tests inject (inject_fault), environment.json: what sensors sense
                  (set_environment)
    console.log   everything the console showed
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from host_tools.emulator.console import VM, ConsoleRelay
from host_tools.executables import find_executable
from host_tools.profiles import Profile
from host_tools.stage import compile_module, find_mpy_cross, stage_firmware

SIM_SOURCES = Path(__file__).parent / "board"
# The simulated machine/network/esp32 are Python here, where the chip's are C in flash: the VM
# gets this much heap on top of the profile's, so the firmware sees the chip's budget.
# tests/host/test_sim.py and test_sim_hw.py check the sim stays within it (bare, and with the
# esp32s3 profile's I2C parts and ADC in use: about 50 KB).
SIM_HEAP_BYTES = 56 * 1024
# The VM is 64-bit, a chip 32-bit: pointers take 8 bytes and a GC block 32 (4 and 16 on the
# chip), so the firmware's code needs more heap here. This gives back what that costs the
# resident firmware's import, no more: tests/host/test_heap_allowance.py measures it against
# MicroPython's 32-bit WebAssembly port (13,792 B more on the VM, the evening of 2026-11-22, with
# the structured text written as results are sent; 13,728 B that afternoon, the firmware then
# split into more, smaller functions; 13,312 B that morning; 15,808 B when first written). Runtime
# objects, about 1.7 times their chip size here, are not given back: the emulated board stays the
# stricter.
WORD_HEAP_BYTES = 13312
# Everything the VM gets on top of the profile's heap.
EMULATOR_HEAP_BYTES = SIM_HEAP_BYTES + WORD_HEAP_BYTES
# How the VM runs main.py: as a chip's pyexec does, in the REPL's globals with __file__ set, and
# with "" first on sys.path. `micropython main.py` would put main.py's absolute directory there
# instead, and each module's __file__ (a qstr, in the heap) would carry the host's workdir path:
# 1.7 KB more live heap on the esp32 profile for a path 50 characters longer, enough to decide
# whether the esp32 soak passes under pytest's longer tmp_path.
RUN_MAIN = (
    "-c",
    "with open('main.py') as f:\n    c = compile(f.read(), 'main.py', 'exec')\ndel f\n__file__ = 'main.py'\nexec(c)",
)
# The access point the emulated board can join, and the config staged to reach it.
# The sim looks at its state files (faults, environment) at most every 20 ms (_boardsim.POLL_MS):
# inject_fault() and set_environment() wait this long, so a change has taken effect once they return.
STATE_SETTLE_S = 0.05
DEFAULT_WIFI = {"ssid": "boardmcp-lab", "password": "emulated-wifi", "rssi": -52}
ESPRESSIF_OUI = "24:0a:c4"


class BoardError(RuntimeError):
    """The emulated board failed to boot or serve."""


def find_micropython() -> Path:
    """The MicroPython unix port: next to the running interpreter (a venv's bin), else on PATH."""
    found = find_executable("micropython")
    if found is None:
        raise BoardError("micropython (unix port) not found next to the Python interpreter or on PATH")
    return found


def board_mac(name: str) -> str:
    """A stable, Espressif-looking base MAC for a board name."""
    digest = hashlib.sha256(f"boardmcp-emulator:{name}".encode()).digest()
    return ESPRESSIF_OUI + "".join(f":{b:02x}" for b in digest[:3])


@functools.cache
def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (Linux's default if it does not say); read
    once, not on every free_port()."""
    with contextlib.suppress(OSError, ValueError):
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    return 32768, 60999


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 for something that will listen on it soon: free now, never
    handed out before by this process, and outside the kernel's ephemeral range.

    A port bound to 0 comes from that range, and until its listener binds it, any outgoing
    connection (twenty boards dialling a broker) can take it: CI saw a board fail to boot with
    EADDRINUSE that way. Outside the range, only another listener can.
    """
    low, high = _ephemeral_range()
    candidates = [p for p in range(20000, 65536) if not low <= p <= high and p not in _handed_out]
    for port in random.sample(candidates, min(len(candidates), 64)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise OSError(errno.EADDRINUSE, f"no free TCP port on 127.0.0.1 outside {low}-{high}")


class EmulatedBoard:
    """A board profile running on the MicroPython unix VM, with its console on a pty.

    `port` 0 picks a free loopback port. `token` defaults to a fresh random bearer token;
    None disables auth. `firmware_dir` defaults to the repo's firmware/. `wifi` is the access
    point the board can join ({"ssid", "password", "rssi"}); `http_options` are added to config.json's
    "http" (e.g. {"idle_timeout_ms": 500}), `config_options` to its top level (e.g.
    {"watchdog_ms": 2000}); `provisioned` False stages a config.json without Wi-Fi
    credentials or token, so the board boots into its setup page. `announce` turns on the
    firmware's mDNS responder (on loopback; off by default, see docs/ARCHITECTURE.md). `mqtt` is
    config.json's `mqtt` section (broker, port, server_name, ...: the board then also serves MCP over
    MQTT). `line_numbers` compiles the firmware with line numbers for its tracebacks (a deploy
    leaves them out unless asked). `progress` receives boot messages.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        workdir: Path,
        port: int = 0,
        token: str | None = "",
        firmware_dir: Path | None = None,
        wifi: dict[str, Any] | None = None,
        http_options: dict[str, Any] | None = None,
        config_options: dict[str, Any] | None = None,
        provisioned: bool = True,
        announce: bool = False,
        mqtt: dict[str, Any] | None = None,
        line_numbers: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.profile = profile
        self.workdir = Path(workdir).resolve()
        self.port = port or free_port()
        self.token = secrets.token_urlsafe(24) if token == "" else token
        self.firmware_dir = firmware_dir
        self.wifi = dict(wifi or DEFAULT_WIFI)
        self.http_options = dict(http_options or {})
        self.config_options = dict(config_options or {})
        self.provisioned = provisioned
        self.announce = announce
        self.mqtt = dict(mqtt) if mqtt else None
        self.line_numbers = line_numbers
        self._progress = progress or (lambda _msg: None)
        self._relay: ConsoleRelay | None = None
        self._reset_cause = 1

    # -- public ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The MCP endpoint."""
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def console(self) -> str:
        """The console pty's path (open it with mpremote or picocom)."""
        if self._relay is None:
            raise BoardError("the board is not running")
        return self._relay.path

    @property
    def console_log(self) -> str:
        """Everything the console showed so far."""
        return self._relay.log_text() if self._relay is not None else ""

    @property
    def config(self) -> dict[str, Any]:
        """The config.json staged on the board."""
        config: dict[str, Any] = {
            # Every client of an emulated board comes from 127.0.0.1, so a per-client rate
            # limit would lump them all together: off unless http_options set one.
            "http": {"host": "127.0.0.1", "port": self.port, "rate": None, **self.http_options},
            "mdns": self.announce,
            **self.config_options,
        }
        if self.provisioned:
            config["wifi"] = {"ssid": self.wifi["ssid"], "password": self.wifi["password"]}
            config["token"] = self.token
        if self.mqtt:
            config["mqtt"] = self.mqtt
        return config

    def stage(self) -> Path:
        """Stage the firmware into workdir/fs and the sim into workdir/sim; return workdir/fs."""
        fs = stage_firmware(
            self.profile,
            self.workdir / "fs",
            self.config,
            firmware_dir=self.firmware_dir,
            cache_dir=self.workdir / ".mpy-cache",
            line_numbers=self.line_numbers,
        )
        sim = self.workdir / "sim"
        sim.mkdir(parents=True, exist_ok=True)
        # Compiled, as the firmware is: a module the VM compiles from source needs several times
        # its size in heap while it does, and the sim loads a peripheral class (I2C, ADC, PWM) on
        # its first use, in the middle of a request, where a chip's C peripherals cost nothing.
        compiler = find_mpy_cross()
        for src in SIM_SOURCES.glob("*.py"):
            mpy = compile_module(compiler, src, Path(src.name), "x64", self.workdir / ".mpy-cache", line_numbers=True)
            (sim / src.name).unlink(missing_ok=True)
            shutil.copyfile(mpy, (sim / src.name).with_suffix(".mpy"))
        (self.workdir / "state").mkdir(exist_ok=True)
        (sim / "reset_request").unlink(missing_ok=True)
        return fs

    def start(self, timeout: float = 15.0) -> None:
        """Stage, boot the VM and wait until the HTTP port accepts connections.

        Raises BoardError (with the console output) if the VM crashes, main.py ends in the REPL
        (an exception) or `timeout` passes first. A board that resets itself while booting (e.g.
        machine.reset() after applying a config) is waited for, as its port opens after the reboot.
        """
        if self._relay is not None:
            raise BoardError("the board is already running")
        self._progress(f"staging {self.profile.name} firmware into {self.workdir / 'fs'}")
        self.stage()
        self._progress(f"booting the emulated {self.profile.title} ({self.profile.heap_bytes} B heap)")
        (self.workdir / "console.log").unlink(missing_ok=True)
        self._relay = ConsoleRelay(self._spawn, self._take_reset_request, self.workdir / "console.log")
        self._relay.start()
        deadline = time.monotonic() + timeout
        while True:
            if self._relay.crashes:
                self._fail("the VM crashed while booting")
            if self._relay.prompts:
                self._fail("main.py ended in the REPL instead of serving")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            if time.monotonic() > deadline:
                self._fail(f"port {self.port} did not open within {timeout:g} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the VM and the console; the workdir is kept for inspection."""
        if self._relay is not None:
            self._relay.stop()
            self._relay = None

    @property
    def pid(self) -> int | None:
        """Process id of the running VM (it changes on every reset)."""
        return self._relay.pid if self._relay is not None else None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------

    def _fail(self, why: str) -> None:
        log = self.console_log
        self.stop()
        raise BoardError(f"{self.profile.name}: {why}; console:\n{log}")

    def _write_sim_config(self) -> None:
        sim = {
            "board": self.profile.name,
            "chip": self.profile.chip,
            "mac": board_mac(self.profile.name),
            "wifi": self.wifi,
            "ip": "127.0.0.1",
            "state_dir": str(self.workdir / "state"),
            "reset_cause": self._reset_cause,
            **sim_hardware(self.profile),
        }
        tmp = self.workdir / "sim" / "sim.json.tmp"
        tmp.write_text(json.dumps(sim))
        tmp.replace(tmp.with_suffix(""))

    def inject_fault(self, name: str, fault: str | None) -> None:
        """Make part of the emulated hardware misbehave from its next use on; None repairs it.
        Faults survive resets. `name` is one of:
        - a sensor (by profile name) or an I2C bus (`i2c<id>`), from its next transaction:
          "absent" (no ACK: OSError ENODEV), "crc" (corrupted checksums), "stuck" (a bus held
          low: OSError ETIMEDOUT);
        - "wifi": "down" (the access point is gone: a joined station loses its link and joins
          fail with no AP found, until the fault is repaired and the firmware joins again)."""
        self._set_state("faults.json", name, fault)

    def set_environment(self, name: str, values: dict[str, float] | None) -> None:
        """Fix what a sensor (by profile name) senses from its next measurement on, instead of the
        room's drift: {"lux": 900} for a bh1750 (the one model that reads it); None lets it drift
        again from there. Survives resets."""
        self._set_state("environment.json", name, values)

    def _set_state(self, file: str, name: str, value: Any) -> None:  # noqa: ANN401
        # One entry of a JSON file in the state dir, which the sim re-reads while the board runs
        # (within STATE_SETTLE_S).
        # With no entry left the file goes: the sim's check of a missing file costs the least heap.
        path = self.workdir / "state" / file
        path.parent.mkdir(parents=True, exist_ok=True)
        entries = json.loads(path.read_text()) if path.exists() else {}
        if value is None:
            entries.pop(name, None)
        else:
            entries[name] = value
        if not entries:
            path.unlink(missing_ok=True)
        else:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(entries))
            tmp.replace(path)
        time.sleep(STATE_SETTLE_S)

    def _take_reset_request(self) -> int | None:
        path = self.workdir / "sim" / "reset_request"
        try:
            cause = int(path.read_text())
        except (OSError, ValueError):
            return None
        path.unlink(missing_ok=True)
        return cause

    def vm_command(self, run_main: bool = True) -> tuple[list[str], dict[str, str]]:
        """The VM's argv and environment for one run (its cwd is workdir/fs; stage() first).

        Writes this run's sim.json. `run_main` runs main.py and stays in the REPL after it, as a
        chip does; `boardmcp bench` uses this to run the staged board under valgrind.
        """
        self._write_sim_config()
        argv = [str(find_micropython()), "-X", f"heapsize={self.profile.heap_bytes + EMULATOR_HEAP_BYTES}"]
        if run_main:
            argv += ["-i", *RUN_MAIN]
        return argv, dict(os.environ, MICROPYPATH=f"{self.workdir / 'sim'}::.frozen:lib")

    def _spawn(self, run_main: bool, reset_cause: int | None) -> VM:
        """Start one VM run on a fresh pty; `reset_cause` None keeps the last (a soft reset)."""
        if reset_cause is not None:
            self._reset_cause = reset_cause
        argv, env = self.vm_command(run_main)
        master, slave = os.openpty()
        _configure_vm_tty(slave)
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self.workdir / "fs",
                env=env,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=_vm_child_setup,  # noqa: PLW1509 (only an ioctl and a sigaction)
            )
        finally:
            os.close(slave)
        return VM(proc, master)


def sim_hardware(profile: Profile) -> dict[str, Any]:
    """What is wired to the emulated board, for sim.json: the profile's sensors as device models
    on their I2C buses (by pins) or 1-Wire pins, the volts on analog pins, and the jumpers between
    the profile's `loopback` pin pairs."""
    buses = [
        {
            "name": f"i2c{bus.id}",
            "sda": bus.sda,
            "scl": bus.scl,
            "devices": [
                {"type": s.type, "address": s.address, "name": s.name} for s in profile.sensors if s.bus == bus.id
            ],
        }
        for bus in profile.i2c
    ]
    wires = [
        {"name": s.name, "pin": s.pin, "devices": [{"type": s.type, "name": s.name}]}
        for s in profile.sensors
        if s.pin is not None
    ]
    analog = profile.raw.get("emulator", {}).get("analog", {})
    return {"i2c": buses, "onewire": wires, "analog": analog, "loopback": [list(p) for p in profile.loopback]}


def _configure_vm_tty(fd: int) -> None:
    """The VM's pty: no line editing or echo (the REPL does its own), ISIG on so Ctrl-C interrupts
    running code, no output processing (the relay cooks \\n itself), only Ctrl-C as a signal key."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
    iflag &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON | termios.IXOFF | termios.ISTRIP)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ICANON | termios.IEXTEN | termios.ECHO | termios.ECHOE | termios.ECHOK | termios.ECHONL)
    lflag |= termios.ISIG
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    cc[termios.VINTR] = b"\x03"
    # Ctrl-\ and Ctrl-Z must reach the VM as bytes, not kill or stop it.
    cc[termios.VQUIT] = cc[termios.VSUSP] = b"\x00"
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, ispeed, ospeed, cc])


def _vm_child_setup() -> None:
    # Make the pty the VM's controlling terminal (so Ctrl-C becomes SIGINT), and ignore SIGINT
    # until MicroPython installs its own handler: the VM is a CPython wrapper, and an early
    # Ctrl-C would otherwise kill it with a CPython traceback.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
