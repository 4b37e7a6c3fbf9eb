"""Sensirion SHT4x temperature and humidity, high repeatability, CRC-checked (datasheet 4.5-4.6).

s = Sensor(i2c, 0x44); t_c, rh = s.read()
"""

import time

from micropython import const

from ..i2c import words

ADDRESS = const(0x44)
FIELDS = (("temperature", "degC", 0.1), ("humidity", "%RH", 0.5))


class Sensor:
    """One SHT4x; reading its serial number checks that it answers like one."""

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.addr = address
        i2c.writeto(address, b"\x89")  # read serial number
        time.sleep_ms(1)
        words(i2c.readfrom(address, 6))

    def read(self):
        """(temperature degC, relative humidity %) from one high-repeatability measurement."""
        self.i2c.writeto(self.addr, b"\xfd")
        time.sleep_ms(10)  # 8.3 ms max
        t, rh = words(self.i2c.readfrom(self.addr, 6))
        rh = -6 + 125 * rh / 65535
        return -45 + 175 * t / 65535, 0.0 if rh < 0 else 100.0 if rh > 100 else rh
