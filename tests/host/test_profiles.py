"""Board profiles load, and bad ones are rejected with a message that says what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host_tools.profiles import ProfileError, list_profiles, load_profile, repo_root


def test_lists_the_three_boards() -> None:
    assert {"esp32", "esp32s3", "esp32c3"} <= set(list_profiles())


@pytest.mark.parametrize(
    ("name", "chip", "arch", "offset"),
    [
        ("esp32", "esp32", "xtensawin", 0x1000),
        ("esp32s3", "esp32s3", "xtensawin", 0),
        ("esp32c3", "esp32c3", "rv32imc", 0),
    ],
)
def test_loads_each_board(name: str, chip: str, arch: str, offset: int) -> None:
    p = load_profile(name)
    assert (p.name, p.chip, p.mpy_arch, p.flash_offset) == (name, chip, arch, offset)
    assert p.raw == json.loads((repo_root() / "boards" / f"{name}.json").read_text())
    assert p.hostname_for("abc123") == "boardmcp-abc123"
    assert p.heap_bytes > 100_000


def test_reserved_pins_and_soft_groups() -> None:
    esp32 = load_profile("esp32")
    assert esp32.reserved_reason(6) == "flash (SPI)"
    assert esp32.reserved_reason(2) is None  # strapping pins are soft: usable with care
    assert esp32.reserved_reason(4) is None
    c3 = load_profile("esp32c3")
    assert (c3.led_pin, c3.led_active_low) == (8, True)  # its LED sits on a soft strapping pin


def test_unknown_board_lists_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown board 'esp99'.*esp32, esp32c3, esp32s3"):
        load_profile("esp99")


def _write(tmp_path: Path, **changes: object) -> Path:
    raw = json.loads((repo_root() / "boards" / "esp32.json").read_text())
    raw.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del raw[key]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"heap_bytes": None}, "missing field 'heap_bytes'"),
        ({"heap_bytes": "lots"}, "field 'heap_bytes' must be int"),
        ({"mpy_arch": "z80"}, "mpy_arch 'z80' is not one of"),
        ({"led": {"pin": 7}}, r"LED pin 7 is reserved \(flash \(SPI\)\)"),
        ({"led": {"pin": 36}}, "LED pin 36 is reserved"),
        ({"hostname": "board"}, "hostname must contain"),
        ({"flash_offset": "zero"}, "not a hex number"),
        ({"reserved_pins": [{"pins": "1,2", "reason": "x"}]}, r"reserved_pins\[0\].pins"),
    ],
)
def test_bad_profiles_are_rejected(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    path = _write(tmp_path, **changes)
    with pytest.raises(ProfileError, match=message) as err:
        load_profile(path)
    assert str(path) in str(err.value)


def test_unreadable_profile(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{nope")
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile(path)
