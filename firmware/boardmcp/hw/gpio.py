"""Digital pins: read with an optional pull, drive high or low, PWM.

    read(4, "up") -> 0 or 1;  write(5, 1);  pwm(6, 1000, 32768)

Which pins may be used is the caller's decision (tools/gpio.py checks the profile first).
"""

from machine import Pin

from .. import kept

PULLS = {"up": Pin.PULL_UP, "down": Pin.PULL_DOWN}
# Kept across unloads of this driver, as the pins themselves keep their state:
_driven = kept("gpio.driven", set)  # pins this driver made outputs: reading them must not make them inputs
_pwms = kept("gpio.pwms", dict)  # pin -> running PWM, stopped when the pin is used otherwise


def _stop_pwm(pin):
    p = _pwms.pop(pin, None)
    if p is not None:
        p.deinit()


def read(pin, pull=None):
    """The level on `pin` (0/1). An output pin keeps driving; any other becomes an input."""
    if pin in _driven and pull is None:
        return Pin(pin).value()
    _stop_pwm(pin)
    _driven.discard(pin)
    return (Pin(pin, Pin.IN) if pull is None else Pin(pin, Pin.IN, PULLS[pull])).value()


def write(pin, value):
    """Make `pin` an output at `value` (0/1)."""
    _stop_pwm(pin)
    Pin(pin, Pin.OUT, value=1 if value else 0)
    _driven.add(pin)


def pwm(pin, freq, duty_u16):
    """Run PWM on `pin` at `freq` Hz with duty `duty_u16`/65535 until the pin is used otherwise."""
    from machine import PWM  # only boards that use PWM pay for it

    _stop_pwm(pin)
    _driven.add(pin)
    _pwms[pin] = PWM(Pin(pin), freq=freq, duty_u16=duty_u16)
