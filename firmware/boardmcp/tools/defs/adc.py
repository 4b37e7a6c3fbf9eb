"""The published definition of `adc_read` (served by tools/adc.py)."""

from ..adc import args_schema
from . import NUM, READ_ONLY, STR, obj


def define(reg, profile):
    """Publish adc_read (boot.py publishes this module only when the profile has ADC channels)."""
    reg.add_tool(
        {
            "name": "adc_read",
            "title": "Read an analog input",
            "description": "Read a named analog channel (calibrated, averaged, scaled to its unit).",
            "inputSchema": args_schema([c["name"] for c in profile["adc"]]),
            "outputSchema": obj({"channel": STR, "value": NUM, "unit": STR, "pin_volts": NUM}),
            "annotations": READ_ONLY,
        },
        None,
    )
