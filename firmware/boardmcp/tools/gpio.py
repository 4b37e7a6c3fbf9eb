"""GPIO tools: `led` drives the profile's LED; `gpio_read` and `gpio_write` use the pins in the
profile's `gpio_allow` and refuse any other with the reason (flash, PSRAM, USB, strapping,
input-only, in use), before anything touches the pin. Their definitions, and the pin policy:
defs/gpio.py."""

from .. import config
from ..registry import ToolError, structured

_PIN = {"type": "integer", "minimum": 0, "maximum": 48}
LED_ARGS = {
    "type": "object",
    "properties": {"state": {"type": "string", "enum": ["on", "off", "toggle"]}},
    "additionalProperties": False,
    "required": ["state"],
}
READ_ARGS = {
    "type": "object",
    "properties": {"pin": _PIN, "pull": {"type": "string", "enum": ["up", "down"]}},
    "additionalProperties": False,
    "required": ["pin"],
}
WRITE_ARGS = {
    "type": "object",
    "properties": {"pin": _PIN, "value": {"type": "integer", "enum": [0, 1]}},
    "additionalProperties": False,
    "required": ["pin", "value"],
}


def _pin(usable, args, write):
    # The schema has made it an integral number in 0..48; a JSON 4.0 becomes 4.
    pin = int(args["pin"])
    if pin not in usable:
        # The refusal's reason from the profile, read again: the handlers keep only the pin lists.
        from .defs.gpio import denied

        profile = config.profile()
        raise ToolError(
            "GPIO %d refused (%s); nothing was changed. Usable pins: %s"
            % (pin, denied(profile, pin, write), ", ".join([str(p) for p in profile.get("gpio_allow", ())]))
        )
    return pin


def register(reg, profile):
    """Serve the tools defs/gpio.py published, with what it worked out at boot (the LED's Signal,
    the pins each tool may use): a load reads no profile."""
    led_pin, led, readable, drivable = reg.derived["gpio"]
    if led is not None:

        def set_led(args, ctx):
            state = args["state"]
            if state == "toggle":
                led.value(not led.value())
            else:
                led.value(state == "on")
            return structured({"on": bool(led.value()), "pin": led_pin})

        reg.add_tool({"name": "led", "inputSchema": LED_ARGS}, set_led)
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

    reg.add_tool({"name": "gpio_read", "inputSchema": READ_ARGS}, read)
    reg.add_tool({"name": "gpio_write", "inputSchema": WRITE_ARGS}, write)
