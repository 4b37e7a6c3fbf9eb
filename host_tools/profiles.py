"""Board profiles: `boards/<name>.json`, one per supported board.

A profile is data, not code. It is validated here once so every tool can trust it, and the raw
dict is kept because it is copied to the board as `board.json`.

    >>> p = load_profile("esp32s3")
    >>> p.chip, p.mpy_arch, p.led_pin
    ('esp32s3', 'xtensawin', 21)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ProfileError(ValueError):
    """A board profile is missing, unreadable or inconsistent."""


# field -> accepted JSON types; bool is excluded from int explicitly below.
_REQUIRED: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "title": (str,),
    "chip": (str,),
    "mpy_arch": (str,),
    "micropython_board": (str,),
    "flash_offset": (str,),
    "heap_bytes": (int,),
    "hostname": (str,),
    "http_port": (int,),
    "led": (dict,),
    "reserved_pins": (list,),
}
_MPY_ARCHES = ("xtensawin", "rv32imc", "xtensa", "armv6m", "armv7m", "armv7emsp", "x64", "x86")


@dataclass(frozen=True)
class ReservedPins:
    """A group of pins tools must not drive (unless `soft`), with the reason shown to users."""

    pins: tuple[int, ...]
    reason: str
    soft: bool = False
    input_ok: bool = False


@dataclass(frozen=True)
class Profile:
    """A validated board profile; `raw` is the JSON dict exactly as loaded."""

    name: str
    title: str
    chip: str
    mpy_arch: str
    micropython_board: str
    flash_offset: int
    heap_bytes: int
    hostname: str
    http_port: int
    led_pin: int
    led_active_low: bool
    reserved: tuple[ReservedPins, ...]
    path: Path
    raw: dict[str, Any] = field(repr=False, compare=False)

    def hostname_for(self, board_id: str) -> str:
        """The board's hostname, e.g. `boardmcp-a1b2c3` for id `a1b2c3`."""
        return self.hostname.format(id=board_id)

    def reserved_reason(self, pin: int) -> str | None:
        """Why `pin` must not be driven, or None if it is free (soft groups count as free)."""
        for group in self.reserved:
            if pin in group.pins and not group.soft:
                return group.reason
        return None


def repo_root() -> Path:
    """The repository root: the nearest ancestor of this file holding `boards/` and `firmware/`."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "boards").is_dir() and (parent / "firmware").is_dir():
            return parent
    raise ProfileError(f"cannot find the boardmcp repository (boards/ and firmware/) above {__file__}")


def boards_dir() -> Path:
    """The directory holding the board profiles."""
    return repo_root() / "boards"


def list_profiles() -> list[str]:
    """Names of the known board profiles, sorted."""
    return sorted(p.stem for p in boards_dir().glob("*.json"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load and validate a profile by board name (`esp32s3`) or by path to a JSON file."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = boards_dir() / f"{name_or_path}.json"
        if not path.is_file():
            known = ", ".join(list_profiles()) or "none"
            raise ProfileError(f"unknown board {str(name_or_path)!r}; known boards: {known}")
    return _validate(_read(path, ()), path)


def _read(path: Path, seen: tuple[Path, ...]) -> object:
    # A profile may say `"extends": "<board>"`: it is that board's profile with these fields on top.
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc}") from exc
    if not isinstance(raw, dict) or "extends" not in raw:
        return raw
    base_path = boards_dir() / f"{raw.pop('extends')}.json"
    if base_path in seen or base_path == path:
        raise ProfileError(f"{path}: profiles extend each other in a loop")
    base = _read(base_path, (*seen, path))
    if not isinstance(base, dict):
        raise ProfileError(f"{base_path}: a profile must be a JSON object")
    return {**base, **raw}


def _validate(raw: object, path: Path) -> Profile:
    def fail(msg: str) -> ProfileError:
        return ProfileError(f"{path}: {msg}")

    if not isinstance(raw, dict):
        raise fail("a profile must be a JSON object")
    for key, types in _REQUIRED.items():
        if key not in raw:
            raise fail(f"missing field {key!r}")
        value = raw[key]
        if not isinstance(value, types) or (types == (int,) and isinstance(value, bool)):
            raise fail(f"field {key!r} must be {types[0].__name__}, got {type(value).__name__}")
    if raw["mpy_arch"] not in _MPY_ARCHES:
        raise fail(f"mpy_arch {raw['mpy_arch']!r} is not one of {', '.join(_MPY_ARCHES)}")
    if "{id}" not in raw["hostname"]:
        raise fail("hostname must contain '{id}'")
    if raw["heap_bytes"] < 16384:
        raise fail("heap_bytes is implausibly small (< 16384)")
    try:
        flash_offset = int(raw["flash_offset"], 16)
    except ValueError:
        raise fail(f"flash_offset {raw['flash_offset']!r} is not a hex number") from None

    led = raw["led"]
    if not isinstance(led.get("pin"), int) or isinstance(led.get("pin"), bool):
        raise fail("led.pin must be an int")
    reserved = []
    for i, group in enumerate(raw["reserved_pins"]):
        pins = group.get("pins") if isinstance(group, dict) else None
        if not isinstance(pins, list) or not all(isinstance(p, int) for p in pins):
            raise fail(f"reserved_pins[{i}].pins must be a list of ints")
        if not isinstance(group.get("reason"), str):
            raise fail(f"reserved_pins[{i}].reason must be a string")
        reserved.append(
            ReservedPins(
                pins=tuple(pins),
                reason=group["reason"],
                soft=bool(group.get("soft", False)),
                input_ok=bool(group.get("input_ok", False)),
            )
        )
    profile = Profile(
        name=raw["name"],
        title=raw["title"],
        chip=raw["chip"],
        mpy_arch=raw["mpy_arch"],
        micropython_board=raw["micropython_board"],
        flash_offset=flash_offset,
        heap_bytes=raw["heap_bytes"],
        hostname=raw["hostname"],
        http_port=raw["http_port"],
        led_pin=led["pin"],
        led_active_low=bool(led.get("active_low", False)),
        reserved=tuple(reserved),
        path=path,
        raw=raw,
    )
    # input_ok groups (input-only pins) cannot drive an LED either.
    reason = profile.reserved_reason(profile.led_pin)
    if reason is not None:
        raise fail(f"LED pin {profile.led_pin} is reserved ({reason})")
    return profile
