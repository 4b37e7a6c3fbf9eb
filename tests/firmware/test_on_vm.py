"""Firmware unit tests, run on the real MicroPython VM against the staged .mpy firmware.

Each `fw_*.py` module here is MicroPython code; its `test_*` functions become pytest items.
One VM run per module reports every function as a JSON line (see mpy_runner.py).
"""

import ast
import json
import os
import subprocess
from functools import cache
from pathlib import Path

import pytest

from host_tools.emulator.runner import find_micropython
from host_tools.profiles import load_profile
from host_tools.stage import stage_firmware

HERE = Path(__file__).parent
MICROPYTHON = find_micropython()
SIM = HERE.parent.parent / "host_tools" / "emulator" / "board"


def _cases() -> list[tuple[str, str]]:
    cases = []
    for path in sorted(HERE.glob("fw_*.py")):
        tree = ast.parse(path.read_text())
        cases += [
            (path.stem, node.name)
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
        ]
    return cases


@pytest.fixture(scope="session")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    profile = load_profile("esp32")  # the smallest heap of the profiles
    return stage_firmware(profile, tmp_path_factory.mktemp("fw") / "fs", {})


@cache
def _run_module(staged: Path, module: str) -> dict[str, dict]:
    profile = load_profile("esp32")
    env = dict(os.environ, MICROPYPATH=f"{staged}:{HERE}:{SIM}:.frozen")
    proc = subprocess.run(
        [str(MICROPYTHON), "-X", f"heapsize={profile.heap_bytes}", str(HERE / "mpy_runner.py"), module],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=staged,
        check=False,
    )
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            results[rec["test"]] = rec
    if not results:
        pytest.fail(f"{module} produced no results:\n{proc.stdout}\n{proc.stderr}")
    return results


@pytest.mark.parametrize(("module", "test"), _cases())
def test_firmware(staged: Path, module: str, test: str) -> None:
    rec = _run_module(staged, module).get(test)
    assert rec is not None, f"{module}.{test} did not run"
    assert rec["ok"], rec.get("error")
