"""`make lint` type-checks firmware against the esp32 port's stubs: an API the port lacks fails."""

import json
import subprocess
import sys
from pathlib import Path

from host_tools.profiles import repo_root

PYRIGHT = Path(sys.executable).with_name("pyright")
TYPINGS = repo_root() / ".venv" / "mpy-typings"


def _pyright(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    config = json.loads((repo_root() / "firmware" / "pyrightconfig.json").read_text())
    config.update(typeshedPath=str(TYPINGS), stubPath=str(TYPINGS), include=["."])
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    (tmp_path / "fw.py").write_text(source)
    return subprocess.run([str(PYRIGHT)], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)


def test_pyright_rejects_apis_the_esp32_port_lacks(tmp_path: Path) -> None:
    assert TYPINGS.is_dir(), "the MicroPython stubs are missing: `make lint` installs them"
    good = _pyright(tmp_path, "import machine, network\nmachine.Pin(2, machine.Pin.OUT).on()\nnetwork.hostname('x')\n")
    assert good.returncode == 0, good.stdout
    # CPython-only APIs and ones the esp32 port does not have.
    bad = _pyright(tmp_path, "import machine, asyncio\nmachine.ADC(34).read_voltage()\nasyncio.ticks()\n")
    assert bad.returncode != 0
    assert '"read_voltage"' in bad.stdout and '"ticks"' in bad.stdout
