"""Board profiles: `boards/<name>.json`, one per supported board.

A profile is data, not code. It is validated here once so every tool can trust it, and the raw
dict is kept because the board gets its firmware-facing part as `board.json` (`device_json()`).

    >>> p = load_profile("esp32s3")
    >>> p.chip, p.mpy_arch, p.led_pin
    ('esp32s3', 'xtensawin', 21)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
# The fields the firmware reads (board.json on the board). The rest is the host's (the firmware
# image, the heap to emulate, the emulator's readings, ...): a board parses board.json each time it
# loads a tools module, so every field it carries costs heap there.
DEVICE_FIELDS = (
    "name",
    "chip",
    "hostname",
    "http_port",
    "led",
    "reserved_pins",
    "gpio_allow",
    "i2c",
    "adc",
    "sensors",
    "fixtures",
)
_MPY_ARCHES = ("xtensawin", "rv32imc", "xtensa", "armv6m", "armv7m", "armv7emsp", "x64", "x86")


@dataclass(frozen=True)
class ReservedPins:
    """A group of pins tools must not drive (unless `soft`), with the reason shown to users."""

    pins: tuple[int, ...]
    reason: str
    soft: bool = False
    input_ok: bool = False


@dataclass(frozen=True)
class I2CBus:
    """An I2C bus the board wires up: hardware controller `id` on these pins."""

    id: int
    sda: int
    scl: int
    freq: int


@dataclass(frozen=True)
class AdcChannel:
    """A named analog input: reading = calibrated pin volts x scale, in `unit`."""

    name: str
    pin: int
    atten: str
    scale: float
    unit: str
    samples: int


@dataclass(frozen=True)
class Sensor:
    """A sensor part attached to the board: on I2C `bus` at `address`, or on a 1-Wire `pin`."""

    name: str
    type: str
    bus: int | None
    address: int | None
    pin: int | None


# Sensor parts with a firmware driver (firmware/boardmcp/hw/sensors/<type>.py), and their bus.
SENSOR_TYPES = {
    "bme280": "i2c",
    "sht4x": "i2c",
    "bh1750": "i2c",
    "aht20": "i2c",
    "mpu6050": "i2c",
    "ina219": "i2c",
    "ds18b20": "onewire",
}
_ATTENS = ("0db", "2.5db", "6db", "11db")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


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
    gpio_allow: tuple[int, ...] = ()
    adc2_pins: tuple[int, ...] = ()
    i2c: tuple[I2CBus, ...] = ()
    adc: tuple[AdcChannel, ...] = ()
    sensors: tuple[Sensor, ...] = ()
    loopback: tuple[tuple[int, int], ...] = ()  # pin pairs wired together, for the conformance checks

    def device_json(self) -> dict[str, Any]:
        """The profile as the board gets it (`board.json`): only the fields the firmware reads."""
        return {k: v for k, v in self.raw.items() if k in DEVICE_FIELDS}

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
    return _validate_hardware(profile, fail)


def _ints(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _name_ok(name: object) -> bool:
    # Names become tool names and sensor:// URIs: keep them to lower-case identifiers.
    return isinstance(name, str) and 0 < len(name) <= 24 and set(name) <= _NAME_CHARS


def _validate_hardware(profile: Profile, fail: Callable[[str], ProfileError]) -> Profile:
    """Check the optional hardware sections (GPIO allowlist, I2C, ADC, sensors) and add them."""
    raw = profile.raw
    claimed: dict[int, str] = {profile.led_pin: "the LED"}  # pins a section already uses

    def claim(pin: object, what: str, input_only: bool = False) -> None:
        if not isinstance(pin, int) or isinstance(pin, bool):
            raise fail(f"{what}: pin must be an int")
        for group in profile.reserved:
            if pin in group.pins and not group.soft and not (input_only and group.input_ok):
                raise fail(f"{what}: pin {pin} is reserved ({group.reason})")
        if pin in claimed:
            raise fail(f"{what}: pin {pin} is already used by {claimed[pin]}")
        claimed[pin] = what

    buses = []
    for i, bus in enumerate(raw.get("i2c", [])):
        if not isinstance(bus, dict) or not _ints([bus.get("id"), bus.get("freq", 100000)]):
            raise fail(f"i2c[{i}] needs an int id (and an int freq)")
        claim(bus.get("sda"), f"i2c bus {bus['id']} SDA")
        claim(bus.get("scl"), f"i2c bus {bus['id']} SCL")
        buses.append(I2CBus(bus["id"], bus["sda"], bus["scl"], bus.get("freq", 100000)))
    if len({b.id for b in buses}) != len(buses):
        raise fail("i2c bus ids must be unique")

    adc2 = raw.get("adc2_pins", {"pins": []})
    if not isinstance(adc2, dict) or not _ints(adc2.get("pins")):
        raise fail("adc2_pins.pins must be a list of ints")
    channels = []
    for i, ch in enumerate(raw.get("adc", [])):
        if not isinstance(ch, dict) or not _name_ok(ch.get("name")):
            raise fail(f"adc[{i}].name must be a lower-case identifier")
        if ch.get("pin") in adc2["pins"]:
            raise fail(f"adc channel {ch['name']}: pin {ch['pin']} is {adc2.get('reason', 'on ADC2')}")
        claim(ch.get("pin"), f"adc channel {ch['name']}", input_only=True)
        atten = ch.get("atten", "11db")
        if atten not in _ATTENS:
            raise fail(f"adc channel {ch['name']}: atten must be one of {', '.join(_ATTENS)}")
        scale, samples = ch.get("scale", 1.0), ch.get("samples", 8)
        if not isinstance(scale, (int, float)) or not isinstance(samples, int) or not 1 <= samples <= 64:
            raise fail(f"adc channel {ch['name']}: scale must be a number and samples an int in 1..64")
        channels.append(AdcChannel(ch["name"], ch["pin"], atten, float(scale), str(ch.get("unit", "V")), samples))

    sensors = []
    bus_ids = {b.id for b in buses}
    for i, spec in enumerate(raw.get("sensors", [])):
        if not isinstance(spec, dict) or not _name_ok(spec.get("name")):
            raise fail(f"sensors[{i}].name must be a lower-case identifier")
        name, kind = spec["name"], spec.get("type")
        if kind not in SENSOR_TYPES:
            raise fail(f"sensor {name}: type {kind!r} is not one of {', '.join(SENSOR_TYPES)}")
        if SENSOR_TYPES[kind] == "i2c":
            if spec.get("bus") not in bus_ids:
                raise fail(f"sensor {name}: bus {spec.get('bus')!r} is not an i2c bus of this profile")
            address = spec.get("address")
            if not isinstance(address, int) or not 0x08 <= address <= 0x77:
                raise fail(f"sensor {name}: address must be a 7-bit I2C address (8..119)")
            sensors.append(Sensor(name, kind, spec["bus"], address, None))
        else:
            claim(spec.get("pin"), f"sensor {name}")
            sensors.append(Sensor(name, kind, None, None, spec["pin"]))
    if len({s.name for s in sensors}) != len(sensors):
        raise fail("sensor names must be unique")
    taken = {(s.bus, s.address) for s in sensors if s.bus is not None}
    if len(taken) != sum(1 for s in sensors if s.bus is not None):
        raise fail("two sensors share an I2C bus and address")

    allow = raw.get("gpio_allow", [])
    if not _ints(allow):
        raise fail("gpio_allow must be a list of ints")
    for pin in allow:
        for group in profile.reserved:
            if pin in group.pins and not group.input_ok:
                raise fail(f"gpio_allow: pin {pin} is reserved ({group.reason})")
        if pin in claimed:
            raise fail(f"gpio_allow: pin {pin} is already used by {claimed[pin]}")
    loopback = raw.get("loopback", [])
    if not isinstance(loopback, list) or not all(isinstance(p, list) and len(p) == 2 and _ints(p) for p in loopback):
        raise fail("loopback must be a list of [out_pin, in_pin] pairs")
    for out, inp in loopback:
        if out == inp or out not in allow or inp not in allow:
            raise fail(f"loopback [{out}, {inp}]: two different pins of gpio_allow")
    return replace(
        profile,
        gpio_allow=tuple(allow),
        loopback=tuple((p[0], p[1]) for p in loopback),
        adc2_pins=tuple(adc2["pins"]),
        i2c=tuple(buses),
        adc=tuple(channels),
        sensors=tuple(sensors),
    )
