# Sensirion SHT4x humidity/temperature sensor: 8-bit commands, 6-byte results (two words, each
# followed by its CRC-8). Reading with no result pending is NACKed, as on the part.
import _boardsim
from _i2creg import crc8

_SERIAL = 0x0B5E1D07


class Device:
    def __init__(self, spec):
        self.name = spec["name"]
        self.t = 22.5
        self.rh = 44.0
        self.out = None

    def _words(self, a, b):
        out = bytearray(6)
        out[0:2] = a.to_bytes(2, "big")
        out[2] = crc8(out[0:2])
        out[3:5] = b.to_bytes(2, "big")
        out[5] = crc8(out[3:5])
        if _boardsim.fault(self.name) == "crc":
            out[5] ^= 0x5A
        return bytes(out)

    def write(self, data):
        cmd = data[0]
        if cmd in (0xFD, 0xF6, 0xE0):
            self.t = _boardsim.drift(self.t, 0.02, 18.0, 28.0)
            self.rh = _boardsim.drift(self.rh, 0.05, 30.0, 60.0)
            t_raw = int((self.t + 45) * 65535 / 175)
            rh_raw = int((self.rh + 6) * 65535 / 125)
            self.out = self._words(t_raw, rh_raw)
        elif cmd == 0x89:
            self.out = self._words(_SERIAL >> 16, _SERIAL & 0xFFFF)
        elif cmd == 0x94:
            self.out = None

    def read(self, n):
        if self.out is None:
            raise OSError(19)  # no result pending: the part NACKs its address
        out, self.out = self.out, None
        return out[:n]
