"""Staging lays out the board's filesystem as deploy does, with .mpy files the VM imports."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from host_tools import stage
from host_tools.emulator.runner import find_micropython
from host_tools.profiles import DEVICE_FIELDS, load_profile
from host_tools.stage import StageError, stage_firmware

CONFIG = {"wifi": {"ssid": "lab", "password": "pw"}, "token": None, "http": {"host": "127.0.0.1", "port": 80}}


@pytest.fixture
def firmware(tiny_firmware: Path) -> Path:
    transport = tiny_firmware / "boardmcp" / "transport"
    transport.mkdir()
    (transport / "__init__.py").write_text("")
    (transport / "http.py").write_text("def fail():\n    raise ValueError('from http')\n\nNAME = 'http'\n")
    return tiny_firmware


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_layout(tmp_path: Path, firmware: Path) -> None:
    profile = load_profile("esp32c3")
    dest = stage_firmware(profile, tmp_path / "fs", CONFIG, firmware_dir=firmware)
    assert _files(dest) == {
        "main.py",
        "board.json",
        "config.json",
        "boardmcp/__init__.mpy",
        "boardmcp/transport/__init__.mpy",
        "boardmcp/transport/http.mpy",
    }
    assert (dest / "main.py").read_text() == (firmware / "main.py").read_text()
    board = json.loads((dest / "board.json").read_text())
    assert board == {k: v for k, v in profile.raw.items() if k in DEVICE_FIELDS}
    assert board["reserved_pins"] == profile.raw["reserved_pins"] and "firmware" not in board  # the host's part stays
    assert ", " not in (dest / "board.json").read_text()  # compact: every byte costs flash
    assert json.loads((dest / "config.json").read_text()) == CONFIG
    assert (dest / "boardmcp" / "transport" / "http.mpy").read_bytes()[:2] == b"M\x06"


def test_mqtt_is_staged_only_for_a_board_configured_for_it(tmp_path: Path, firmware: Path) -> None:
    (firmware / "boardmcp" / "transport" / "mqtt.py").write_text("NAME = 'mqtt'\n")
    profile = load_profile("esp32c3")
    plain = stage_firmware(profile, tmp_path / "plain", CONFIG, firmware_dir=firmware)
    assert "boardmcp/transport/mqtt.mpy" not in _files(plain)
    fleet = stage_firmware(profile, tmp_path / "fleet", {**CONFIG, "mqtt": {"broker": "b"}}, firmware_dir=firmware)
    assert "boardmcp/transport/mqtt.mpy" in _files(fleet)


@pytest.mark.parametrize("line_numbers", [False, True])
def test_vm_imports_the_mpy_files(tmp_path: Path, firmware: Path, line_numbers: bool) -> None:
    dest = stage_firmware(
        load_profile("esp32s3"), tmp_path / "fs", CONFIG, firmware_dir=firmware, line_numbers=line_numbers
    )
    (firmware / "boardmcp" / "transport" / "http.py").unlink()  # only the .mpy is left to import
    code = "import boardmcp, boardmcp.transport.http as h\nprint(boardmcp.VERSION, h.NAME)\nh.fail()"
    proc = subprocess.run(
        [str(find_micropython()), "-c", code],
        cwd=dest,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert proc.stdout.splitlines()[0] == "0.0-test http"
    # The traceback names the file as the board sees it and the function; the line only on request.
    traceback = proc.stdout + proc.stderr
    assert 'File "boardmcp/transport/http.py", line ' in traceback and ", in fail" in traceback
    assert ('File "boardmcp/transport/http.py", line 2, in fail' in traceback) == line_numbers


def test_line_numbers_cost_flash(tmp_path: Path, firmware: Path) -> None:
    profile = load_profile("esp32s3")
    lean = stage_firmware(profile, tmp_path / "lean", CONFIG, firmware_dir=firmware)
    lined = stage_firmware(profile, tmp_path / "lined", CONFIG, firmware_dir=firmware, line_numbers=True)
    http = Path("boardmcp", "transport", "http.mpy")
    assert (lean / http).stat().st_size < (lined / http).stat().st_size


def test_restaging_reuses_compiled_files_and_drops_stale_ones(
    tmp_path: Path, firmware: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = load_profile("esp32")
    stage_firmware(profile, tmp_path / "fs", CONFIG, firmware_dir=firmware)
    runs: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        runs.append(argv)
        return real_run(argv, **kw)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(stage.subprocess, "run", counting_run)
    (firmware / "boardmcp" / "transport" / "http.py").unlink()
    (firmware / "boardmcp" / "new.py").write_text("X = 1\n")
    dest = stage_firmware(profile, tmp_path / "fs", CONFIG, firmware_dir=firmware)
    assert [Path(argv[-1]).name for argv in runs] == ["new.py"]
    assert "boardmcp/transport/http.mpy" not in _files(dest)
    assert "boardmcp/new.mpy" in _files(dest)


def test_compile_error_carries_mpy_cross_message(tmp_path: Path, firmware: Path) -> None:
    (firmware / "boardmcp" / "broken.py").write_text("def f(:\n")
    with pytest.raises(StageError, match=r"(?s)mpy-cross failed on boardmcp/broken.py.*SyntaxError"):
        stage_firmware(load_profile("esp32"), tmp_path / "fs", CONFIG, firmware_dir=firmware)


def test_missing_main_py(tmp_path: Path) -> None:
    with pytest.raises(StageError, match=r"main\.py does not exist"):
        stage_firmware(load_profile("esp32"), tmp_path / "fs", CONFIG, firmware_dir=tmp_path)


def test_fixtures_go_only_to_profiles_that_ask_for_them(tmp_path: Path, firmware: Path) -> None:
    tools = firmware / "boardmcp" / "tools"
    tools.mkdir()
    (tools / "__init__.py").write_text("")
    (tools / "conformance.py").write_text("RESIDENT = True\n")
    plain = stage_firmware(load_profile("esp32s3"), tmp_path / "plain", CONFIG, firmware_dir=firmware)
    fixtured = stage_firmware(load_profile("conformance"), tmp_path / "fixtured", CONFIG, firmware_dir=firmware)
    assert not (plain / "boardmcp" / "tools" / "conformance.mpy").exists()
    assert (fixtured / "boardmcp" / "tools" / "conformance.mpy").is_file()


def test_only_the_declared_sensors_drivers_are_staged(tmp_path: Path, firmware: Path) -> None:
    drivers = firmware / "boardmcp" / "hw" / "sensors"
    drivers.mkdir(parents=True)
    for name in ("__init__", "bme280", "bh1750", "sht4x"):
        (drivers / f"{name}.py").write_text("X = 1\n")
    declared = {s.type for s in load_profile("esp32s3").sensors}
    assert declared == {"bme280", "bh1750"}
    dest = stage_firmware(load_profile("esp32s3"), tmp_path / "fs", CONFIG, firmware_dir=firmware)
    assert {p.name for p in (dest / "boardmcp" / "hw" / "sensors").iterdir()} == {
        "__init__.mpy",
        "bme280.mpy",
        "bh1750.mpy",
    }
    bare = stage_firmware(load_profile("esp32"), tmp_path / "bare", CONFIG, firmware_dir=firmware)
    assert {p.name for p in (bare / "boardmcp" / "hw" / "sensors").iterdir()} == {"__init__.mpy"}
    every = stage_firmware(load_profile("esp32"), tmp_path / "every", CONFIG, firmware_dir=firmware, every_driver=True)
    assert len(list((every / "boardmcp" / "hw" / "sensors").iterdir())) == 4
