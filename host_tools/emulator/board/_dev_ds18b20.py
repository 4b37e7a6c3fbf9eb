# Maxim DS18B20 1-Wire thermometer, modelled time slot by time slot: ROM commands (read, match,
# skip, search), convert T, read/write scratchpad. The scratchpad reads 85 degC until the first
# conversion, as on the part.
import _boardsim
import _onewire


class Device:
    def __init__(self, spec):
        self.name = spec["name"]
        serial = bytearray(7)
        serial[0] = 0x28  # family code
        for i, ch in enumerate(spec["name"]):
            serial[1 + i % 6] ^= ord(ch)
        self.rom = bytes(serial) + bytes((_onewire.crc8(serial),))
        self.t = 21.5
        self.scratch = bytearray(b"\x50\x05\x4b\x46\x7f\xff\x0c\x10\x00")  # 85.0 degC, TH, TL, 12 bit
        self.scratch[8] = _onewire.crc8(self.scratch[:8])
        self.level = 1
        self._gen = None

    def reset(self):
        self._gen = self._session()
        self.level = next(self._gen)

    def sense(self, line):
        self.level = self._gen.send(line) if self._gen else 1

    # Generators below yield the level this device drives in the next slot (1 = released)
    # and receive the line level that slot ended with.
    def _rx(self):
        value = 0
        for i in range(8):
            value |= (yield 1) << i
        return value

    def _tx(self, data):
        for b in data:
            for i in range(8):
                yield (b >> i) & 1

    def _session(self):
        cmd = yield from self._rx()
        if cmd == 0x33:  # READ ROM
            yield from self._tx(self.rom)
        elif cmd == 0x55:  # MATCH ROM
            for b in self.rom:
                if (yield from self._rx()) != b:
                    cmd = None
                    break
        elif cmd == 0xF0:  # SEARCH ROM
            for i in range(64):
                bit = (self.rom[i >> 3] >> (i & 7)) & 1
                yield bit
                yield bit ^ 1
                if (yield 1) != bit:
                    cmd = None
                    break
            else:
                cmd = None  # a search ends the transaction
        elif cmd != 0xCC:  # anything but SKIP ROM
            cmd = None
        if cmd is not None:
            yield from self._function()
        while True:
            yield 1

    def _function(self):
        cmd = yield from self._rx()
        if cmd == 0x44:  # CONVERT T (done at once: read slots see 1)
            self.t = _boardsim.drift(self.t, 0.05, 18.0, 26.0)
            raw = int(self.t * 16) & 0xFFFF
            self.scratch[0] = raw & 0xFF
            self.scratch[1] = raw >> 8
            self.scratch[8] = _onewire.crc8(self.scratch[:8])
        elif cmd == 0xBE:  # READ SCRATCHPAD
            out = bytearray(self.scratch)
            if _boardsim.fault(self.name) == "crc":
                out[8] ^= 0x5A
            yield from self._tx(out)
        elif cmd == 0x4E:  # WRITE SCRATCHPAD: TH, TL, config
            for i in (2, 3, 4):
                self.scratch[i] = yield from self._rx()
            self.scratch[8] = _onewire.crc8(self.scratch[:8])
