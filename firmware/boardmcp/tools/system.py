"""The `system_info` tool: what the board is and how it is doing (its definition: defs/system.py)."""

import gc
import time

import machine

from .. import BOOT_MS, VERSION, net
from ..registry import structured

# Its own copy, as sensors.py has: one in the tools package would load with every tools module
# (+224 B on each gpio load, measured), a helper building the schemas ~300 B more per load.
NO_ARGS = {"type": "object", "properties": {}, "additionalProperties": False}


def register(reg, profile):
    """Serve system_info (defs/system.py published it and worked out the board's facts)."""
    board, chip, micropython = reg.derived["system"]

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

    reg.add_tool({"name": "system_info", "inputSchema": NO_ARGS}, system_info)
