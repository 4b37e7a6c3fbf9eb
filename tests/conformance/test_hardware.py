"""The hardware contract from the board profile: forbidden pins are refused with the reason and left
alone, declared sensors answer within their datasheet ranges in SI units (as tools and as
resources), ADC channels read within their attenuation's range, and pins wired together in a
loopback read back what was written (drives outputs: --destructive / DESTRUCTIVE=1 on a real board).

A profile declares a loopback as `"loopback": [[out_pin, in_pin], ...]`: jumpers you put between
two pins of its `gpio_allow`. Checks skip, saying why, when the profile declares nothing to check.
"""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from board_client import Client
from board_target import Target
from conftest import close_shared

RETRY_S = 0.2  # before retrying a call the board answered "out of memory; retry"
# type -> field -> (unit, min, max, the datasheet limit): the sensor's specified operating range.
SENSOR_RANGES: dict[str, dict[str, tuple[str, float, float, str]]] = {
    "bme280": {
        "temperature": ("degC", -40, 85, "BME280 datasheet §1: -40..+85 °C"),
        "humidity": ("%RH", 0, 100, "BME280 datasheet §1: 0..100 %RH"),
        "pressure": ("Pa", 30000, 110000, "BME280 datasheet §1: 300..1100 hPa"),
    },
    "aht20": {
        "temperature": ("degC", -40, 85, "AHT20 datasheet §1: -40..+85 °C"),
        "humidity": ("%RH", 0, 100, "AHT20 datasheet §1: 0..100 %RH"),
    },
    "sht4x": {
        "temperature": ("degC", -40, 125, "SHT4x datasheet §2: -40..+125 °C"),
        "humidity": ("%RH", 0, 100, "SHT4x datasheet §2: 0..100 %RH"),
    },
    "bh1750": {"illuminance": ("lx", 0, 65535, "BH1750FVI datasheet: 1..65535 lx (H-resolution mode)")},
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
# chip -> attenuation -> the most a calibrated reading can be, in volts at the pin (ESP-IDF ADC
# oneshot docs, "suggested range" per attenuation; 11db is what the IDF now calls 12 dB).
ADC_MAX_VOLTS = {
    "esp32": {"0db": 0.95, "2.5db": 1.25, "6db": 1.75, "11db": 2.45},
    "esp32s3": {"0db": 0.95, "2.5db": 1.25, "6db": 1.75, "11db": 3.1},
    "esp32c3": {"0db": 0.75, "2.5db": 1.05, "6db": 1.3, "11db": 2.5},
}
WIRING = "check the sensor's wiring, power and I2C address against the profile (i2c_scan shows what answers)"


@pytest.fixture(scope="module")
def hw(target: Target) -> Iterator[Client]:
    """A handshake-era client over the target's first transport, for this module's checks (the
    protocol checks' client is closed first: one client at a time, as a person's board sees)."""
    close_shared()
    with target.client(target.transports[0], "handshake") as c:
        yield c


@pytest.fixture(scope="module")
def tools(hw: Client) -> dict[str, dict[str, Any]]:
    """The board's tools by name (the firmware's tools/list pages are followed)."""
    found: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {}
    while True:
        reply = hw.request("tools/list", params)
        assert "result" in reply, f"tools/list: {reply}"
        page = reply["result"]
        found |= {t["name"]: t for t in page["tools"]}
        if not page.get("nextCursor"):
            return found
        params = {"cursor": page["nextCursor"]}


def call(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tools/call result (a tool error is a result with isError). A board short of heap for a
    moment answers -32603 "Out of memory on the board; retry": that is retried once, after a
    pause, as the error asks and as a client would (issue 8: seen on the emulated esp32)."""
    reply = client.request("tools/call", {"name": name, "arguments": arguments})
    error = reply.get("error") or {}
    if error.get("code") == -32603 and str(error.get("message", "")).endswith("retry"):
        time.sleep(RETRY_S)
        reply = client.request("tools/call", {"name": name, "arguments": arguments})
    assert "result" in reply, f"{name}{arguments}: protocol error {reply.get('error')}"
    return reply["result"]


def text(result: dict[str, Any]) -> str:
    """A result's text content, joined."""
    return " ".join(c.get("text", "") for c in result.get("content", ()))


def has(available: dict[str, Any], *names: str) -> None:
    """The profile asks for these tools, so the firmware must have them."""
    missing = [n for n in names if n not in available]
    assert not missing, f"the profile declares hardware for {', '.join(missing)}, but the board has no such tool"


@pytest.mark.check(
    spec="ESP32 datasheets: flash/PSRAM, USB, console and input-only pins (the profile's reserved_pins)",
    hint="the firmware would drive a pin that crashes or bricks the board: do not use it until this passes",
)
def test_forbidden_pins_are_refused(target: Target, hw: Client, tools: dict[str, Any]) -> None:
    groups = [g for g in target.profile.reserved if not g.soft]
    if not groups:
        pytest.skip("the profile reserves no pins")
    has(tools, "gpio_write", "gpio_read")
    for group in groups:
        for pin in group.pins:
            result = call(hw, "gpio_write", {"pin": pin, "value": 0})
            assert result.get("isError"), f"gpio_write drove GPIO {pin} ({group.reason})"
            assert group.reason in text(result), f"GPIO {pin}: the refusal should say why ({group.reason})"
            assert "nothing was changed" in text(result), f"GPIO {pin}: the refusal should say nothing was driven"
            read = call(hw, "gpio_read", {"pin": pin})
            if group.input_ok and pin in target.profile.gpio_allow:
                assert not read.get("isError"), f"GPIO {pin} is {group.reason}: reading it is fine: {text(read)}"
            elif not group.input_ok:  # even reading reconfigures the pin: flash or the console would go
                assert read.get("isError") and group.reason in text(read), f"gpio_read touched GPIO {pin}"
    # Pins a tool or bus of the profile uses are refused too, and the LED is the led tool's.
    in_use = [ch.pin for ch in target.profile.adc] + [p for b in target.profile.i2c for p in (b.sda, b.scl)]
    for pin in [target.profile.led_pin, *in_use]:
        assert call(hw, "gpio_write", {"pin": pin, "value": 0}).get("isError"), f"gpio_write drove GPIO {pin}"


@pytest.mark.check(spec="sensor datasheets: operating ranges, SI units", hint=WIRING)
def test_sensors_read_within_range(target: Target, hw: Client, tools: dict[str, Any]) -> None:
    sensors = target.profile.sensors
    if not sensors:
        pytest.skip("the profile declares no sensors")
    has(tools, *(f"read_{s.name}" for s in sensors))
    for sensor in sensors:
        ranges = SENSOR_RANGES.get(sensor.type)
        assert ranges, f"no datasheet ranges known for a {sensor.type}: add them to SENSOR_RANGES"
        tool = tools[f"read_{sensor.name}"]
        result = call(hw, tool["name"], {})
        assert not result.get("isError"), f"{sensor.name}: {text(result)}"
        resource = hw.request("resources/read", {"uri": f"sensor://{sensor.name}"})
        assert "result" in resource, f"sensor://{sensor.name}: {resource.get('error')}"
        as_resource = json.loads(resource["result"]["contents"][0]["text"])
        props = tool["outputSchema"]["properties"]
        for values, where in ((result["structuredContent"], tool["name"]), (as_resource, f"sensor://{sensor.name}")):
            assert set(values) == set(ranges), f"{where}: fields {sorted(values)}, the datasheet has {sorted(ranges)}"
            for field, (unit, low, high, limit) in ranges.items():
                assert props[field].get("description") == unit, f"{sensor.name}.{field}: the unit should be {unit}"
                assert low <= values[field] <= high, f"{where}: {field} = {values[field]} {unit}, outside {limit}"


@pytest.mark.check(spec="I2C: each declared sensor ACKs its address (i2c_scan)", hint=WIRING)
def test_declared_i2c_sensors_answer(target: Target, hw: Client, tools: dict[str, Any]) -> None:
    if not target.profile.i2c:
        pytest.skip("the profile declares no I2C bus")
    has(tools, "i2c_scan")
    for bus in target.profile.i2c:
        result = call(hw, "i2c_scan", {"bus": bus.id})
        assert not result.get("isError"), f"I2C bus {bus.id}: {text(result)}"
        found = {d["address"] for d in result["structuredContent"]["devices"]}
        for s in target.profile.sensors:
            if s.bus == bus.id:
                assert s.address in found, f"{s.name} does not answer at 0x{s.address:02x} on I2C bus {bus.id}"
        assert result["structuredContent"]["missing"] == [], result["structuredContent"]


@pytest.mark.check(
    spec="ESP-IDF ADC: the calibrated range of each attenuation (e.g. 11 dB: up to 2.45 V on ESP32, "
    "3.1 V on ESP32-S3, 2.5 V on ESP32-C3); value = pin volts x the profile's scale, in its unit",
    hint="check the channel's divider and the profile's scale; a floating input reads noise",
)
def test_adc_channels_read_within_range(target: Target, hw: Client, tools: dict[str, Any]) -> None:
    channels = target.profile.adc
    if not channels:
        pytest.skip("the profile declares no ADC channels")
    has(tools, "adc_read")
    limits = ADC_MAX_VOLTS[target.profile.chip]
    for ch in channels:
        result = call(hw, "adc_read", {"channel": ch.name})
        assert not result.get("isError"), f"{ch.name}: {text(result)}"
        got = result["structuredContent"]
        top = limits[ch.atten]
        assert 0 <= got["pin_volts"] <= top, f"{ch.name}: {got['pin_volts']} V at GPIO {ch.pin}, outside 0..{top} V"
        assert got["unit"] == ch.unit, f"{ch.name}: unit {got['unit']!r}, the profile says {ch.unit!r}"
        # value is rounded to 1 mV-equivalent, pin_volts to 0.1 mV
        assert abs(got["value"] - got["pin_volts"] * ch.scale) <= 0.0006 + 0.00005 * abs(ch.scale), got


@pytest.mark.check(
    spec="the profile's loopback pairs (jumpers out -> in): a level written on one reads back on the other",
    hint="check the jumper between the two pins; a pin the firmware refuses is not in gpio_allow",
)
def test_loopback_pins_read_back(target: Target, hw: Client, tools: dict[str, Any]) -> None:
    pairs = target.profile.loopback
    if not pairs:
        pytest.skip('the profile declares no loopback pairs ("loopback": [[out, in], ...])')
    if not target.destructive:
        pytest.skip("drives outputs: run with --destructive (or DESTRUCTIVE=1)")
    has(tools, "gpio_write", "gpio_read")
    for out, inp in pairs:
        for level in (1, 0, 1, 0):
            written = call(hw, "gpio_write", {"pin": out, "value": level})
            assert not written.get("isError"), text(written)
            read = call(hw, "gpio_read", {"pin": inp})
            assert not read.get("isError"), text(read)
            assert read["structuredContent"]["value"] == level, f"wrote {level} on GPIO {out}, GPIO {inp} read back"


@pytest.mark.check(
    spec="the profile's reserved pins and LED: a refused gpio_write drives nothing (observed on the LED)",
    hint="the firmware touches a pin before refusing it: on a real board that can crash it; redeploy the firmware",
)
def test_refused_write_drives_nothing(target: Target, hw: Client, tools: dict[str, Any]) -> None:
    if not target.destructive:
        pytest.skip("switches the LED: run with --destructive (or DESTRUCTIVE=1)")
    has(tools, "led", "gpio_write")
    assert call(hw, "led", {"state": "off"})["structuredContent"]["on"] is False
    assert call(hw, "gpio_write", {"pin": target.profile.led_pin, "value": 1}).get("isError")
    assert call(hw, "led", {"state": "toggle"})["structuredContent"]["on"] is True, "the refused write lit the LED"
    call(hw, "led", {"state": "off"})
