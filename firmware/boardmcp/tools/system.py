"""The `system_info` tool: what the board is and how it is doing."""

import gc
import sys
import time

import machine

from .. import BOOT_MS, VERSION, net
from ..registry import structured

_READ_ONLY = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False}


def _micropython_version():
    v = sys.implementation.version
    s = "%d.%d.%d" % (v[0], v[1], v[2])
    return s + "-" + v[3] if len(v) > 3 and v[3] else s


def register(reg, profile):
    """Add system_info to the registry."""
    facts = reg.derived.get("system")  # made once, not on every load or call
    if facts is None:
        facts = reg.derived["system"] = (profile["name"], profile["chip"], _micropython_version())
    board, chip, micropython = facts

    def system_info(args, ctx):
        # No gc.collect() first: it would cost every call a full heap scan; the free heap
        # reported includes garbage the next collection will reclaim.
        return structured(
            {
                "board": board,
                "chip": chip,
                "firmware": VERSION,
                "micropython": micropython,
                "cpu_mhz": machine.freq() // 1000000,
                "heap_free_bytes": gc.mem_free(),
                "heap_used_bytes": gc.mem_alloc(),
                "uptime_s": time.ticks_diff(time.ticks_ms(), BOOT_MS) / 1000,
                "wifi": net.state(),
            }
        )

    reg.add_tool(
        {
            "name": "system_info",
            "title": "System information",
            "description": "Report the board's chip, firmware and MicroPython versions, CPU clock, "
            "free and used heap, uptime, and Wi-Fi state (SSID, IP address, signal strength).",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
            "outputSchema": {
                "type": "object",
                "properties": {
                    "board": {"type": "string", "description": "Board profile name"},
                    "chip": {"type": "string"},
                    "firmware": {"type": "string", "description": "boardmcp version"},
                    "micropython": {"type": "string"},
                    "cpu_mhz": {"type": "integer"},
                    "heap_free_bytes": {"type": "integer"},
                    "heap_used_bytes": {"type": "integer"},
                    "uptime_s": {"type": "number"},
                    "wifi": {
                        "type": "object",
                        "properties": {
                            "connected": {"type": "boolean"},
                            "hostname": {"type": "string"},
                            "ssid": {"type": "string"},
                            "ip": {"type": "string"},
                            "rssi_dbm": {"type": "integer", "description": "Signal strength"},
                        },
                        "required": ["connected", "hostname"],
                    },
                },
                "required": [
                    "board",
                    "chip",
                    "firmware",
                    "micropython",
                    "cpu_mhz",
                    "heap_free_bytes",
                    "heap_used_bytes",
                    "uptime_s",
                    "wifi",
                ],
            },
            "annotations": _READ_ONLY,
        },
        system_info,
    )
