"""The published definition of `system_info` (served by tools/system.py)."""

import sys

from ..system import NO_ARGS

_READ_ONLY = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False}


def _micropython_version():
    v = sys.implementation.version
    s = "%d.%d.%d" % (v[0], v[1], v[2])
    return s + "-" + v[3] if len(v) > 3 and v[3] else s


def define(reg, profile):
    """Publish system_info, and keep the facts it reports that never change."""
    reg.derived["system"] = (profile["name"], profile["chip"], _micropython_version())
    reg.add_tool(
        {
            "name": "system_info",
            "title": "System information",
            "description": "Report the board's chip, firmware and MicroPython versions, CPU clock, "
            "free and used heap, uptime, and Wi-Fi state (SSID, IP address, signal strength).",
            "inputSchema": NO_ARGS,
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
        None,
    )
