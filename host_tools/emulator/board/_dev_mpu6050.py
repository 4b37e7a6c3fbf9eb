# InvenSense MPU-6050 accelerometer/gyroscope at the register level: WHO_AM_I, PWR_MGMT_1 (asleep
# after power-up), full-scale selection, and the 14 data registers from 0x3B, big-endian.
import struct

import _boardsim
from _i2creg import Registers


class Device(Registers):
    def __init__(self, spec):
        super().__init__(spec, 128)
        self.regs[0x75] = 0x68
        self.regs[0x6B] = 0x40
        self.tilt = [0.02, -0.03, 0.999]  # gravity along x, y, z, in g (lying nearly flat)
        self.temp = 27.0

    def store(self, reg, value):
        if reg == 0x6B and value & 0x80:  # DEVICE_RESET
            self.__init__({"name": self.name})
            return
        if reg != 0x75:
            self.regs[reg] = value

    def refresh(self, reg, n):
        if self.regs[0x6B] & 0x40 or reg > 0x48 or reg + n <= 0x3B:
            return  # asleep: data registers keep their last values
        a_lsb = 16384 >> ((self.regs[0x1C] >> 3) & 3)
        g_lsb = 131.0 / (1 << ((self.regs[0x1B] >> 3) & 3))
        g = self.tilt
        for i in range(3):
            g[i] = _boardsim.drift(g[i], 0.002, g[i] - 0.01, g[i] + 0.01)
        self.temp = _boardsim.drift(self.temp, 0.02, 24.0, 30.0)
        noise = [_boardsim.drift(0.0, 0.3, -0.5, 0.5) for _ in range(3)]  # deg/s at rest
        self.regs[0x3B:0x49] = struct.pack(
            ">hhhhhhh",
            int(g[0] * a_lsb),
            int(g[1] * a_lsb),
            int(g[2] * a_lsb),
            int((self.temp - 36.53) * 340),
            int(noise[0] * g_lsb),
            int(noise[1] * g_lsb),
            int(noise[2] * g_lsb),
        )
