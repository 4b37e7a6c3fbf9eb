"""Firmware unit tests, run on the real MicroPython VM against the staged .mpy firmware.

Each `fw_*.py` module here is MicroPython code; its `test_*` functions become pytest items.
One VM run per module reports every function as a JSON line (see mpy_runner.py). The emulator's
simulated `machine` comes first on the path, wired to BENCH: every sensor model the drivers
support, so the drivers in hw/ run unchanged against register-level parts.
"""

import ast
import json
import os
import subprocess
from functools import cache
from pathlib import Path

import pytest

from host_tools.emulator.runner import EMULATOR_HEAP_BYTES, SIM_SOURCES, board_mac, find_micropython
from host_tools.profiles import load_profile
from host_tools.stage import stage_firmware

HERE = Path(__file__).parent
MICROPYTHON = find_micropython()
# What the test bench wires to the simulated esp32s3: I2C bus 0 on SDA 8 / SCL 9 with one of each
# I2C part at its default address, a DS18B20 on GPIO 4, and 1.5 V on ADC pin 1; and the access
# point in range.
BENCH = {
    "wifi": {"ssid": "bench", "password": "bench-password"},
    "i2c": [
        {
            "name": "i2c0",
            "sda": 8,
            "scl": 9,
            "devices": [
                {"type": kind, "address": addr, "name": kind}
                for kind, addr in (
                    ("bme280", 0x76),
                    ("sht4x", 0x44),
                    ("bh1750", 0x23),
                    ("aht20", 0x38),
                    ("mpu6050", 0x68),
                    ("ina219", 0x40),
                )
            ],
        }
    ],
    "onewire": [{"name": "ow4", "pin": 4, "devices": [{"type": "ds18b20", "name": "ds18b20"}]}],
    "analog": {"1": 1.5},
}


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
    """The firmware staged into <tmp>/fs, the sim into <tmp>/sim, and an empty <tmp>/state."""
    profile = load_profile("esp32")  # the smallest heap of the profiles
    root = tmp_path_factory.mktemp("fw")
    (root / "sim").mkdir()
    (root / "state").mkdir()
    for src in SIM_SOURCES.glob("*.py"):
        (root / "sim" / src.name).write_text(src.read_text())
    sim = {"board": "bench", "chip": "esp32s3", "mac": board_mac("bench"), "state_dir": str(root / "state"), **BENCH}
    (root / "sim" / "sim.json").write_text(json.dumps(sim))
    # Every driver: fw_hw_sensors tests each. Line numbers: a failing test's traceback points at
    # the line (and the heap is tighter than the deployed build's, not looser).
    return stage_firmware(profile, root / "fs", {}, every_driver=True, line_numbers=True)


def _client_heap(module: str) -> int:
    """Extra heap a module asks for with `CLIENT_HEAP = <bytes>`: its test client runs in the same VM."""
    for node in ast.parse((HERE / f"{module}.py").read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["CLIENT_HEAP"]:
            return int(ast.literal_eval(node.value))
    return 0


@cache
def _run_module(staged: Path, module: str) -> dict[str, dict]:
    profile = load_profile("esp32")
    env = dict(os.environ, MICROPYPATH=f"{staged}:{HERE}:{staged.parent / 'sim'}:.frozen")
    # The emulated esp32's VM heap: the profile's, plus what the simulated hardware and the
    # VM's 64-bit words take (as EmulatedBoard gives it); plus a module's test client.
    heap = profile.heap_bytes + EMULATOR_HEAP_BYTES + _client_heap(module)
    proc = subprocess.run(
        [str(MICROPYTHON), "-X", f"heapsize={heap}", str(HERE / "mpy_runner.py"), module],
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
