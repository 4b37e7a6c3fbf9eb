# Emulated `onewire` (frozen into the esp32 port): the OneWire class over the `_onewire`
# primitives, with the stubs' API.
import _onewire


class OneWireError(Exception):
    pass


class OneWire:
    SEARCH_ROM = 0xF0
    MATCH_ROM = 0x55
    SKIP_ROM = 0xCC

    def __init__(self, pin):
        self.pin = pin
        pin.init(pin.OPEN_DRAIN, pin.PULL_UP)

    def reset(self, required=False):
        present = _onewire.reset(self.pin)
        if required and not present:
            raise OneWireError
        return present

    def readbit(self):
        return _onewire.readbit(self.pin)

    def readbyte(self):
        return _onewire.readbyte(self.pin)

    def readinto(self, buf):
        for i in range(len(buf)):
            buf[i] = _onewire.readbyte(self.pin)

    def writebit(self, value):
        return _onewire.writebit(self.pin, value)

    def writebyte(self, value):
        return _onewire.writebyte(self.pin, value)

    def write(self, buf):
        for b in buf:
            _onewire.writebyte(self.pin, b)

    def select_rom(self, rom):
        self.reset()
        self.writebyte(self.MATCH_ROM)
        self.write(rom)

    def scan(self):
        found = []
        rom = None
        last = 0
        while True:
            rom, last = self._search_rom(rom, last)
            if rom:
                found.append(rom)
            if not last:
                return found

    def _search_rom(self, l_rom, diff):
        # One pass of the ROM search (Maxim AN187): `diff` is the bit number (1..64) where the
        # previous pass took the 0 branch last, 0 on the first pass. Returns (rom or None, the
        # bit number to branch at next time, 0 when every device has been found).
        if not self.reset():
            return None, 0
        self.writebyte(self.SEARCH_ROM)
        prev = l_rom or bytearray(8)
        rom = bytearray(8)
        last_zero = 0
        for n in range(1, 65):
            byte, bit = (n - 1) >> 3, 1 << ((n - 1) & 7)
            b = self.readbit()
            nb = self.readbit()
            if b and nb:
                return None, 0  # nobody answered
            if not b and not nb:  # devices disagree here: choose a branch
                b = (1 if prev[byte] & bit else 0) if n < diff else (1 if n == diff else 0)
                if not b:
                    last_zero = n
            self.writebit(b)
            if b:
                rom[byte] |= bit
        return rom, last_zero

    def crc8(self, data):
        return _onewire.crc8(data)
