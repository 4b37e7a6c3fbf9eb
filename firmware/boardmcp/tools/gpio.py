"""GPIO tools: `led` drives the profile's LED; `gpio_read` and `gpio_write` use the pins in the
profile's `gpio_allow` and refuse any other with the reason (flash, PSRAM, USB, strapping,
input-only, in use), before anything touches the pin."""

from machine import Pin, Signal

from .. import config
from ..registry import ToolError, structured
from . import INT, obj, tool

_PIN = {"type": "integer", "minimum": 0, "maximum": 48}
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


def _pin(usable, args, write):
    # The schema has made it an integral number in 0..48; a JSON 4.0 becomes 4.
    pin = int(args["pin"])
    if pin not in usable:
        # The refusal's reason from the profile, read again: the handlers keep only the pin lists.
        profile = config.profile()
        raise ToolError(
            "GPIO %d refused (%s); nothing was changed. Usable pins: %s"
            % (pin, denied(profile, pin, write), ", ".join([str(p) for p in profile.get("gpio_allow", ())]))
        )
    return pin


def register(reg, profile):
    """Add the led tool when the profile declares an LED, and the gpio_* tools."""
    # What the handlers need is worked out at boot and kept by the registry: a later load reads
    # no profile, and calls no denied() (each call's frame is heap-allocated: ~10 KB of churn on
    # every load, when the heap is shortest).
    setup = reg.derived.get("gpio")
    if setup is None:
        setup = reg.derived["gpio"] = _setup(profile)
    led_pin, led, readable, drivable = setup
    if led is not None:
        _register_led(reg, led_pin, led)
    if readable is None:  # no allowlist: no gpio_* tools
        return

    def read(args, ctx):
        pin = _pin(readable, args, False)
        pull = args.get("pull")
        if pull and pin not in drivable:  # input-only pins have no pull resistors
            raise ToolError("GPIO %d has no pull resistors; read it without `pull`" % pin)
        from ..hw import gpio  # the driver loads on first use

        return structured({"pin": pin, "value": gpio.read(pin, pull)})

    def write(args, ctx):
        pin = _pin(drivable, args, True)
        from ..hw import gpio

        gpio.write(pin, args["value"])
        return structured({"pin": pin, "value": 1 if args["value"] else 0})

    reg.add_tool(
        tool(
            "gpio_read",
            "Read a GPIO pin",
            "Level (0/1) of an allowlisted GPIO pin.",
            {"pin": _PIN, "pull": {"type": "string", "enum": ["up", "down"]}},
            _PIN_OUT,
            required=["pin"],
        ),
        read,
    )
    reg.add_tool(
        tool(
            "gpio_write",
            "Drive a GPIO pin",
            "Drive an allowlisted GPIO pin high (1) or low (0).",
            {"pin": _PIN, "value": {"type": "integer", "enum": [0, 1]}},
            _PIN_OUT,
            _WRITES,
            ["pin", "value"],
        ),
        write,
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


def _register_led(reg, pin, led):
    def set_led(args, ctx):
        state = args["state"]
        if state == "toggle":
            led.value(not led.value())
        else:
            led.value(state == "on")
        return structured({"on": bool(led.value()), "pin": pin})

    reg.add_tool(
        tool(
            "led",
            "Board LED",
            "Switch the board's LED (GPIO %d) on, off, or toggle it; returns its new state." % pin,
            {"state": {"type": "string", "enum": ["on", "off", "toggle"]}},
            obj({"on": {"type": "boolean"}, "pin": INT}),
            _LED,
            ["state"],
        ),
        set_led,
    )
