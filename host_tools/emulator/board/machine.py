# Emulated `machine` for the esp32 port, run inside the MicroPython unix VM.
# Shadows the unix port's built-in `machine` because the sim dir comes first on sys.path.
# API and constants follow micropython-esp32-stubs; pin state lives in this VM (the board).
import time

import _boardsim

PWRON_RESET = _boardsim.PWRON_RESET
HARD_RESET = _boardsim.HARD_RESET
WDT_RESET = _boardsim.WDT_RESET
DEEPSLEEP_RESET = _boardsim.DEEPSLEEP_RESET
SOFT_RESET = _boardsim.SOFT_RESET

SLEEP = 2
DEEPSLEEP = 4
PIN_WAKE = 2
EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4
TOUCHPAD_WAKE = 5
ULP_WAKE = 6

_freq = 160000000


def freq(hz=None):
    global _freq
    if hz is None:
        return _freq
    if hz % 1000000 or hz // 1000000 not in _boardsim.chip()["freqs"]:
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")
    _freq = hz


def unique_id():
    # The base MAC, as on the chip.
    return bytes(int(b, 16) for b in _boardsim.config()["mac"].split(":"))


def reset_cause():
    return _boardsim.config().get("reset_cause", PWRON_RESET)


def wake_reason():
    return TIMER_WAKE if reset_cause() == DEEPSLEEP_RESET else 0


def reset():
    _boardsim.reset_board(HARD_RESET)


def soft_reset():
    _boardsim.reset_board(SOFT_RESET)


def idle():
    time.sleep_ms(1)


def lightsleep(time_ms=None):
    # No wake sources are emulated: without a time the board sleeps until interrupted.
    if time_ms is None:
        while True:
            time.sleep(1)
    time.sleep_ms(time_ms)


def deepsleep(time_ms=None):
    # Deep sleep ends in a reset; the sim has no RTC wake, so without a time it never wakes.
    if time_ms is None:
        while True:
            time.sleep(1)
    time.sleep_ms(time_ms)
    _boardsim.reset_board(DEEPSLEEP_RESET)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


# Pin state per GPIO: [mode, pull, latch, external level or None, irq]. A sensor/wire model
# drives inputs through _drive(); the profile's `loopback` pairs are jumpers between two pins.
_MODE, _PULL, _LATCH, _EXT, _IRQ = range(5)
_pins = {}


def _state(pin_id):
    st = _pins.get(pin_id)
    if st is None:
        st = _pins[pin_id] = [None, None, 0, None, None]
    return st


_wires = None  # pin -> the pin the profile's loopback wires it to


def _wired(pin_id):
    global _wires
    if _wires is None:
        _wires = {}
        for a, b in _boardsim.config().get("loopback", ()):
            _wires[a] = b
            _wires[b] = a
    return _wires.get(pin_id)


def _driven(pin_id):
    # The level a pin drives onto its wire, or None when it drives nothing.
    st = _state(pin_id)
    if st[_MODE] in (Pin.OUT, Pin.OPEN_DRAIN) and not (st[_MODE] == Pin.OPEN_DRAIN and st[_LATCH]):
        return st[_LATCH]
    return None


def _wire_level(pin_id):
    # The level of the pin wired to this one (before a change), or None without a wire.
    other = _wired(pin_id)
    return None if other is None else _level(other)


def _wire_edge(pin_id, before):
    other = _wired(pin_id)
    if other is not None:
        _edge(other, before)


def _level(pin_id):
    st = _state(pin_id)
    own = _driven(pin_id)
    if own is not None:
        return own
    if st[_EXT] is not None:
        return st[_EXT]
    other = _wired(pin_id)
    if other is not None and _driven(other) is not None:  # a jumper from a driven pin
        return _driven(other)
    if st[_MODE] == Pin.OPEN_DRAIN:  # released: the bus pull-up wins unless pulled down
        return 0 if st[_PULL] == Pin.PULL_DOWN else 1
    return 1 if st[_PULL] == Pin.PULL_UP else 0


def _drive(pin_id, level):
    # Set the level the outside world puts on a pin (None = floating); fires Pin.irq handlers.
    before = _level(pin_id)
    _state(pin_id)[_EXT] = level
    _edge(pin_id, before)


def _edge(pin_id, before):
    after = _level(pin_id)
    irq = _state(pin_id)[_IRQ]
    if irq is None or irq.handler is None or after == before:
        return
    if irq.trig & (Pin.IRQ_RISING if after else Pin.IRQ_FALLING):
        irq._flags |= Pin.IRQ_RISING if after else Pin.IRQ_FALLING
        irq.handler(Pin(pin_id))


class _PinIRQ:
    def __init__(self, handler, trig):
        self.handler = handler
        self.trig = trig
        self._flags = 0

    def trigger(self, trig=None):
        if trig is not None:
            self.trig = trig
        return self.trig

    def flags(self):
        f, self._flags = self._flags, 0
        return f


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_DOWN = 1
    PULL_UP = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    WAKE_LOW = 4
    WAKE_HIGH = 5
    DRIVE_0 = 0
    DRIVE_1 = 1
    DRIVE_2 = 2
    DRIVE_3 = 3

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, alt=None, hold=None):
        if isinstance(id, Pin):
            id = id._id
        if not isinstance(id, int) or id not in _boardsim.chip()["gpio"]:
            raise ValueError("invalid pin")
        self._id = id
        self.init(mode, pull, value=value, drive=drive, hold=hold)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, alt=None, hold=None):
        st = _state(self._id)
        before, wire = _level(self._id), _wire_level(self._id)
        if value is not None:
            st[_LATCH] = 1 if value else 0
        if mode is not None and mode != -1:
            if mode not in (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN):
                raise ValueError("invalid pin mode")
            if mode != Pin.IN and self._id in _boardsim.chip()["input_only"]:
                raise ValueError("pin can only be input")
            st[_MODE] = mode
        if pull != -1:
            st[_PULL] = pull
        if drive is not None and drive not in (0, 1, 2, 3):
            raise ValueError("invalid pin drive")
        _edge(self._id, before)
        _wire_edge(self._id, wire)

    def value(self, x=None):
        if x is None:
            return _level(self._id)
        before, wire = _level(self._id), _wire_level(self._id)
        _state(self._id)[_LATCH] = 1 if x else 0
        _edge(self._id, before)
        _wire_edge(self._id, wire)

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def toggle(self):
        self.value(1 - _state(self._id)[_LATCH])

    def mode(self, mode=None):
        if mode is None:
            return _state(self._id)[_MODE]
        self.init(mode)

    def pull(self, pull=None):
        if pull is None:
            return _state(self._id)[_PULL]
        self.init(pull=pull)

    def drive(self, drive=None):
        if drive is None:
            return Pin.DRIVE_2
        self.init(drive=drive)

    def irq(self, handler=None, trigger=3, *, priority=1, wake=None, hard=False):
        st = _state(self._id)
        if st[_IRQ] is None or handler is not None:
            st[_IRQ] = _PinIRQ(handler, trigger)
        return st[_IRQ]

    def __repr__(self):
        return "Pin(%d)" % self._id


def _pin_id(pin):
    return pin._id if isinstance(pin, Pin) else Pin(pin)._id


class Signal:
    def __init__(self, pin, *args, invert=False, **kw):
        if isinstance(pin, Pin) and len(args) == 1 and not kw:  # Signal(pin_obj, invert, /)
            invert = args[0]
            args = ()
        self._pin = pin if isinstance(pin, Pin) and not args and not kw else Pin(pin, *args, **kw)
        self._invert = 1 if invert else 0

    def value(self, x=None):
        if x is None:
            return self._pin.value() ^ self._invert
        self._pin.value((1 if x else 0) ^ self._invert)

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


# The watchdog. One per chip (id 0), cannot be stopped; a thread checks it because the VM
# has no timer interrupt. It dies with the VM, so unlike a chip it does not survive a
# soft reset.
_wdt_timeout = 0
_wdt_fed = 0


def _wdt_watch():
    while True:
        time.sleep_ms(20)
        if time.ticks_diff(time.ticks_ms(), _wdt_fed) > _wdt_timeout:
            _boardsim.reset_board(
                WDT_RESET,
                "E (%d) task_wdt: Task watchdog got triggered. The following tasks did not "
                "reset the watchdog in time:\n - mp_task" % time.ticks_ms(),
            )


class WDT:
    def __init__(self, id=0, timeout=5000):
        global _wdt_timeout, _wdt_fed
        if id != 0:
            raise ValueError("WDT(%d) doesn't exist" % id)
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        started = _wdt_timeout > 0
        _wdt_fed = time.ticks_ms()
        _wdt_timeout = timeout
        if not started:
            import _thread

            _thread.start_new_thread(_wdt_watch, ())

    def feed(self):
        global _wdt_fed
        _wdt_fed = time.ticks_ms()


# Peripheral classes load on first use, so a board that uses none pays no heap for them ...
_LAZY = {
    "I2C": "_machine_i2c",
    "SoftI2C": "_machine_i2c",
    "ADC": "_machine_adc",
    "ADCBlock": "_machine_adc",
    "PWM": "_machine_pwm",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(__import__(_LAZY[name]), name)
    raise AttributeError(name)


def _power_on():
    # ... but the devices sim.json wires to the board are there from power-on, as on a chip: their
    # models load now, low in a fresh heap, and not at the first request that uses them, when the
    # heap the firmware has fragmented may hold no block for their code (seen: a conformance
    # board with 95 KB free failed a 1,280 B allocation importing _dev_bme280).
    cfg = _boardsim.config()
    if any(bus["devices"] for bus in cfg.get("i2c", ())):
        __import__("_machine_i2c")
    if cfg.get("onewire"):
        __import__("_onewire")


_power_on()
