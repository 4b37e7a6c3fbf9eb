"""Shared fixtures for the host tests: a throwaway firmware and a sim dir for the real VM."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from host_tools.emulator.runner import SIM_SOURCES, board_mac, find_micropython

# A minimal stand-in for the real firmware (written concurrently): it reads config.json and
# listens on the HTTP port, printing what it is doing.
TINY_MAIN = textwrap.dedent(
    """
    import json, socket
    import machine
    cfg = json.load(open("config.json"))
    print("tiny firmware booting, reset_cause", machine.reset_cause())
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(socket.getaddrinfo(cfg["http"]["host"], cfg["http"]["port"])[0][-1])
    s.listen(2)
    print("serving on", cfg["http"]["port"])
    while True:
        s.accept()[0].close()
    """
)


@pytest.fixture
def tiny_firmware(tmp_path: Path) -> Path:
    fw = tmp_path / "firmware"
    (fw / "boardmcp").mkdir(parents=True)
    (fw / "main.py").write_text(TINY_MAIN)
    (fw / "boardmcp" / "__init__.py").write_text("VERSION = '0.0-test'\n")
    return fw


class SimVM:
    """Runs MicroPython scripts on the real VM with the sim modules first on sys.path."""

    def __init__(self, root: Path, chip: str = "esp32s3") -> None:
        self.dir = root / "sim"
        self.state = root / "state"
        self.dir.mkdir()
        self.state.mkdir()
        for src in SIM_SOURCES.glob("*.py"):
            (self.dir / src.name).write_text(src.read_text())
        self.configure(chip=chip)

    def configure(self, **overrides: object) -> None:
        sim = {
            "board": "test",
            "chip": "esp32s3",
            "mac": board_mac("test"),
            "wifi": {"ssid": "lab", "password": "secret", "rssi": -50},
            "ip": "127.0.0.1",
            "state_dir": str(self.state),
            "reset_cause": 1,
        }
        sim.update(overrides)
        (self.dir / "sim.json").write_text(json.dumps(sim))

    def run(self, code: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(find_micropython()), "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"MICROPYPATH": f"{self.dir}::.frozen"},
            cwd=self.dir.parent,
            check=False,
        )

    def ok(self, code: str) -> list[str]:
        """Run `code`; assert it succeeded; return its output lines."""
        proc = self.run(code)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout.splitlines()


@pytest.fixture
def sim(tmp_path: Path) -> SimVM:
    return SimVM(tmp_path)
