"""The board's serial port: find it, check it is free, and read the console as the board boots.

    port = resolve_port(None)                     # the one USB serial board plugged in
    wait_for_repl(port, timeout=20, progress=print)
    boot = restart_and_watch(port, timeout=40, progress=print)
    boot.url                                      # "http://192.168.1.23:80/mcp", or None in setup mode

A port is a device path (/dev/ttyUSB0, an emulated board's pty) or a pyserial URL
(socket://host:port, rfc2217://host:port).
"""

from __future__ import annotations

import errno
import os
import re
import time
from dataclasses import dataclass

import serial
from serial.tools import list_ports

from host_tools.device import DeviceError, Progress

BAUD = 115200
# USB vendor ids of the serial bridges ESP32 boards carry (and of Espressif's own USB).
BOARD_VIDS = {0x303A: "Espressif USB", 0x10C4: "Silicon Labs CP210x", 0x1A86: "WCH CH34x", 0x0403: "FTDI"}

_CTRL_A, _CTRL_B, _CTRL_C, _CTRL_D = b"\x01", b"\x02", b"\x03", b"\x04"
_SERVING = re.compile(r"mcp: serving (\S+)")
_FIND_PORTS = "`python -m serial.tools.list_ports -v` lists the serial ports"


def is_url(port: str) -> bool:
    """True for a pyserial URL (socket://, rfc2217://) rather than a device path."""
    return "://" in port


def resolve_port(port: str | None) -> str:
    """The port to use: `port` checked to exist and be free, or the single board found on USB."""
    if port is None:
        found = [p for p in list_ports.comports() if p.vid in BOARD_VIDS]
        if not found:
            raise DeviceError(
                "no board found on any USB serial port",
                "plug the board in with a data cable (charge-only cables carry no data), or name the port: "
                f"PORT=/dev/ttyUSB0 ({_FIND_PORTS})",
            )
        if len(found) > 1:
            names = ", ".join(f"{p.device} ({BOARD_VIDS[p.vid or 0]})" for p in found)
            raise DeviceError(f"several boards found: {names}", "choose one with PORT=<device>")
        port = found[0].device
    if not is_url(port):
        if not os.path.exists(port):
            raise DeviceError(
                f"no serial port {port}",
                f"check the cable and the port's name ({_FIND_PORTS}); an ESP32-S3 on its native USB is "
                "/dev/ttyACM*, a board with a USB-UART bridge /dev/ttyUSB*",
            )
        check_free(port)
    return port


def check_free(port: str) -> None:
    """Raise DeviceError if another program holds `port`, or it cannot be opened at all."""
    try:
        serial.Serial(port, BAUD, exclusive=True).close()
    except serial.SerialException as exc:
        raise _open_error(port, exc) from None


def _open_error(port: str, exc: Exception) -> DeviceError:
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code in (errno.EAGAIN, errno.EBUSY) or "exclusively lock" in text or "busy" in text:
        return DeviceError(
            f"serial port {port} is busy: another program has it open",
            "close it (a serial monitor, screen, picocom, Thonny, mpremote, or another boardmcp) and retry",
        )
    if code == errno.EACCES or "Permission denied" in text:
        return DeviceError(
            f"no permission to open {port}",
            "add yourself to the port's group (Debian/Ubuntu: sudo usermod -aG dialout $USER), then log in again",
        )
    return DeviceError(f"cannot open {port}: {text}", "check the cable and that the board is powered, then retry")


def open_console(port: str, timeout: float) -> serial.SerialBase:
    """Open the board's console, waiting up to `timeout` s for the port to (re)appear: a chip on
    native USB drops off the bus while it resets."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return serial.serial_for_url(port, BAUD, timeout=0.1, exclusive=not is_url(port))
        except (serial.SerialException, OSError) as exc:
            if time.monotonic() > deadline or (os.path.exists(port) and not is_url(port)):
                raise _open_error(port, exc) from None
            time.sleep(0.2)


def wait_for_repl(port: str, timeout: float, progress: Progress) -> None:
    """Wait until MicroPython's REPL answers on `port` (after a flash, the first boot formats the
    filesystem, which takes a few seconds)."""
    progress(f"waiting for the MicroPython REPL on {port}")
    deadline = time.monotonic() + timeout
    with open_console(port, timeout) as con:
        seen = bytearray()
        while time.monotonic() < deadline:
            con.write(b"\r" + _CTRL_C + _CTRL_B)  # interrupt whatever runs; friendly REPL
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                seen += con.read(256)
                if b">>> " in seen:
                    return
            del seen[:-64]
    raise DeviceError(
        f"no MicroPython REPL on {port} within {timeout:g} s",
        "the image did not boot (or this is not the board's console): press the board's RESET button and "
        "retry; if it stays silent, check the image matches the chip (FIRMWARE=) and flash again",
    )


@dataclass(frozen=True)
class Boot:
    """What the board said while booting: the MCP URL, or the setup-mode line (no Wi-Fi)."""

    url: str | None
    setup: str | None
    wifi: str | None  # the firmware's last "wifi: ..." line


def restart_and_watch(port: str, timeout: float, progress: Progress) -> Boot:
    """Soft-reset the board (Ctrl-C, then Ctrl-D at the REPL: main.py runs again with the files
    just written) and follow its console until it serves MCP or opens its setup page."""
    deadline = time.monotonic() + timeout
    with open_console(port, timeout) as con:
        con.write(b"\r" + _CTRL_C + _CTRL_C + _CTRL_B)
        _read_until(con, b">>> ", deadline, port)
        progress("restarting the board")
        con.write(_CTRL_D)
        wifi = None
        crash: list[str] = []
        pending = b""
        while time.monotonic() < deadline:
            pending += con.read(256)
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                if not line.strip():
                    continue
                progress(f"  board: {line}")
                if crash or line.startswith("Traceback"):
                    crash.append(line)
                    if not line.startswith((" ", "Traceback")):
                        raise DeviceError(
                            "the firmware crashed while booting: " + line,
                            "the traceback is above; redeploy with `boardmcp deploy` (or report it)",
                        )
                elif line.startswith("wifi: "):
                    wifi = line
                elif line.startswith("setup: "):
                    return Boot(None, line, wifi)
                elif m := _SERVING.search(line):
                    return Boot(m.group(1), None, wifi)
    raise DeviceError(
        f"the board did not start serving within {timeout:g} s",
        f"watch its console (mpremote connect {port} repl) and press RESET to see where it stops",
    )


def _read_until(con: serial.SerialBase, marker: bytes, deadline: float, port: str) -> None:
    seen = bytearray()
    while time.monotonic() < deadline:
        seen += con.read(256)
        if marker in seen:
            return
        if len(seen) > 4096:
            del seen[:-64]
    raise DeviceError(
        f"no MicroPython REPL on {port}",
        "the board did not answer Ctrl-C: press RESET and retry; if it stays silent, flash it with `boardmcp flash`",
    )
