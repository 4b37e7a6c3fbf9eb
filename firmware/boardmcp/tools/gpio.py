"""GPIO tools: `led` drives the LED the board profile declares."""

from machine import Pin, Signal

from ..registry import structured


def register(reg, profile):
    """Add the led tool when the profile declares an LED."""
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
