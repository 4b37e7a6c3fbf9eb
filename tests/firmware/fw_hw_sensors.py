# The sensor drivers (boardmcp.hw.sensors) on the MicroPython VM: datasheet known answers for the
# conversions, then each driver against its register-level model on the test bench's simulated
# I2C bus and 1-Wire pin (tests/firmware/test_on_vm.py BENCH): readings in SI units within
# physical ranges, chip-id mismatches and absent parts as clear errors, injected CRC faults caught.
import json
import time

import _boardsim
import onewire
from boardmcp.hw import CRCError, DeviceError
from boardmcp.hw.i2c import crc8
from boardmcp.hw.sensors import aht20, bh1750, bme280, ds18b20, ina219, mpu6050, sht4x
from machine import I2C, Pin

ENODEV = 19
ETIMEDOUT = 116


def _bus():
    return I2C(0, scl=Pin(9), sda=Pin(8), freq=400000)


class Replay:
    """An I2C bus with one device that answers with bytes from a datasheet: `regs` for register
    reads (readfrom_mem, or a pointer write then readfrom), `replies` for plain reads in order."""

    def __init__(self, regs=None, replies=()):
        self.regs = regs or {}
        self.replies = list(replies)
        self.ptr = None

    def writeto(self, addr, buf, stop=True):
        self.ptr = buf[0] if len(buf) == 1 and buf[0] in self.regs else None
        return len(buf)

    def writeto_mem(self, addr, reg, buf):
        pass

    def readfrom(self, addr, n, stop=True):
        if self.ptr is not None:
            return self.regs[self.ptr][:n]
        return self.replies.pop(0)[:n]

    def readfrom_mem(self, addr, reg, n):
        return self.regs[reg][:n]


def _word(v):
    b = bytes((v >> 8, v & 0xFF))
    return b + bytes((crc8(b),))


def _faults(faults):
    with open(_boardsim.state_path("faults.json"), "w") as f:
        json.dump(faults, f)
    time.sleep_ms(_boardsim.POLL_MS + 5)  # the sim looks again within POLL_MS


def _raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def _near(a, b, tol):
    assert abs(a - b) <= tol, "%r is not within %r of %r" % (a, tol, b)


# -- known answers -------------------------------------------------------------------------------


def test_sensirion_crc8_datasheet_example():
    # SHT4x datasheet 4.4 (and the AHT20's CRC): CRC-8(0xBEEF) = 0x92.
    assert crc8(b"\xbe\xef") == 0x92
    assert crc8(b"\x00\xbe\xef\x00", 1, 3) == 0x92


def test_onewire_crc8_maxim_example():
    # Maxim AN27: ROM 02 1C B8 01 00 00 00 has CRC A2; the CRC over all eight bytes is 0.
    rom = b"\x02\x1c\xb8\x01\x00\x00\x00"
    assert onewire.OneWire(Pin(4)).crc8(rom) == 0xA2
    assert onewire.OneWire(Pin(4)).crc8(rom + b"\xa2") == 0


def test_bme280_compensation_datasheet_example():
    # Datasheet worked example (BMP280 3.12, same T/P formulas in the BME280): dig_T1..T3 =
    # 27504, 26435, -1000, adc_T = 519888 -> t_fine 128422, 25.08 degC; dig_P1..P9 = 36477,
    # -10685, 3024, 2855, 140, -7, 15500, -14600, 6000, adc_P = 415148 -> 100653 Pa (integer)
    # or 100653.27 Pa (double). The bench model carries exactly that calibration.
    s = bme280.Sensor(_bus(), 0x76)
    assert s.t == (27504, 26435, -1000)
    assert s.p == (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
    t, _, p = s.compensate(519888, 415148, 28500)
    assert t == 25.08
    assert int(p) == 100653
    _near(p, 100653.27, 0.03)


def test_bme280_humidity_matches_the_datasheet_double_formula():
    # The humidity calibration is packed in nibbles across 0xE4..0xE6 (dig_H4, dig_H5 are 12-bit
    # signed); the integer result must agree with the datasheet's floating-point formula (8.1).
    s = bme280.Sensor(_bus(), 0x76)
    assert s.h == (75, 370, 0, 313, 50, 30)
    h1, h2, h3, h4, h5, h6 = s.h
    t_fine = 128422
    for adc_h in (20000, 28500, 35000):
        v = t_fine - 76800.0
        v = (adc_h - (h4 * 64.0 + h5 / 16384.0 * v)) * (
            h2 / 65536.0 * (1.0 + h6 / 67108864.0 * v * (1.0 + h3 / 67108864.0 * v))
        )
        v = v * (1.0 - h1 * v / 524288.0)
        expected = min(100.0, max(0.0, v))
        _near(s.compensate(519888, 415148, adc_h)[1], expected, 0.01)


def test_sht4x_conversion():
    # Datasheet 4.6: T = -45 + 175 * S_T / 65535; RH = -6 + 125 * S_RH / 65535, clipped to 0..100.
    s = sht4x.Sensor(Replay(replies=[_word(0x0B5E) + _word(0x1D07), _word(0x6666) + _word(0x8000)]))
    t, rh = s.read()
    _near(t, 25.0, 0.001)
    _near(rh, 56.5, 0.001)
    s.i2c.replies.append(_word(0xFFFF) + _word(0xFFFF))
    assert s.read() == (130.0, 100.0)


def test_sht4x_crc_mismatch_is_a_crc_error():
    bad = bytearray(_word(0x6666) + _word(0x8000))
    bad[5] ^= 1
    s = sht4x.Sensor(Replay(replies=[_word(1) + _word(2), bytes(bad)]))
    assert "word 1" in str(_raises(CRCError, s.read))


def test_bh1750_datasheet_example():
    # Datasheet p.7: 1000_0011 1001_0000 -> (2^15 + 2^9 + 2^8 + 2^7 + 2^4) / 1.2 = 28067 lx.
    (lux,) = bh1750.Sensor(Replay(replies=[b"\x83\x90"])).read()
    _near(lux, 28067, 0.5)


def test_aht20_conversion():
    # Datasheet 6.1/6.2: RH = S_RH / 2^20 * 100 %; T = S_T / 2^20 * 200 - 50 degC. Half scale ->
    # 50 %RH and 50 degC.
    d = bytes((0x1C, 0x80, 0x00, 0x08, 0x00, 0x00))
    s = aht20.Sensor(Replay(replies=[b"\x18", d + bytes((crc8(d),))]))
    assert s.read() == (50.0, 50.0)
    s.i2c.replies.append(d + bytes((crc8(d) ^ 1,)))
    _raises(CRCError, s.read)


def test_ina219_conversion():
    # Datasheet 8.6.3: the shunt register is 10 uV/LSB (0x7D00 = +320 mV, 0x8300 = -320 mV);
    # bus voltage is bits 15..3 at 4 mV/LSB. With 0.1 ohm: +-3.2 A.
    regs = {0: b"\x39\x9f", 1: b"\x7d\x00", 2: bytes(((1250 << 3) >> 8, (1250 << 3) & 0xFF))}
    s = ina219.Sensor(Replay(regs=regs), 0x40, shunt_ohms=0.1)
    v, a, w = s.read()
    _near(v, 5.0, 1e-9)
    _near(a, 3.2, 1e-9)
    _near(w, 16.0, 1e-6)
    regs[1] = b"\x83\x00"
    _near(s.read()[1], -3.2, 1e-9)


def test_mpu6050_conversion():
    # Register map 4.17-4.19: 16384 LSB/g at +-2 g, 131 LSB/(deg/s) at +-250 deg/s,
    # temperature = raw / 340 + 36.53 degC.
    import struct

    data = struct.pack(">hhhhhhh", 16384, -8192, 0, -521, 131, -131, 0)
    s = mpu6050.Sensor(Replay(regs={0x75: b"\x68", 0x3B: data}))
    ax, ay, az, gx, gy, gz, t = s.read()
    _near(ax, 9.80665, 1e-6)
    _near(ay, -4.903325, 1e-6)
    assert az == 0
    _near(gx, 0.0174533, 1e-6)
    _near(gy, -0.0174533, 1e-6)
    assert gz == 0
    _near(t, 35.0, 0.01)


class Scratchpad:
    """A 1-Wire bus whose one DS18B20 answers with a fixed scratchpad (datasheet table 1 values)."""

    def __init__(self, raw):
        self.ow = onewire.OneWire(Pin(4))
        pad = bytearray(bytes((raw & 0xFF, raw >> 8)) + b"\x4b\x46\x7f\xff\x0c\x10")
        self.pad = pad + bytes((self.ow.crc8(pad),))

    def reset(self):
        return True

    def select_rom(self, rom):
        pass

    def writebyte(self, b):
        pass

    def readbit(self):
        return 1

    def readinto(self, buf):
        buf[:] = self.pad

    def crc8(self, data):
        return self.ow.crc8(data)


def test_ds18b20_datasheet_table():
    rom = bytearray(b"\x28\x01\x02\x03\x04\x05\x06\x00")
    rom[7] = onewire.OneWire(Pin(4)).crc8(rom[:7])
    for raw, degc in (
        (0x07D0, 125.0),
        (0x0191, 25.0625),
        (0x0008, 0.5),
        (0xFFF8, -0.5),
        (0xFE6F, -25.0625),
        (0xFC90, -55.0),
    ):
        assert ds18b20.Sensor(Scratchpad(raw), rom).read() == (degc,)
    bad = Scratchpad(0x0191)
    bad.pad[8] ^= 1
    _raises(CRCError, ds18b20.Sensor(bad, rom).read)
    rom[0] = 0x10  # a DS18S20
    rom[7] = onewire.OneWire(Pin(4)).crc8(rom[:7])
    assert "not a DS18B20" in str(_raises(DeviceError, ds18b20.Sensor, Scratchpad(0), rom))


# -- against the register models ----------------------------------------------------------------


def test_every_part_reads_plausible_si_values():
    i2c = _bus()
    t, rh, p = bme280.Sensor(i2c, 0x76).read()
    assert 15 < t < 30 and 20 < rh < 80 and 95000 < p < 106000, (t, rh, p)
    t, rh = sht4x.Sensor(i2c, 0x44).read()
    assert 15 < t < 30 and 20 < rh < 80
    t, rh = aht20.Sensor(i2c, 0x38).read()
    assert 15 < t < 30 and 20 < rh < 80
    (lux,) = bh1750.Sensor(i2c, 0x23).read()
    assert 100 < lux < 1000
    v, a, w = ina219.Sensor(i2c, 0x40).read()
    assert 4.9 < v < 5.1 and 0.05 < a < 0.2 and abs(w - v * a) < 1e-9
    ax, ay, az, gx, gy, gz, t = mpu6050.Sensor(i2c, 0x68).read()
    assert abs((ax * ax + ay * ay + az * az) ** 0.5 - 9.81) < 0.3  # at rest: gravity only
    assert max(abs(gx), abs(gy), abs(gz)) < 0.02 and 20 < t < 35
    (t,) = ds18b20.Sensor(onewire.OneWire(Pin(4))).read()
    assert 15 < t < 30


def test_readings_drift_but_stay_plausible():
    s = bme280.Sensor(_bus(), 0x76)
    temps = [s.read()[0] for _ in range(20)]
    assert len(set(temps)) > 1
    assert max(temps) - min(temps) < 2


def test_ds18b20_found_by_rom_search():
    ow = onewire.OneWire(Pin(4))
    (rom,) = ow.scan()
    assert rom[0] == 0x28 and ow.crc8(rom) == 0
    assert ds18b20.Sensor(ow).rom == rom


def test_chip_id_mismatch_is_a_clear_error():
    i2c = _bus()
    e = _raises(DeviceError, bme280.Sensor, i2c, 0x40)  # the INA219's address
    assert str(e) == "chip id 0x00 at 0x40 is not a BME280 (0x60)"
    assert "not an MPU-6050" in str(_raises(DeviceError, mpu6050.Sensor, i2c, 0x76))
    assert "not an INA219" in str(_raises(DeviceError, ina219.Sensor, i2c, 0x76))


def test_absent_part_is_enodev():
    assert _raises(OSError, bme280.Sensor, _bus(), 0x77).errno == ENODEV
    ow = onewire.OneWire(Pin(5))  # nothing on this pin
    assert _raises(OSError, ds18b20.Sensor, ow).errno == ENODEV


def test_injected_faults():
    i2c = _bus()
    parts = (sht4x.Sensor(i2c, 0x44), aht20.Sensor(i2c, 0x38), ds18b20.Sensor(onewire.OneWire(Pin(4))))
    bme = bme280.Sensor(i2c, 0x76)
    try:
        _faults({"sht4x": "crc", "aht20": "crc", "ds18b20": "crc"})
        for part in parts:
            _raises(CRCError, part.read)
        _faults({"bme280": "absent"})
        assert _raises(OSError, bme.read).errno == ENODEV
        assert 0x76 not in i2c.scan()
        _faults({"i2c0": "stuck"})
        assert _raises(OSError, bme.read).errno == ETIMEDOUT
        assert _raises(OSError, i2c.scan).errno == ETIMEDOUT
        _faults({"ds18b20": "absent"})
        assert _raises(OSError, parts[2].read).errno == ENODEV
    finally:
        _faults({})
    for part in parts + (bme,):  # repaired: the same objects read again
        part.read()
