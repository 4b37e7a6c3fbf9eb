"""`adc_read`: the profile's named analog channels, calibrated, averaged and scaled (its
definition: defs/adc.py)."""

from ..registry import ToolError, structured


def args_schema(names):
    """adc_read's inputSchema: one of the profile's channel names."""
    return {
        "type": "object",
        "properties": {"channel": {"type": "string", "enum": names}},
        "additionalProperties": False,
        "required": ["channel"],
    }


def register(reg, profile):
    """Serve adc_read (published when the profile has ADC channels)."""
    specs = profile["adc"]
    names = [c["name"] for c in specs]
    channels = {}  # name -> hw.adc.Channel, made on first read

    def read(args, ctx):
        from ..hw.adc import Channel

        name = args["channel"]
        spec = specs[names.index(name)]
        ch = channels.get(name)
        try:
            if ch is None:
                ch = channels[name] = Channel(
                    spec["pin"], spec.get("atten", "11db"), spec.get("scale", 1.0), spec.get("samples", 8)
                )
            volts = ch.volts()
        except (OSError, ValueError) as e:
            raise ToolError("channel %s (GPIO %d) could not be read: %s" % (name, spec["pin"], e))
        return structured(
            {
                "channel": name,
                "value": round(volts * ch.scale, 3),
                "unit": spec.get("unit", "V"),
                "pin_volts": round(volts, 4),
            }
        )

    reg.add_tool({"name": "adc_read", "inputSchema": args_schema(names)}, read)
