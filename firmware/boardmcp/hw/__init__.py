"""Hardware drivers: GPIO, ADC, I2C and sensors. No MCP in here; tools/ binds these to the registry.

Sensor drivers (`sensors/<part>.py`) share one shape, so tools can treat them alike:

    from boardmcp.hw.sensors import bme280
    s = bme280.Sensor(i2c, 0x76)      # checks the chip id
    s.read()                          # -> values in the order of bme280.FIELDS
    bme280.FIELDS                     # ((key, unit, change worth reporting), ...)

Faults surface as OSError from the bus (ENODEV: no answer; ETIMEDOUT: bus stuck) or as the
errors below.
"""


class CRCError(Exception):
    """A reading arrived with a bad checksum (noise, a loose wire, missing pull-ups)."""


class DeviceError(Exception):
    """Something answered at the address, but it is not the part the profile declares."""
