"""Fault fixtures: tools that fail on purpose, so tests can show the server survives them.

Loaded only on a board whose profile says `"fixtures": ["faults"]` (boards/faults.json, emulator
only); a normal board never carries them.
- `fault_raise`: the handler raises an unexpected exception (an `isError` result; the server goes on).
- `fault_exhaust_heap`: allocates until the heap runs out (the request fails cleanly with -32603).
- `fault_hold_heap`: fills the heap and holds it for `ms` while the server goes on (requests and
  connections meanwhile meet a full heap), then lets go. With `holes`, every other block of that
  size is let go at once: the heap is fragmented, free in holes of about that size, none larger.
- `fault_hang`: spins without yielding (the watchdog resets the board, which comes back serving).
"""

import asyncio

_NO_ARGS = {"type": "object", "additionalProperties": False}
_HOLD = {
    "type": "object",
    "properties": {
        "ms": {"type": "integer", "minimum": 0, "maximum": 10000},
        "holes": {"type": "integer", "minimum": 64, "maximum": 4096},
    },
}
_DESTRUCTIVE = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False, "openWorldHint": False}


def _raise(args, ctx):
    raise RuntimeError("fault fixture: the handler raised")


def _fill(hog, size=4096):
    # Take every free block, largest first (real exhaustion, not a raised MemoryError).
    while size >= 16:
        try:
            hog.append(bytearray(size))
        except MemoryError:
            size //= 2


def _exhaust_heap(args, ctx):
    # Whatever the server allocates next (its error response included) meets a full heap
    # until this frame's garbage is collected.
    hog = []
    _fill(hog)
    raise MemoryError()


async def _hold_heap(args, ctx):
    hog = []
    holes = args.get("holes")
    if holes:
        ctx.server.registry.evict()  # what a request short of heap would unload is gone already
        _fill(hog, holes)  # blocks of `holes` bytes, placed one after another, then smaller ones
        i = 0
        # Every other block of that size goes (in place: the heap is full). The smaller ones,
        # which filled the gaps between, stay: no two holes meet.
        while i < len(hog) and len(hog[i]) == holes:
            hog[i] = None
            i += 2
        print("fault: heap fragmented")  # tests wait for this line
    else:
        _fill(hog)
    await asyncio.sleep_ms(args.get("ms", 1000))
    hog = None
    return {"content": [{"type": "text", "text": "held the heap full"}]}


def _hang(args, ctx):
    while True:
        pass


def register(reg, profile):
    """Add the fault tools."""
    for name, title, handler in (
        ("fault_raise", "Raise an exception", _raise),
        ("fault_exhaust_heap", "Exhaust the heap", _exhaust_heap),
        ("fault_hang", "Hang the event loop", _hang),
        ("fault_hold_heap", "Hold the heap full", _hold_heap),
    ):
        reg.add_tool(
            {
                "name": name,
                "title": title,
                "description": "Test fixture: " + title.lower() + " inside the tool handler.",
                "inputSchema": _HOLD if handler is _hold_heap else _NO_ARGS,
                "annotations": _DESTRUCTIVE,
            },
            handler,
        )
