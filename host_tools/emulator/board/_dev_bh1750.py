# ROHM BH1750 ambient light sensor: opcodes, no registers. A read returns the last result,
# big-endian counts; in H-resolution mode with the default MTreg, lux = counts / 1.2.
import _boardsim


class Device:
    def __init__(self, spec):
        self.name = spec["name"]
        self.on = False
        self.mode = 0
        self.lux = 320.0
        self.result = 0

    def write(self, data):
        op = data[0]
        if op == 0x00:
            self.on = False
        elif op == 0x01:
            self.on = True
        elif op == 0x07:
            self.result = 0
        elif op in (0x10, 0x11, 0x13, 0x20, 0x21, 0x23):
            self.mode = op
            self.measure()
            if op & 0x20:  # one-time modes power down after the measurement
                self.on = False

    def measure(self):
        env = _boardsim.environment(self.name)
        self.lux = float(env["lux"]) if env else _boardsim.drift(self.lux, 2.0, 250, 400)
        counts = self.lux * 1.2 * (2 if self.mode & 0x0F == 1 else 1)
        self.result = min(65535, int(counts))

    def read(self, n):
        if self.on and self.mode & 0x10:  # continuous modes keep measuring
            self.measure()
        return bytes((self.result >> 8, self.result & 0xFF))[:n]
