"""The published definitions of the sensor tools and resources (served by tools/sensors.py): for
each declared sensor, `read_<name>` and `sensor://<name>`, with the fields its driver reads."""

from ..sensors import NO_ARGS
from . import READ_ONLY, obj


def define(reg, profile):
    """Publish a tool and a resource per sensor the profile declares."""
    for spec in profile.get("sensors", ()):
        kind = spec["type"]
        driver = __import__("boardmcp.hw.sensors." + kind, None, None, (kind,))
        name = spec["name"]
        title = spec.get("title") or kind
        props = {}
        units = []
        for key, unit, _ in driver.FIELDS:
            props[key] = {"type": "number", "description": unit}
            units.append("%s (%s)" % (key, unit))
        desc = ", ".join(units)  # one string for the tool and the resource
        reg.add_tool(
            {
                "name": "read_" + name,
                "title": title,
                "description": desc,
                "inputSchema": NO_ARGS,
                "outputSchema": obj(props),
                "annotations": READ_ONLY,
            },
            None,
        )
        resource = {"uri": "sensor://" + name, "name": name, "title": title, "description": desc}
        resource["mimeType"] = "application/json"
        reg.add_resource(resource, None)
