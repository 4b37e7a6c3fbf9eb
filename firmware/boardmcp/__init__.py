"""boardmcp: an MCP server for ESP32 boards running MicroPython."""

import time

NAME = "boardmcp"
VERSION = "0.1.0"
# When the firmware started: here, in the package that is never unloaded (tools modules are, and
# their module-level state starts afresh each time one is loaded again).
BOOT_MS = time.ticks_ms()
_kept = {}


def kept(name, make):
    """State that must outlive the unloading of a tools module or driver (registry.py unloads
    them when the heap runs short): made with make() the first time, then the same object."""
    value = _kept.get(name)
    if value is None:
        value = _kept[name] = make()
    return value
