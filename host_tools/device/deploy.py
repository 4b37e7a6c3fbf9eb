"""Copy the firmware to a board running MicroPython: no erase, the board's own files kept.

    deploy(load_profile("esp32s3"), "/dev/ttyACM0", progress=print, workdir=Path("build/deploy"))

The files are staged exactly as the emulator runs them (host_tools/stage.py: main.py, board.json,
boardmcp/**/*.mpy compiled by mpy-cross for the profile's arch) and copied with mpremote, which
skips files whose sha256 already matches. Modules that no longer exist are removed from the board;
config.json (Wi-Fi, token) is the board's own and is never overwritten, but is read first: the
MQTT transport goes only to a board whose config.json has an "mqtt" section.
"""

from __future__ import annotations

from pathlib import Path

from host_tools.device import DeviceError, Progress
from host_tools.device.tool import run_tool
from host_tools.executables import find_executable
from host_tools.profiles import Profile
from host_tools.stage import PACKAGE, opt_flag, stage_firmware

# Runs on the board: delete files under boardmcp/ that the new firmware does not have, and make
# the directories it needs.
_PRUNE = """
import os
keep = set(%r)
for d in %r:
    try:
        os.mkdir(d)
    except OSError:
        pass
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


# Runs on the board: whether its config.json asks for MCP over MQTT (only that is printed: the
# file holds the Wi-Fi password and the token, and mpremote's output is shown).
_USES_MQTT = """
import json
try:
    with open('config.json') as f:
        print('uses-mqtt', bool(json.load(f).get('mqtt')))
except Exception:  # missing, or not a JSON object: a board without MQTT
    print('uses-mqtt', False)
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


def deploy(
    profile: Profile,
    port: str,
    progress: Progress,
    *,
    workdir: Path,
    firmware_dir: Path | None = None,
    line_numbers: bool = False,
) -> None:
    """Compile the firmware for `profile` and copy it to the board on `port` (`line_numbers`: keep
    them in tracebacks, at some flash and heap)."""
    output = run_mpremote(port, ["exec", _USES_MQTT], progress, "reading the board's config.json")
    uses_mqtt = "uses-mqtt True" in output
    opt = opt_flag(line_numbers)
    progress(f"compiling the firmware for {profile.chip} (mpy-cross -march={profile.mpy_arch} {opt})")
    staged = stage_firmware(
        profile,
        workdir / "fs",
        {"mqtt": True} if uses_mqtt else {},  # config.json itself is not copied
        firmware_dir=firmware_dir,
        cache_dir=workdir / ".mpy-cache",
        line_numbers=line_numbers,
    )
    modules = sorted(p.relative_to(staged).as_posix() for p in (staged / PACKAGE).rglob("*.mpy"))
    dirs = sorted({m.rsplit("/", 1)[0] for m in modules}, key=len)
    progress(f"copying main.py, board.json and {len(modules)} modules to the board on {port} (mpremote)")
    # One `fs cp <files…> :<dir>/` per directory: explicit destinations (mpremote's recursive copy
    # to an existing directory nests it), and files whose sha256 matches are skipped.
    chain = ["exec", _PRUNE % (modules, dirs, PACKAGE)]
    for d in dirs:
        chain += ["+", "fs", "cp", *(str(staged / m) for m in modules if m.rsplit("/", 1)[0] == d), f":{d}/"]
    for top in ("main.py", "board.json"):
        chain += ["+", "fs", "cp", str(staged / top), f":{top}"]
    run_mpremote(
        port,
        chain,
        progress,
        "copying the firmware",
    )
