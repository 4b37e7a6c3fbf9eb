"""`i2c_scan`: which addresses answer on the profile's I2C buses, next to the sensors declared there
(its definition: defs/i2c.py). Also `explain`, the message a model gets when an I2C or 1-Wire
part fails."""

from micropython import const

from ..hw import CRCError, DeviceError
from ..registry import ToolError, structured

_ENODEV = const(19)
_ETIMEDOUT = const(116)


def explain(e, what, where):
    """A message a model can act on, for exception `e` from device `what` at `where`."""
    if isinstance(e, CRCError):
        return "%s at %s: %s (noise, a loose wire or weak pull-ups); retry, then check the wiring" % (what, where, e)
    if isinstance(e, DeviceError):
        return "%s at %s: %s; check the part and the address in the board profile" % (what, where, e)
    code = e.args[0] if e.args else None
    if code == _ETIMEDOUT:
        return (
            "%s at %s: the bus is stuck (SDA or SCL held low, timed out); power-cycle the sensors "
            "or look for a short, then retry" % (what, where)
        )
    if code == _ENODEV:
        return (
            "%s did not answer at %s (no ACK, ENODEV); check its power, wiring and address, "
            "and run i2c_scan to see what does answer" % (what, where)
        )
    return "%s at %s failed: OSError %s" % (what, where, code)


def args_schema(ids):
    """i2c_scan's inputSchema: one of the profile's bus ids (the first when left out)."""
    return {"type": "object", "properties": {"bus": {"type": "integer", "enum": ids}}, "additionalProperties": False}


def register(reg, profile):
    """Serve i2c_scan (published when the profile has I2C buses)."""
    buses = profile["i2c"]
    ids = [b["id"] for b in buses]

    def scan(args, ctx):
        from ..hw import i2c as hw_i2c  # the bus driver loads on first use

        bus_id = args.get("bus", ids[0])
        spec = buses[ids.index(bus_id)]
        try:
            found = hw_i2c.bus(spec).scan()
        except OSError as e:
            raise ToolError(explain(e, "scan", "I2C bus %d" % bus_id))
        declared = {}
        for s in profile.get("sensors", ()):
            if s.get("bus") == bus_id:
                declared[s["address"]] = s["name"]
        devices = [{"address": a, "hex": "0x%02x" % a, "sensor": declared.get(a)} for a in found]
        missing = [name for a, name in declared.items() if a not in found]
        return structured({"bus": bus_id, "devices": devices, "missing": missing})

    reg.add_tool({"name": "i2c_scan", "inputSchema": args_schema(ids)}, scan)
