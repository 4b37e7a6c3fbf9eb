# machine.I2C and machine.SoftI2C of the emulated board (loaded by machine at power-on when sim.json
# wires parts to a bus, else on first use).
import _boardsim
from _i2creg import Registers
from machine import _pin_id

# Devices hang off a pair of pins (sim.json "i2c": [{"name", "sda", "scl", "devices"}]);
# each is a register-level model in _dev_<type>.py.
# Errors are the esp32 port's: no ACK -> OSError(ENODEV), a stuck bus -> OSError(ETIMEDOUT).
_ENODEV = 19
_ETIMEDOUT = 116
_I2C_PINS = {  # hardware I2C id -> default (scl, sda), per chip (ports/esp32/machine_i2c.h)
    "esp32": ((18, 19), (25, 26)),
    "esp32s3": ((9, 8), (9, 8)),
    "esp32c3": ((9, 8),),
}
_buses = {}  # (scl, sda) -> [bus name, {address: device model}]
_reg = bytearray(1)  # see I2C._mem
_wbuf = bytearray(17)  # see I2C.writeto_mem: a register address and up to 16 data bytes
_wviews = tuple(memoryview(_wbuf)[:n] for n in range(len(_wbuf) + 1))  # _wbuf's first n bytes
# The wired buses and their devices exist from power-on (machine imports this module then, see
# machine._power_on); a pair of pins with nothing wired is a bus of its own, without devices.
for _spec in _boardsim.config().get("i2c", ()):
    _buses[(_spec["scl"], _spec["sda"])] = [
        _spec["name"],
        {dev["address"]: _boardsim.model(dev) for dev in _spec["devices"]},
    ]


def _bus(scl, sda):
    bus = _buses.get((scl, sda))
    if bus is None:
        bus = _buses[(scl, sda)] = ["i2c:%d:%d" % (sda, scl), {}]
    return bus


class I2C:
    def __init__(self, id=-1, *, scl=None, sda=None, freq=400000, timeout=50000):
        if id != -1:
            pins = _I2C_PINS[_boardsim.config()["chip"]]
            if not isinstance(id, int) or not 0 <= id < len(pins):
                raise ValueError("I2C(%s) doesn't exist" % id)
            scl = pins[id][0] if scl is None else scl
            sda = pins[id][1] if sda is None else sda
        self._txn = None
        self._bus = None
        self.init(scl=scl, sda=sda, freq=freq)

    def init(self, *, scl=None, sda=None, freq=400000, timeout=50000):
        if scl is not None and sda is not None:
            self._pins = (_pin_id(scl), _pin_id(sda))
            self._bus = None  # found on first use
        self._freq = freq

    def deinit(self):
        pass

    def _device(self, addr):
        bus = self._bus
        if bus is None:
            bus = self._bus = _bus(self._pins[0], self._pins[1])
        faults = _boardsim.faults()  # once per transaction, for the bus and the device
        if faults.get(bus[0]) == "stuck":
            raise OSError(_ETIMEDOUT)
        dev = bus[1].get(addr)
        if dev is None or faults.get(dev.name) == "absent":
            raise OSError(_ENODEV)
        return dev

    def scan(self):
        found = []
        for addr in range(0x08, 0x78):
            try:
                self._device(addr)
                found.append(addr)
            except OSError as e:
                if e.errno == _ETIMEDOUT:
                    raise
        return found

    def writeto(self, addr, buf, stop=True):
        self._device(addr).write(bytes(buf))
        return len(buf)

    def writevto(self, addr, vector, stop=True):
        data = b"".join(bytes(b) for b in vector)
        self._device(addr).write(data)
        return len(data)

    def readfrom(self, addr, nbytes, stop=True):
        return self._device(addr).read(nbytes)

    def readfrom_into(self, addr, buf, stop=True):
        buf[:] = self._device(addr).read(len(buf))

    # The register transactions allocate little more than their result, as the port's C does:
    # what the sim allocates is counted in every request the firmware serves. Hence one reused
    # buffer for an 8-bit register address (no model keeps what it is handed) and small frames.
    def _mem(self, memaddr, addrsize):
        if addrsize == 8:
            _reg[0] = memaddr & 0xFF
            return _reg
        return memaddr.to_bytes(addrsize // 8, "big")

    def _at(self, addr, memaddr, addrsize):
        # The device at addr with its register pointer set to memaddr.
        dev = self._device(addr)
        dev.write(self._mem(memaddr, addrsize))
        return dev

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        return self._at(addr, memaddr, addrsize).read(nbytes)

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        dev = self._at(addr, memaddr, addrsize)
        if isinstance(dev, Registers):
            dev.read_into(buf)  # allocating nothing, as the port's C
        else:
            buf[:] = dev.read(len(buf))

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        # An 8-bit register address and the data, through a reused buffer (no model keeps what
        # it is handed): the port's C allocates nothing for a write.
        n = len(buf) + 1
        if addrsize != 8 or n > len(_wbuf):
            return self._write_mem(addr, memaddr, buf, addrsize)
        _wbuf[0] = memaddr & 0xFF
        _wbuf[1:n] = buf
        self._device(addr).write(_wviews[n])

    def _write_mem(self, addr, memaddr, buf, addrsize):
        self._device(addr).write(self._mem(memaddr, addrsize) + bytes(buf))

    # Primitive operations: start, address byte and data through write(), readinto(), stop.
    def start(self):
        self._txn = None

    def write(self, buf):
        acks = 0
        for b in bytes(buf):
            if self._txn is None:
                try:
                    self._txn = [self._device(b >> 1), bytearray(), b & 1]
                except OSError as e:
                    if e.errno == _ETIMEDOUT:
                        raise
                    return acks
            else:
                self._txn[1].append(b)
            acks += 1
        return acks

    def readinto(self, buf, nack=True):
        if self._txn is None or not self._txn[2]:
            raise OSError(_ENODEV)
        buf[:] = self._txn[0].read(len(buf))

    def stop(self):
        if self._txn is not None and not self._txn[2] and self._txn[1]:
            self._txn[0].write(bytes(self._txn[1]))
        self._txn = None


class SoftI2C(I2C):
    def __init__(self, scl, sda, *, freq=400000, timeout=50000):
        super().__init__(scl=scl, sda=sda, freq=freq, timeout=timeout)
