"""InvenSense MPU-6050 accelerometer and gyroscope, at +-2 g and +-250 deg/s
(16384 LSB/g, 131 LSB/(deg/s)); die temperature = raw / 340 + 36.53 degC (register map 4.17-4.19).

    s = Sensor(i2c, 0x68); ax, ay, az, gx, gy, gz, t = s.read()   # m/s^2, rad/s, degC
"""

import struct

from micropython import const

from .. import DeviceError
from ..i2c import read, write

ADDRESS = const(0x68)
FIELDS = (
    ("accel_x", "m/s^2", 0.2),
    ("accel_y", "m/s^2", 0.2),
    ("accel_z", "m/s^2", 0.2),
    ("gyro_x", "rad/s", 0.05),
    ("gyro_y", "rad/s", 0.05),
    ("gyro_z", "rad/s", 0.05),
    ("temperature", "degC", 0.5),
)
_G = 9.80665
_RAD = 3.141592653589793 / 180


class Sensor:
    """One MPU-6050, woken from sleep with the default full scales."""

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.addr = address
        who = read(i2c, address, 0x75, 1)[0]
        if who != 0x68:
            raise DeviceError("WHO_AM_I 0x%02x at 0x%02x is not an MPU-6050 (0x68)" % (who, address))
        write(i2c, address, 0x6B, 0x01)  # wake, clock from the X gyro
        write(i2c, address, 0x1B, 0x00)  # +-250 deg/s
        write(i2c, address, 0x1C, 0x00)  # +-2 g

    def read(self):
        """(ax, ay, az m/s^2, gx, gy, gz rad/s, temperature degC)."""
        ax, ay, az, t, gx, gy, gz = struct.unpack(">hhhhhhh", read(self.i2c, self.addr, 0x3B, 14))
        a = _G / 16384
        g = _RAD / 131
        return ax * a, ay * a, az * a, gx * g, gy * g, gz * g, t / 340 + 36.53
