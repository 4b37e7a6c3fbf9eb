# boardmcp.hw.gpio, hw.adc and hw.i2c on the MicroPython VM against the simulated esp32s3 of the
# test bench (tests/firmware/test_on_vm.py BENCH), and tools/defs/gpio's pin policy on the esp32
# profile staged as board.json.
import json

from boardmcp.hw import CRCError, adc, gpio, i2c
from boardmcp.tools.defs.gpio import denied
from machine import Pin


def test_gpio_write_then_read_keeps_driving():
    gpio.write(5, 1)
    assert Pin(5).mode() == Pin.OUT and Pin(5).value() == 1
    assert gpio.read(5) == 1  # reading an output must not make it an input
    assert Pin(5).mode() == Pin.OUT
    gpio.write(5, 0)
    assert gpio.read(5) == 0


def test_gpio_read_with_pulls():
    assert gpio.read(6, "up") == 1
    assert gpio.read(6, "down") == 0
    gpio.write(7, 1)
    assert gpio.read(7, "down") == 0  # a pull turns the pin into an input
    assert Pin(7).mode() == Pin.IN


def test_gpio_pwm_runs_until_the_pin_is_used_otherwise():
    gpio.pwm(10, 1000, 16384)
    p = gpio._pwms[10]
    assert p.freq() == 1000 and p.duty_u16() == 16384
    gpio.write(10, 1)
    assert 10 not in gpio._pwms and p.duty_u16() == 0
    assert Pin(10).value() == 1


def test_adc_channel_reads_calibrated_scaled_volts():
    ch = adc.Channel(1, "11db", scale=2.0, samples=8)  # the bench puts 1.5 V on pin 1
    v = ch.volts()
    assert abs(v - 1.5) < 0.01, v
    assert abs(ch.read() - 3.0) < 0.02
    assert abs(adc.Channel(1, "0db").volts() - 0.95) < 0.01  # 0 dB saturates at 0.95 V


def test_adc_rejects_a_non_adc_pin():
    try:
        adc.Channel(40)
    except ValueError:
        return
    raise AssertionError("GPIO 40 has no ADC")


def test_i2c_bus_is_made_once_and_scans_the_bench():
    spec = {"id": 0, "sda": 8, "scl": 9, "freq": 400000}
    bus = i2c.bus(spec)
    assert i2c.bus(spec) is bus
    assert bus.scan() == [0x23, 0x38, 0x40, 0x44, 0x68, 0x76]
    assert i2c.read(bus, 0x76, 0xD0, 1) == b"\x60"
    i2c.write(bus, 0x76, 0xF2, 0x05)
    assert i2c.read(bus, 0x76, 0xF2, 1) == b"\x05"


def test_soft_i2c_bus_reaches_the_same_parts():
    bus = i2c.bus({"id": 9, "sda": 8, "scl": 9, "soft": True})
    assert type(bus).__name__ == "SoftI2C"
    assert 0x76 in bus.scan()


def test_sensirion_words_check_each_crc():
    assert i2c.words(b"\xbe\xef\x92\x00\x00\x81") == [0xBEEF, 0]
    try:
        i2c.words(b"\xbe\xef\x93")
    except CRCError as e:
        assert "word 0" in str(e)
        return
    raise AssertionError("bad CRC accepted")


def _profile():
    with open("board.json") as f:
        return json.load(f)


def test_pin_policy_on_the_esp32_profile():
    p = _profile()
    assert p["name"] == "esp32"
    assert denied(p, 6, True) == "flash (SPI)"
    assert denied(p, 16, False) == "PSRAM on WROVER modules"
    assert denied(p, 12, True).startswith("strapping")
    assert denied(p, 1, True) == "UART0 (REPL console)"
    assert denied(p, 34, True).startswith("input-only")
    assert denied(p, 34, False) is None  # input-only pins may be read
    assert denied(p, 2, True).startswith("strapping")  # also the LED: the first reason wins
    assert denied(p, 35, False) == "analog input battery (use adc_read)"
    assert denied(p, 21, True) == "not in this board's GPIO allowlist"
    for pin in p["gpio_allow"]:
        assert denied(p, pin, False) is None
