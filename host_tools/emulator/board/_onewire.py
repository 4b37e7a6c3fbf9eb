# Emulated `_onewire`: the esp32 port's C 1-Wire primitives, over device models on a pin
# (sim.json "onewire": [{"name", "pin", "devices": [{"type", "name", ...}]}]). Every time slot
# the master sends a bit (1 for a read slot); the line is the wired-AND of it and what each
# selected device drives; each device then sees the line.
import _boardsim

_buses = {}  # pin id -> [device models], built at power-on (see the end of this module)


def _devices(pin):
    return [d for d in _buses.get(pin._id, ()) if _boardsim.fault(d.name) != "absent"]


def reset(pin):
    devs = _devices(pin)
    for d in devs:
        d.reset()
    return bool(devs)


def _slot(pin, bit):
    devs = _devices(pin)
    line = bit
    for d in devs:
        line &= d.level
    for d in devs:
        d.sense(line)
    return line


def readbit(pin):
    return _slot(pin, 1)


def writebit(pin, value):
    _slot(pin, 1 if value else 0)


def readbyte(pin):
    value = 0
    for i in range(8):
        value |= _slot(pin, 1) << i
    return value


def writebyte(pin, value):
    for i in range(8):
        _slot(pin, (value >> i) & 1)


def crc8(data):
    # Dallas/Maxim CRC-8 (x^8 + x^5 + x^4 + 1, reflected).
    crc = 0
    for byte in data:
        for i in range(8):
            mix = (crc ^ (byte >> i)) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
    return crc


# The wired devices, once crc8() exists (they use it): machine imports this module at power-on.
for _spec in _boardsim.config().get("onewire", ()):
    _buses.setdefault(_spec["pin"], []).extend(_boardsim.model(dev) for dev in _spec["devices"])
