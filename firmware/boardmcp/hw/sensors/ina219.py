"""TI INA219 current monitor: shunt voltage (10 uV/LSB) over the shunt resistor gives the
current, bus voltage is 4 mV/LSB in bits 15..3; power = bus voltage x current.

    s = Sensor(i2c, 0x40, shunt_ohms=0.1); v, a, w = s.read()
"""

from micropython import const

from .. import DeviceError

ADDRESS = const(0x40)
FIELDS = (("bus_voltage", "V", 0.05), ("current", "A", 0.005), ("power", "W", 0.05))


class Sensor:
    """One INA219, reset to its default configuration (32 V range, 12-bit, continuous)."""

    def __init__(self, i2c, address=ADDRESS, shunt_ohms=0.1):
        self.i2c = i2c
        self.addr = address
        self.shunt = shunt_ohms
        i2c.writeto(address, b"\x00\x80\x00")  # reset
        config = self._reg(0)
        if config != 0x399F:  # the datasheet's power-on value: the nearest thing to an id
            raise DeviceError("config 0x%04x at 0x%02x is not an INA219 after reset (0x399f)" % (config, address))

    def _reg(self, reg):
        self.i2c.writeto(self.addr, bytes((reg,)))
        d = self.i2c.readfrom(self.addr, 2)
        return (d[0] << 8) | d[1]

    def read(self):
        """(bus voltage V, current A, power W)."""
        shunt = self._reg(1)
        if shunt > 32767:
            shunt -= 65536
        amps = shunt * 0.00001 / self.shunt
        volts = (self._reg(2) >> 3) * 0.004
        return volts, amps, volts * amps
