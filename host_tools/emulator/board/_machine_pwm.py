# machine.PWM of the emulated board (loaded by machine on first use).
from machine import Pin


# Duty and frequency are kept; the pin becomes an output, as the LEDC peripheral drives it.
class PWM:
    def __init__(self, dest, *, freq=None, duty=None, duty_u16=None, duty_ns=None, invert=False):
        self._pin = dest if isinstance(dest, Pin) else Pin(dest)
        self._pin.init(Pin.OUT)
        self._freq = 5000
        self._duty = 32768
        self.init(freq=freq, duty=duty, duty_u16=duty_u16, duty_ns=duty_ns, invert=invert)

    def init(self, *, freq=None, duty=None, duty_u16=None, duty_ns=None, invert=False):
        if freq is not None:
            self.freq(freq)
        if duty is not None:
            self.duty(duty)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)
        if duty_ns is not None:
            self.duty_ns(duty_ns)
        self._invert = bool(invert)

    def deinit(self):
        self._duty = 0

    def freq(self, value=None):
        if value is None:
            return self._freq
        if not 1 <= value <= 40000000:
            raise ValueError("frequency must be from 1Hz to 40MHz")
        self._freq = value

    def duty_u16(self, value=None):
        if value is None:
            return self._duty
        if not 0 <= value <= 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")
        self._duty = value

    def duty(self, *args, **kwargs):
        if not args:
            return self._duty >> 6
        self.duty_u16(min(65535, args[0] << 6))

    def duty_ns(self, value=None):
        period_ns = 1000000000 // self._freq
        if value is None:
            return self._duty * period_ns // 65535
        self.duty_u16(min(65535, value * 65535 // period_ns))
