"""Sensor tools and resources: for each sensor the profile declares, a `read_<name>` tool and a
`sensor://<name>` resource (JSON, subscribable; their definitions: defs/sensors.py). `watch()`
polls the subscribed ones (the registry starts it at the first subscription).

Only the drivers of declared sensors are imported; each part is opened (chip id checked) on
first use and reopened after a failure, so a sensor plugged in later starts working.
"""

import asyncio
import json

from micropython import const

from ..hw import CRCError, DeviceError
from ..registry import structured
from .i2c import explain

POLL_MS = const(5000)
_FAULTS = (OSError, CRCError, DeviceError)  # what a failing part raises
_sensors = []  # every declared sensor, for watch()


class _Sensor:
    def __init__(self, spec, profile):
        self.spec = spec
        self.name = spec["name"]
        self.uri = "sensor://" + spec["name"]
        kind = spec["type"]
        self.driver = __import__("boardmcp.hw.sensors." + kind, None, None, (kind,))
        self.bus = None
        if "bus" in spec:
            for b in profile.get("i2c", ()):
                if b["id"] == spec["bus"]:
                    self.bus = b
            self.where = "0x%02x on I2C bus %d" % (spec["address"], spec["bus"])
        else:
            self.where = "the 1-Wire bus on GPIO %d" % spec["pin"]
        self.part = None
        self.last = None  # the last reading reported to subscribers

    def _open(self):
        spec = self.spec
        if self.bus is not None:
            from ..hw.i2c import bus

            if spec["type"] == "ina219":
                return self.driver.Sensor(bus(self.bus), spec["address"], spec.get("shunt_ohms", 0.1))
            return self.driver.Sensor(bus(self.bus), spec["address"])
        from machine import Pin
        from onewire import OneWire

        return self.driver.Sensor(OneWire(Pin(spec["pin"])))

    def read(self):
        """The reading as {field: value}; OSError with an explanation when the part fails."""
        values = self._values()
        fields = self.driver.FIELDS
        out = {}
        for i in range(len(fields)):  # no enumerate(): it makes a tuple per field
            out[fields[i][0]] = round(values[i], 3)
        return out

    # The reading's try apart from read(), each frame small enough for the C stack (a frame of
    # more than 11 words, a try's included, is heap allocated on every call).
    def _values(self):
        try:
            if self.part is None:
                self.part = self._open()
            return self.part.read()
        except _FAULTS as e:
            self.part = None
            raise self._fault(e)

    def _fault(self, e):
        return OSError(explain(e, self.name, self.where))

    def changed(self, reading):
        # Worth a notification: any field moved by at least its FIELDS threshold.
        if self.last is None:
            return True
        for key, _, delta in self.driver.FIELDS:
            if abs(reading[key] - self.last[key]) >= delta:
                return True
        return False


NO_ARGS = {"type": "object", "properties": {}, "additionalProperties": False}


def register(reg, profile):
    """Serve a tool and a resource per declared sensor (the ones watch() polls from now on)."""
    _sensors.clear()
    for spec in profile.get("sensors", ()):
        s = _Sensor(spec, profile)
        _sensors.append(s)
        _serve(reg, s)


def _serve(reg, s):
    def tool_handler(args, ctx):
        return structured(s.read())  # a failing part's OSError is the tool's failure (registry)

    def resource(uri):
        return json.dumps(s.read())

    reg.add_tool({"name": "read_" + s.name, "inputSchema": NO_ARGS}, tool_handler)
    reg.add_resource({"uri": s.uri, "mimeType": "application/json"}, resource)


async def watch(server):
    """Forever: read the sensors some client subscribed to, and notify when a reading moved."""
    while True:
        await asyncio.sleep_ms(POLL_MS)
        if not _sensors:
            continue
        subscribed = server.subscribed()
        for s in _sensors:
            if s.uri not in subscribed:
                s.last = None
                continue
            try:
                reading = s.read()
            except OSError:
                continue  # a read of the resource reports the fault
            if s.changed(reading):
                s.last = reading
                await server.resource_updated(s.uri)
