"""Working with a real board over its serial port (and finding boards on the LAN).

    firmware.py   the MicroPython image: downloaded once, cached, sha256-checked (or a local file)
    ports.py      finding and claiming the serial port; the board's console (REPL, boot lines)
    flash.py      esptool: erase and write the image at the chip's offset
    deploy.py     mpy-cross + mpremote: the firmware files, laid out as stage.py stages them
    provision.py  Wi-Fi credentials and a fresh bearer token into config.json; the token kept here
    discover.py   zeroconf: boards announcing `_mcp._tcp` on the LAN

Every failure is a DeviceError that says what happened and what to do about it.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


class DeviceError(RuntimeError):
    """A step failed: `what` happened; `todo` tells the user how to fix it."""

    def __init__(self, what: str, todo: str) -> None:
        super().__init__(f"{what}\n  what to do: {todo}")
        self.what = what
        self.todo = todo
