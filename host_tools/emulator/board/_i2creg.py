# Base of the register-map I2C device models: a write sets the register pointer and stores any
# data bytes after it; a read returns bytes from the pointer on, auto-incrementing, as most
# sensors with 8-bit register addresses do.
import _boardsim


class Registers:
    def __init__(self, spec, size):
        self.name = spec["name"]
        self.regs = bytearray(size)
        self._view = memoryview(self.regs)  # a read copies from it once, as the port's C does
        self.ptr = 0

    def write(self, data):
        self.ptr = data[0]
        for i in range(1, len(data)):  # no slice: a transaction allocates nothing a chip's would not
            self.store(self.ptr, data[i])
            self.ptr += 1

    def store(self, reg, value):
        self.regs[reg] = value

    def read(self, n):
        self.refresh(self.ptr, n)
        out = bytes(self._view[self.ptr : self.ptr + n])
        self.ptr += n
        return out

    def read_into(self, buf):
        # read(len(buf)) into buf, byte by byte: a slice would allocate what the port's C does not.
        n = len(buf)
        self.refresh(self.ptr, n)
        regs = self.regs
        for i in range(n):
            buf[i] = regs[self.ptr + i]
        self.ptr += n

    def refresh(self, reg, n):
        # Called before a read: models with live data registers update them here.
        pass

    def corrupt(self):
        # True when a test injected a checksum fault on this device.
        return _boardsim.fault(self.name) == "crc"


def crc8(data, poly=0x31, init=0xFF):
    # CRC-8 as Sensirion and Aosong parts append it to every measurement word.
    crc = init
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc
