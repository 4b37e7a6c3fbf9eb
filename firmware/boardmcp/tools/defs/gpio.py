"""The published definitions of the GPIO tools (served by tools/gpio.py), and the pin policy:
which pins they may use, and why the others are refused."""

from machine import Pin, Signal

from ..gpio import LED_ARGS, READ_ARGS, WRITE_ARGS
from . import INT, READ_ONLY, obj

_PIN_OUT = obj({"pin": INT, "value": INT})
_LED = {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False, "openWorldHint": False}
_WRITES = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True, "openWorldHint": False}


def denied(profile, pin, write):
    """Why tools must not use `pin` (to drive it when `write`), or None when they may."""
    for group in profile["reserved_pins"]:
        if pin in group["pins"] and not (group.get("input_ok") and not write):
            return group["reason"]
    if pin == profile["led"]["pin"]:
        return "the board's LED (use the led tool)"
    for bus in profile.get("i2c", ()):
        if pin in (bus["sda"], bus["scl"]):
            return "in use by I2C bus %d" % bus["id"]
    for ch in profile.get("adc", ()):
        if pin == ch["pin"]:
            return "analog input %s (use adc_read)" % ch["name"]
    for spec in profile.get("sensors", ()):
        if pin == spec.get("pin"):
            return "1-Wire bus of sensor %s" % spec["name"]
    if pin not in profile.get("gpio_allow", ()):
        return "not in this board's GPIO allowlist"
    return None


def define(reg, profile):
    """Publish the led tool when the profile declares an LED, and the gpio_* tools when it has
    an allowlist; keep what tools/gpio.py serves them with in reg.derived."""
    reg.derived["gpio"] = setup = _setup(profile)
    pin, led, readable, _ = setup
    if led is not None:
        reg.add_tool(
            {
                "name": "led",
                "title": "Board LED",
                "description": "Switch the board's LED (GPIO %d) on, off, or toggle it; returns its new state." % pin,
                "inputSchema": LED_ARGS,
                "outputSchema": obj({"on": {"type": "boolean"}, "pin": INT}),
                "annotations": _LED,
            },
            None,
        )
    if readable is None:
        return
    reg.add_tool(
        {
            "name": "gpio_read",
            "title": "Read a GPIO pin",
            "description": "Level (0/1) of an allowlisted GPIO pin.",
            "inputSchema": READ_ARGS,
            "outputSchema": _PIN_OUT,
            "annotations": READ_ONLY,
        },
        None,
    )
    reg.add_tool(
        {
            "name": "gpio_write",
            "title": "Drive a GPIO pin",
            "description": "Drive an allowlisted GPIO pin high (1) or low (0).",
            "inputSchema": WRITE_ARGS,
            "outputSchema": _PIN_OUT,
            "annotations": _WRITES,
        },
        None,
    )


def _setup(profile):
    # (LED pin, its Signal (off from boot; later loads keep its state), the pins gpio_read and
    # gpio_write may use as bytes, not the profile: ~4 KB of heap). No LED: None, None; no
    # allowlist: readable None.
    pin = led = readable = None
    drivable = b""
    spec = profile.get("led")
    if spec:
        pin = spec["pin"]
        led = Signal(Pin(pin, Pin.OUT), invert=bool(spec.get("active_low")))
        led.off()
    allow = profile.get("gpio_allow")
    if allow:
        readable = bytes([p for p in allow if not denied(profile, p, False)])
        drivable = bytes([p for p in readable if not denied(profile, p, True)])
    return pin, led, readable, drivable
