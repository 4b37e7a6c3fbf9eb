"""ROHM BH1750 ambient light: one-time high-resolution mode, lux = counts / 1.2 (datasheet p.11).
The part has no id register: its answer to power-on is the only presence check.

    s = Sensor(i2c, 0x23); (lux,) = s.read()
"""

import time

from micropython import const

ADDRESS = const(0x23)
FIELDS = (("illuminance", "lx", 5),)


class Sensor:
    """One BH1750."""

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.addr = address
        i2c.writeto(address, b"\x01")  # power on

    def read(self):
        """(illuminance lx,) from one 120 ms high-resolution measurement."""
        self.i2c.writeto(self.addr, b"\x20")  # one-time H-resolution mode
        time.sleep_ms(180)  # datasheet max for H-resolution
        d = self.i2c.readfrom(self.addr, 2)
        return (((d[0] << 8) | d[1]) / 1.2,)
