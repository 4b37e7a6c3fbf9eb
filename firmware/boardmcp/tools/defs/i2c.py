"""The published definition of `i2c_scan` (served by tools/i2c.py)."""

from ..i2c import args_schema
from . import INT, READ_ONLY, STR, obj


def define(reg, profile):
    """Publish i2c_scan (boot.py publishes this module only when the profile has I2C buses)."""
    device = {"type": "object", "properties": {"address": INT, "hex": STR, "sensor": {"type": ["string", "null"]}}}
    reg.add_tool(
        {
            "name": "i2c_scan",
            "title": "Scan an I2C bus",
            "description": "List the addresses answering on an I2C bus, and declared sensors that do not.",
            "inputSchema": args_schema([b["id"] for b in profile["i2c"]]),
            "outputSchema": obj(
                {"bus": INT, "devices": {"type": "array", "items": device}, "missing": {"type": "array", "items": STR}}
            ),
            "annotations": READ_ONLY,
        },
        None,
    )
