"""Copy the firmware to a board running MicroPython: no erase, the board's own files kept.

    deploy(load_profile("esp32s3"), "/dev/ttyACM0", progress=print, workdir=Path("build/deploy"))

The files are staged exactly as the emulator runs them (host_tools/stage.py: main.py, board.json,
boardmcp/**/*.mpy compiled by mpy-cross for the profile's arch) and copied with mpremote, which
skips files whose sha256 already matches. Modules that no longer exist are removed from the board;
config.json (Wi-Fi, token) is the board's own and is never overwritten.
"""

from __future__ import annotations

from pathlib import Path

from host_tools.device import DeviceError, Progress
from host_tools.device.tool import run_tool
from host_tools.executables import find_executable
from host_tools.profiles import Profile
from host_tools.stage import PACKAGE, stage_firmware

# Runs on the board: delete files under boardmcp/ that the new firmware does not have.
_PRUNE = """
import os
keep = set(%r)
def prune(d):
    for e in os.ilistdir(d):
        p = d + '/' + e[0]
        if e[1] == 0x4000:
            prune(p)
            if not os.listdir(p):
                os.rmdir(p)
        elif p not in keep:
            os.remove(p)
try:
    prune(%r)
except OSError:
    pass
"""


def mpremote(port: str, *args: str) -> list[str]:
    """`mpremote connect <port> <args…>` as an argv."""
    exe = find_executable("mpremote")
    if exe is None:
        raise DeviceError("mpremote not found", "install the host tools: `make` creates .venv with it")
    return [str(exe), "connect", port, *args]


def run_mpremote(port: str, args: list[str], progress: Progress, doing: str) -> str:
    """Run one mpremote command chain; map its failures to what the user should do."""
    status, output = run_tool(mpremote(port, *args), progress, "mpremote")
    if status == 0:
        return output
    if "could not enter raw repl" in output or "failed to access" in output or "TransportError" in output:
        raise DeviceError(
            f"no MicroPython REPL on {port} while {doing}",
            "press the board's RESET button and retry; if MicroPython is not on it yet, run `boardmcp flash`",
        )
    last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
    raise DeviceError(f"mpremote failed while {doing} ({last.strip()})", "see mpremote's output above")


def deploy(profile: Profile, port: str, progress: Progress, *, workdir: Path, firmware_dir: Path | None = None) -> None:
    """Compile the firmware for `profile` and copy it to the board on `port`."""
    progress(f"compiling the firmware for {profile.chip} (mpy-cross -march={profile.mpy_arch})")
    staged = stage_firmware(profile, workdir / "fs", {}, firmware_dir=firmware_dir, cache_dir=workdir / ".mpy-cache")
    modules = sorted(p.relative_to(staged).as_posix() for p in (staged / PACKAGE).rglob("*.mpy"))
    progress(f"copying main.py, board.json and {len(modules)} modules to the board on {port} (mpremote)")
    run_mpremote(
        port,
        [
            "exec",
            _PRUNE % (modules, PACKAGE),
            "+",
            "fs",
            "cp",
            "-r",
            str(staged / PACKAGE),
            str(staged / "main.py"),
            str(staged / "board.json"),
            ":",
        ],
        progress,
        "copying the firmware",
    )
