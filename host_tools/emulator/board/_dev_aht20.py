# Aosong AHT20 humidity/temperature sensor: status byte, 0xBE init, 0xAC trigger, then 7 bytes
# (status, 20-bit humidity, 20-bit temperature, CRC-8).
import _boardsim
from _i2creg import crc8


class Device:
    def __init__(self, spec):
        self.name = spec["name"]
        self.t = 23.0
        self.rh = 48.0
        self.out = bytes((0x18,))  # idle, calibrated

    def write(self, data):
        if data[:1] == b"\xac":
            self.t = _boardsim.drift(self.t, 0.02, 18.0, 28.0)
            self.rh = _boardsim.drift(self.rh, 0.05, 30.0, 60.0)
            h = int(self.rh / 100 * 1048576)
            t = int((self.t + 50) / 200 * 1048576)
            out = bytearray(7)
            out[0] = 0x18
            out[1] = h >> 12
            out[2] = (h >> 4) & 0xFF
            out[3] = ((h & 0x0F) << 4) | (t >> 16)
            out[4] = (t >> 8) & 0xFF
            out[5] = t & 0xFF
            out[6] = crc8(out[:6]) ^ (0x5A if _boardsim.fault(self.name) == "crc" else 0)
            self.out = bytes(out)
        elif data[:1] in (b"\xbe", b"\xba"):
            self.out = bytes((0x18,))

    def read(self, n):
        return (self.out + bytes(n))[:n]
