"""Aosong AHT20 temperature and humidity, CRC-checked (datasheet 5.4).

s = Sensor(i2c, 0x38); t_c, rh = s.read()
"""

import time

from micropython import const

from .. import CRCError
from ..i2c import crc8

ADDRESS = const(0x38)
FIELDS = (("temperature", "degC", 0.1), ("humidity", "%RH", 0.5))


class Sensor:
    """One AHT20; calibrates it if its status says it is not."""

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.addr = address
        if not i2c.readfrom(address, 1)[0] & 0x08:
            i2c.writeto(address, b"\xbe\x08\x00")  # initialise (load calibration)
            time.sleep_ms(10)

    def read(self):
        """(temperature degC, relative humidity %) from one measurement."""
        self.i2c.writeto(self.addr, b"\xac\x33\x00")
        time.sleep_ms(80)
        d = self.i2c.readfrom(self.addr, 7)
        for _ in range(10):
            if not d[0] & 0x80:  # not busy
                break
            time.sleep_ms(10)
            d = self.i2c.readfrom(self.addr, 7)
        if crc8(d, 0, 6) != d[6]:
            raise CRCError("checksum mismatch")
        h = (d[1] << 12) | (d[2] << 4) | (d[3] >> 4)
        t = ((d[3] & 0x0F) << 16) | (d[4] << 8) | d[5]
        return t * 200 / 1048576 - 50, h * 100 / 1048576
