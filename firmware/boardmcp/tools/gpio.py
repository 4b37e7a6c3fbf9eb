"""GPIO tools: `led` drives the profile's LED; `gpio_read` and `gpio_write` use the pins in the
profile's `gpio_allow` and refuse any other with the reason (flash, PSRAM, USB, strapping,
input-only, in use), before anything touches the pin."""

from machine import Pin, Signal

from ..hw import gpio
from ..registry import ToolError, structured

_PIN = {"type": "integer", "minimum": 0, "maximum": 48}
_PIN_OUT = {
    "type": "object",
    "properties": {"pin": {"type": "integer"}, "value": {"type": "integer"}},
    "required": ["pin", "value"],
}


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


def _pin(profile, args, write):
    # The schema has made it an integral number in 0..48; a JSON 4.0 becomes 4.
    pin = int(args["pin"])
    why = denied(profile, pin, write)
    if why:
        raise ToolError(
            "GPIO %d refused (%s); nothing was changed. Usable pins: %s"
            % (pin, why, ", ".join([str(p) for p in profile.get("gpio_allow", ())]))
        )
    return pin


def register(reg, profile):
    """Add the led tool when the profile declares an LED, and the gpio_* tools."""
    _register_led(reg, profile)
    if not profile.get("gpio_allow"):
        return

    def read(args, ctx):
        pin = _pin(profile, args, False)
        pull = args.get("pull")
        if pull and denied(profile, pin, True):  # input-only pins have no pull resistors
            raise ToolError("GPIO %d has no pull resistors; read it without `pull`" % pin)
        return structured({"pin": pin, "value": gpio.read(pin, pull)})

    def write(args, ctx):
        pin = _pin(profile, args, True)
        gpio.write(pin, args["value"])
        return structured({"pin": pin, "value": 1 if args["value"] else 0})

    reg.add_tool(
        {
            "name": "gpio_read",
            "title": "Read a GPIO pin",
            "description": "Read the level (0/1) of an allowlisted GPIO pin.",
            "inputSchema": {
                "type": "object",
                "properties": {"pin": _PIN, "pull": {"type": "string", "enum": ["up", "down"]}},
                "required": ["pin"],
                "additionalProperties": False,
            },
            "outputSchema": _PIN_OUT,
            "annotations": {"readOnlyHint": True, "destructiveHint": False, "openWorldHint": False},
        },
        read,
    )
    reg.add_tool(
        {
            "name": "gpio_write",
            "title": "Drive a GPIO pin",
            "description": "Drive an allowlisted GPIO pin high (1) or low (0).",
            "inputSchema": {
                "type": "object",
                "properties": {"pin": _PIN, "value": {"type": "integer", "enum": [0, 1]}},
                "required": ["pin", "value"],
                "additionalProperties": False,
            },
            "outputSchema": _PIN_OUT,
            "annotations": {
                "readOnlyHint": False,
                "destructiveHint": True,
                "idempotentHint": True,
                "openWorldHint": False,
            },
        },
        write,
    )


def _register_led(reg, profile):
    spec = profile.get("led")
    if not spec:
        return
    pin = spec["pin"]
    led = Signal(Pin(pin, Pin.OUT), invert=bool(spec.get("active_low")))
    led.off()

    def set_led(args, ctx):
        state = args["state"]
        if state == "toggle":
            led.value(not led.value())
        else:
            led.value(state == "on")
        return structured({"on": bool(led.value()), "pin": pin})

    reg.add_tool(
        {
            "name": "led",
            "title": "Board LED",
            "description": "Switch the board's LED (GPIO %d) on or off, or toggle it; returns its new state." % pin,
            "inputSchema": {
                "type": "object",
                "properties": {
                    "state": {
                        "type": "string",
                        "enum": ["on", "off", "toggle"],
                        "description": "on, off, or toggle (invert the current state)",
                    }
                },
                "required": ["state"],
                "additionalProperties": False,
            },
            "outputSchema": {
                "type": "object",
                "properties": {"on": {"type": "boolean"}, "pin": {"type": "integer"}},
                "required": ["on", "pin"],
            },
            "annotations": {
                "readOnlyHint": False,
                "destructiveHint": False,
                "idempotentHint": False,
                "openWorldHint": False,
            },
        },
        set_led,
    )
