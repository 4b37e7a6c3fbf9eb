"""Bosch BME280: temperature, humidity, pressure. Forced mode, x1 oversampling, and the
datasheet's integer compensation (section 4.2.3 / 8.2), so results match the chip's reference.

    s = Sensor(i2c, 0x76); t_c, rh, p_pa = s.read()
"""

import time

from micropython import const

from .. import DeviceError
from ..i2c import read, read_into, write

ADDRESS = const(0x76)
FIELDS = (("temperature", "degC", 0.1), ("humidity", "%RH", 0.5), ("pressure", "Pa", 10))
_CHIP_ID = const(0x60)
# A reading's transactions go through these (it never waits, so two parts can share them): a bytes
# object per read was two allocations of every reading.
_status = bytearray(1)
_data = bytearray(8)


def _s16(b, i):
    v = b[i] | (b[i + 1] << 8)
    return v - 65536 if v > 32767 else v


class Sensor:
    """One BME280; reads its calibration once."""

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.addr = address
        chip = read(i2c, address, 0xD0, 1)[0]
        if chip != _CHIP_ID:
            raise DeviceError("chip id 0x%02x at 0x%02x is not a BME280 (0x60)" % (chip, address))
        c = read(i2c, address, 0x88, 24)
        self.t = (c[0] | (c[1] << 8), _s16(c, 2), _s16(c, 4))
        self.p = (c[6] | (c[7] << 8),) + tuple(_s16(c, i) for i in range(8, 24, 2))
        h = read(i2c, address, 0xE1, 7)
        e4, e5, e6 = h[3], h[4], h[5]
        h4 = (e4 << 4) | (e5 & 0x0F)
        h5 = (e6 << 4) | (e5 >> 4)
        self.h = (
            read(i2c, address, 0xA1, 1)[0],
            _s16(h, 0),
            h[2],
            h4 - 4096 if h4 > 2047 else h4,
            h5 - 4096 if h5 > 2047 else h5,
            h[6] - 256 if h[6] > 127 else h[6],
        )

    def read(self):
        """(temperature degC, relative humidity %, pressure Pa) from one forced measurement."""
        self._measure()
        d = _data
        read_into(self.i2c, self.addr, 0xF7, d)
        return self.compensate(
            (d[3] << 12) | (d[4] << 4) | (d[5] >> 4),
            (d[0] << 12) | (d[1] << 4) | (d[2] >> 4),
            (d[6] << 8) | d[7],
        )

    def _measure(self):
        write(self.i2c, self.addr, 0xF2, 0x01)  # humidity x1 (takes effect with ctrl_meas)
        write(self.i2c, self.addr, 0xF4, 0x25)  # temperature x1, pressure x1, forced mode
        for _ in range(20):  # about 8 ms at x1; status bit 3 is "measuring"
            read_into(self.i2c, self.addr, 0xF3, _status)
            if not _status[0] & 0x08:
                break
            time.sleep_ms(2)

    # The datasheet's formulas, one function each, the calibration words indexed rather than
    # unpacked: in one function, with every word a local, its frame (38 words) was heap
    # allocated on every reading; each of these fits the C stack.
    def compensate(self, adc_t, adc_p, adc_h):
        """Raw ADC values -> (degC, %RH, Pa), per the datasheet's integer formulas."""
        t_fine = self._t_fine(adc_t)
        return ((t_fine * 5 + 128) >> 8) / 100, self._humidity(t_fine, adc_h), self._pressure(t_fine, adc_p)

    def _t_fine(self, adc_t):
        t = self.t  # dig_T1..T3
        var1 = (((adc_t >> 3) - (t[0] << 1)) * t[1]) >> 11
        adc_t = (adc_t >> 4) - t[0]
        return var1 + ((((adc_t * adc_t) >> 12) * t[2]) >> 14)

    def _pressure(self, t_fine, adc_p):
        p = self.p  # dig_P1..P9
        var1 = t_fine - 128000
        var2 = var1 * var1 * p[5] + ((var1 * p[4]) << 17) + (p[3] << 35)
        var1 = ((var1 * var1 * p[2]) >> 8) + ((var1 * p[1]) << 12)
        var1 = (((1 << 47) + var1) * p[0]) >> 33
        if var1 == 0:
            return 0.0
        adc_p = ((((1048576 - adc_p) << 31) - var2) * 3125) // var1
        var1 = (p[8] * (adc_p >> 13) * (adc_p >> 13)) >> 25
        var2 = (p[7] * adc_p) >> 19
        return (((adc_p + var1 + var2) >> 8) + (p[6] << 4)) / 256

    def _humidity(self, t_fine, adc_h):
        h = self.h  # dig_H1..H6
        v = t_fine - 76800
        v = ((((adc_h << 14) - (h[3] << 20) - (h[4] * v)) + 16384) >> 15) * (
            ((((((v * h[5]) >> 10) * (((v * h[2]) >> 11) + 32768)) >> 10) + 2097152) * h[1] + 8192) >> 14
        )
        v -= ((((v >> 15) * (v >> 15)) >> 7) * h[0]) >> 4
        v = 0 if v < 0 else 419430400 if v > 419430400 else v
        return (v >> 12) / 1024
