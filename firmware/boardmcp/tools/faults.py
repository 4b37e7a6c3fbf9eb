"""Fault fixtures: tools that fail on purpose, so tests can show the server survives them.

Loaded only on a board whose profile says `"fixtures": ["faults"]` (boards/faults.json, emulator
only); a normal board never carries them.
- `fault_raise`: the handler raises an unexpected exception (an `isError` result; the server goes on).
- `fault_exhaust_heap`: allocates until the heap runs out (the request fails cleanly with -32603).
- `fault_hang`: spins without yielding (the watchdog resets the board, which comes back serving).
"""

_NO_ARGS = {"type": "object", "additionalProperties": False}
_DESTRUCTIVE = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False, "openWorldHint": False}


def _raise(args, ctx):
    raise RuntimeError("fault fixture: the handler raised")


def _exhaust_heap(args, ctx):
    # Real exhaustion, not a raised MemoryError: every free block is taken, so whatever the
    # server allocates next (its error response included) meets a full heap until this
    # frame's garbage is collected.
    hog = []
    size = 4096
    while True:
        try:
            hog.append(bytearray(size))
        except MemoryError:
            if size == 16:
                raise
            size //= 2


def _hang(args, ctx):
    while True:
        pass


def register(reg, profile):
    """Add the fault tools."""
    for name, title, handler in (
        ("fault_raise", "Raise an exception", _raise),
        ("fault_exhaust_heap", "Exhaust the heap", _exhaust_heap),
        ("fault_hang", "Hang the event loop", _hang),
    ):
        reg.add_tool(
            {
                "name": name,
                "title": title,
                "description": "Test fixture: " + title.lower() + " inside the tool handler.",
                "inputSchema": _NO_ARGS,
                "annotations": _DESTRUCTIVE,
            },
            handler,
        )
