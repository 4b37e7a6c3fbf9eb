"""`adc_read`: the profile's named analog channels, calibrated, averaged and scaled."""

from ..registry import ToolError, structured
from . import NUM, STR, obj, tool


def register(reg, profile):
    """Add adc_read when the profile has ADC channels."""
    specs = profile.get("adc")
    if not specs:
        return
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

    reg.add_tool(
        tool(
            "adc_read",
            "Read an analog input",
            "Read a named analog channel (calibrated, averaged, scaled to its unit).",
            {"channel": {"type": "string", "enum": names}},
            obj({"channel": STR, "value": NUM, "unit": STR, "pin_volts": NUM}),
            required=["channel"],
        ),
        read,
    )
