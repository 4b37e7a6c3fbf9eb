"""I2C buses from the board profile, register access, and the CRC-8 of Sensirion/Aosong parts.

i2c = bus({"id": 0, "sda": 8, "scl": 9, "freq": 400000})
chip_id = read(i2c, 0x76, 0xD0, 1)[0]
"""

from machine import I2C, Pin, SoftI2C

from . import CRCError

_buses = {}  # profile bus id -> I2C object, made on first use
_byte = bytearray(1)  # write()'s data, reused: the transaction copies it (no bytes and tuple per write)


def bus(spec):
    """The I2C object for a profile bus ({"id", "sda", "scl", "freq", "soft"}); made once."""
    i2c = _buses.get(spec["id"])
    if i2c is None:
        scl = Pin(spec["scl"])
        sda = Pin(spec["sda"])
        freq = spec.get("freq", 100000)
        i2c = SoftI2C(scl, sda, freq=freq) if spec.get("soft") else I2C(spec["id"], scl=scl, sda=sda, freq=freq)
        _buses[spec["id"]] = i2c
    return i2c


def read(i2c, addr, reg, n):
    """n bytes from register `reg` on, of the device at `addr`."""
    return i2c.readfrom_mem(addr, reg, n)


def read_into(i2c, addr, reg, buf):
    """Fill buf from register `reg` on, of the device at `addr`: with a buffer the driver reuses,
    a reading allocates nothing for it."""
    i2c.readfrom_mem_into(addr, reg, buf)


def write(i2c, addr, reg, value):
    """Write one byte to register `reg`."""
    _byte[0] = value
    i2c.writeto_mem(addr, reg, _byte)


def crc8(data, start=0, end=None):
    """CRC-8, polynomial 0x31, init 0xFF (Sensirion, Aosong) over data[start:end]."""
    crc = 0xFF
    for i in range(start, len(data) if end is None else end):
        crc ^= data[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def words(buf):
    """The 16-bit words of a Sensirion reply (each followed by its CRC); CRCError on a mismatch."""
    out = []
    for i in range(0, len(buf) - 2, 3):
        if crc8(buf, i, i + 2) != buf[i + 2]:
            raise CRCError("checksum mismatch in word %d" % (i // 3))
        out.append((buf[i] << 8) | buf[i + 1])
    return out
