"""Maxim DS18B20 1-Wire thermometer: 12-bit conversion, scratchpad CRC-checked, family code
checked (0x28).

    s = Sensor(onewire.OneWire(Pin(4))); (t_c,) = s.read()
"""

import time

from micropython import const

from .. import CRCError, DeviceError

ADDRESS = None  # a 1-Wire part is found by ROM search, not by address
FIELDS = (("temperature", "degC", 0.1),)
_FAMILY = const(0x28)
_ENODEV = const(19)


class Sensor:
    """The DS18B20 with ROM `rom` on the bus, or the first one a search finds."""

    def __init__(self, ow, rom=None):
        self.ow = ow
        if rom is None:
            roms = ow.scan()
            if not roms:
                raise OSError(_ENODEV)
            rom = roms[0]
        if rom[0] != _FAMILY or ow.crc8(rom):
            raise DeviceError("ROM %s is not a DS18B20 (family 0x28, valid CRC)" % bytes(rom).hex())
        self.rom = rom
        self.buf = bytearray(9)

    def read(self):
        """(temperature degC,) from one 750 ms conversion."""
        ow = self.ow
        if not ow.reset():
            raise OSError(_ENODEV)
        ow.select_rom(self.rom)
        ow.writebyte(0x44)  # convert T
        for _ in range(80):  # read slots return 1 once the conversion is done
            if ow.readbit():
                break
            time.sleep_ms(10)
        ow.select_rom(self.rom)
        ow.writebyte(0xBE)  # read scratchpad
        ow.readinto(self.buf)
        if ow.crc8(self.buf):  # the CRC over all nine bytes is 0 when they are intact
            raise CRCError("scratchpad checksum mismatch")
        raw = self.buf[0] | (self.buf[1] << 8)
        return ((raw - 65536 if raw > 32767 else raw) / 16,)
