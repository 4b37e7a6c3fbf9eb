"""Write a MicroPython image to a chip with esptool: erase the flash, write at the chip's offset.

    flash_image(profile, "/dev/ttyUSB0", Path("ESP32_GENERIC_S3-...bin"), progress=print)

The offset is the profile's "flash_offset" (0x1000 on esp32 and esp32s2, 0x0 on esp32s3/c3/c6),
the chip esptool is told to expect its "chip": a different chip is refused before anything is
written. esptool verifies what it wrote (its "Hash of data verified").
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from host_tools.device import DeviceError, Progress
from host_tools.device.tool import run_tool
from host_tools.profiles import Profile, list_profiles, load_profile

DEFAULT_BAUD = 460800
_WRONG_CHIP = re.compile(r"This chip is (\S+?),? not (\S+?)[.,]")


def esptool_argv(profile: Profile, port: str, baud: int) -> list[str]:
    """The esptool command line (before the command) for this chip and port."""
    return [sys.executable, "-m", "esptool", "--chip", profile.chip, "--port", port, "--baud", str(baud)]


def flash_image(profile: Profile, port: str, image: Path, progress: Progress, *, baud: int = DEFAULT_BAUD) -> None:
    """Erase the chip on `port` and write `image` at the profile's flash offset."""
    base = esptool_argv(profile, port, baud)
    progress(f"erasing the flash of the {profile.chip} on {port} (esptool)")
    _esptool([*base, "erase-flash"], profile, port, progress)
    offset = f"0x{profile.flash_offset:x}"
    progress(f"writing {image.name} at {offset} (esptool)")
    _esptool([*base, "write-flash", offset, str(image)], profile, port, progress)


def _esptool(argv: list[str], profile: Profile, port: str, progress: Progress) -> None:
    status, output = run_tool(argv, progress, "esptool")
    if status == 0:
        return
    if m := _WRONG_CHIP.search(output):
        found = m.group(1)
        fits = [n for n in list_profiles() if load_profile(n).chip == found.lower().replace("-", "")]
        hint = f"BOARD={fits[0]}" if fits else "a profile for that chip (`boardmcp boards` lists them)"
        raise DeviceError(
            f"wrong chip: the board on {port} is an {found}, but board profile {profile.name} is for {profile.chip}",
            f"flash it with {hint}; nothing was written",
        )
    if "Failed to connect" in output or "No serial data received" in output:
        raise DeviceError(
            f"the chip on {port} did not answer esptool (not in its bootloader)",
            "hold BOOT, press and release RESET, release BOOT, then retry",
        )
    if "port is busy" in output or "Could not exclusively lock" in output:
        raise DeviceError(
            f"serial port {port} is busy: another program has it open",
            "close it (a serial monitor, screen, mpremote, or another boardmcp) and retry",
        )
    if "MD5 of file does not match" in output or "verify failed" in output.lower():
        raise DeviceError(
            f"checksum mismatch: the flash of the chip on {port} does not hold what was written",
            "retry at a lower speed (--baud 115200); a failing cable or flash chip can cause this",
        )
    last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
    raise DeviceError(f"esptool failed ({last.strip()})", "see esptool's output above")
