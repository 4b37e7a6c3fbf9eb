"""The hardware contract from the board profile: forbidden pins are refused, declared sensors answer
within their datasheet ranges in SI units, ADC channels read within range, and (with --destructive)
pins wired together in a loopback read back what was written.

A profile declares a loopback as `"loopback": [[out_pin, in_pin], ...]`: pairs you wired together.
Checks skip, saying why, when the profile declares nothing to check or the firmware lacks the tool.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from board_client import Client
from board_target import Target

# type -> field -> (unit, min, max, the datasheet limit): the sensor's specified operating range.
SENSOR_RANGES: dict[str, dict[str, tuple[str, float, float, str]]] = {
    "bme280": {
        "temperature": ("degC", -40, 85, "BME280 datasheet §1: -40..+85 °C"),
        "humidity": ("%RH", 0, 100, "BME280 datasheet §1: 0..100 %RH"),
        "pressure": ("Pa", 30000, 110000, "BME280 datasheet §1: 300..1100 hPa"),
    },
    "aht20": {
        "temperature": ("degC", -40, 85, "AHT20 datasheet: -40..+85 °C"),
        "humidity": ("%RH", 0, 100, "AHT20 datasheet: 0..100 %RH"),
    },
    "sht4x": {
        "temperature": ("degC", -40, 125, "SHT4x datasheet: -40..+125 °C"),
        "humidity": ("%RH", 0, 100, "SHT4x datasheet: 0..100 %RH"),
    },
    "bh1750": {"illuminance": ("lx", 0, 65535, "BH1750FVI datasheet: 1..65535 lx")},
    "ds18b20": {"temperature": ("degC", -55, 125, "DS18B20 datasheet: -55..+125 °C")},
    "ina219": {
        "bus_voltage": ("V", 0, 26, "INA219 datasheet: bus 0..26 V"),
        "current": ("A", -3.2, 3.2, "INA219 datasheet: ±320 mV shunt range over 0.1 Ω"),
        "power": ("W", 0, 83.2, "INA219: 26 V x 3.2 A"),
    },
    "mpu6050": {
        **{f"accel_{a}": ("m/s^2", -156.9, 156.9, "MPU-6050 datasheet: ±16 g full scale") for a in "xyz"},
        **{f"gyro_{a}": ("rad/s", -34.91, 34.91, "MPU-6050 datasheet: ±2000 °/s full scale") for a in "xyz"},
        "temperature": ("degC", -40, 85, "MPU-6050 datasheet: -40..+85 °C"),
    },
}
ADC_MAX_VOLTS = 3.3  # VDD_A: no ESP32 ADC reads above its supply, whatever the attenuation
WIRING = "check the sensor's wiring, power and I2C address against the profile"


@pytest.fixture
def hw(target: Target) -> Iterator[Client]:
    """A handshake-era client over the target's first transport."""
    c = target.client(target.transports[0], "handshake")
    try:
        yield c
    finally:
        c.close()


def tools(client: Client) -> dict[str, dict[str, Any]]:
    """The board's tools by name (the firmware's tools/list pages are followed)."""
    found: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {}
    while True:
        reply = client.request("tools/list", params)
        assert "result" in reply, f"tools/list: {reply}"
        page = reply["result"]
        found |= {t["name"]: t for t in page["tools"]}
        if not page.get("nextCursor"):
            return found
        params = {"cursor": page["nextCursor"]}


def call(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tools/call result (a tool error is a result with isError)."""
    reply = client.request("tools/call", {"name": name, "arguments": arguments})
    assert "result" in reply, f"{name}{arguments}: protocol error {reply.get('error')}"
    return reply["result"]


def text(result: dict[str, Any]) -> str:
    """A result's text content, joined."""
    return " ".join(c.get("text", "") for c in result.get("content", ()))


def needs(available: dict[str, Any], *names: str) -> None:
    """Skip unless the firmware has these tools."""
    missing = [n for n in names if n not in available]
    if missing:
        pytest.skip(f"the firmware has no {', '.join(missing)} tool (a firmware without the GPIO/ADC/sensor tools)")


@pytest.mark.check(
    spec="ESP32 datasheets: flash/PSRAM, USB and console pins (the profile's reserved_pins)",
    hint="the firmware would drive a pin that crashes or bricks the board: do not use it until this passes",
)
def test_forbidden_pins_are_refused(target: Target, hw: Client) -> None:
    groups = [g for g in target.profile.reserved if not g.soft]
    if not groups:
        pytest.skip("the profile reserves no pins")
    needs(tools(hw), "gpio_write")
    for group in groups:
        for pin in group.pins:
            result = call(hw, "gpio_write", {"pin": pin, "value": 0})
            assert result.get("isError"), f"gpio_write drove GPIO {pin} ({group.reason})"
            assert group.reason in text(result), f"GPIO {pin}: the refusal should say why ({group.reason})"


@pytest.mark.check(spec="sensor datasheets (operating ranges, SI units)", hint=WIRING)
def test_sensors_read_within_range(target: Target, hw: Client) -> None:
    sensors = target.profile.raw.get("sensors") or []
    if not sensors:
        pytest.skip("the profile declares no sensors")
    available = tools(hw)
    if not any(name.startswith("read_") for name in available):
        pytest.skip("the firmware has no sensor tools (read_<sensor>)")
    for spec in sensors:
        tool = available.get(f"read_{spec['name']}")
        assert tool is not None, f"the profile declares sensor {spec['name']} but the board has no read_{spec['name']}"
        result = call(hw, tool["name"], {})
        assert not result.get("isError"), f"{spec['name']}: {text(result)}"
        ranges = SENSOR_RANGES.get(spec["type"], {})  # a type without known ranges: answering is the check
        values = result["structuredContent"]
        props = tool["outputSchema"]["properties"]
        for field, (unit, low, high, limit) in ranges.items():
            assert props[field].get("description") == unit, f"{spec['name']}.{field}: unit should be {unit}"
            assert low <= values[field] <= high, f"{spec['name']}.{field} = {values[field]} {unit}, outside {limit}"


@pytest.mark.check(
    spec=f"ESP32 ADC: 0..{ADC_MAX_VOLTS} V at the pin (VDD_A); value = pin volts x the profile's scale",
    hint="check the channel's divider and the profile's scale; a floating input reads noise",
)
def test_adc_channels_read_within_range(target: Target, hw: Client) -> None:
    channels = target.profile.raw.get("adc") or []
    if not channels:
        pytest.skip("the profile declares no ADC channels")
    needs(tools(hw), "adc_read")
    for ch in channels:
        result = call(hw, "adc_read", {"channel": ch["name"]})
        assert not result.get("isError"), f"{ch['name']}: {text(result)}"
        got = result["structuredContent"]
        assert 0 <= got["pin_volts"] <= ADC_MAX_VOLTS, f"{ch['name']}: {got['pin_volts']} V at GPIO {ch['pin']}"
        assert got["unit"] == ch.get("unit", "V")
        scale = ch.get("scale", 1.0)
        assert abs(got["value"] - got["pin_volts"] * scale) <= 0.01 * abs(scale) + 0.002, got


@pytest.mark.check(
    spec="the profile's loopback pairs (wired out -> in): a written level reads back",
    hint="check the jumper between the two pins; a pin the firmware refuses is not in gpio_allow",
)
def test_loopback_pins_read_back(target: Target) -> None:
    pairs = target.profile.raw.get("loopback") or []
    if not pairs:
        pytest.skip('the profile declares no loopback pairs ("loopback": [[out, in], ...])')
    if not target.destructive:
        pytest.skip("drives outputs: run with --destructive (or DESTRUCTIVE=1)")
    with target.client(target.transports[0], "handshake") as hw:
        needs(tools(hw), "gpio_write", "gpio_read")
        for out, inp in pairs:
            for level in (1, 0):
                written = call(hw, "gpio_write", {"pin": out, "value": level})
                assert not written.get("isError"), text(written)
                read = call(hw, "gpio_read", {"pin": inp})
                assert not read.get("isError"), text(read)
                assert read["structuredContent"]["value"] == level, f"wrote {level} on GPIO {out}, GPIO {inp} read back"
