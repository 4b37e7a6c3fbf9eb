# boardmcp bench probe: `boardmcp bench` stages this as main.py on emulated boards only; it is
# never deployed. It runs the real firmware exactly as main.py does (boardmcp.app.main) and, beside
# it, a stats port answering one command per connection with heap figures read from the VM:
#   m  read        c  gc.collect(), then read
#   bN leave only N bytes of heap free (ballast)      r  drop the ballast
# Reply: "mem_alloc mem_free mem_total vm_and_probe sim stats_server\n" (bytes); mem_total is
# the VM's cumulative count of bytes allocated (micropython.mem_total()).
import gc

import micropython

gc.collect()
VM_AND_PROBE = gc.mem_alloc()
# The simulated hardware: Python here, C in flash on a chip, so counted apart.
import _boardsim  # noqa: E402, F401
import esp32  # noqa: E402, F401
import machine  # noqa: E402, F401
import network  # noqa: E402, F401

gc.collect()
SIM = gc.mem_alloc() - VM_AND_PROBE
STATS_PORT = 0  # set by the bench when staging
_state = {"ballast": None, "server": 0, "keep": None, "task": None}


def _fill(leave):
    # Largest pieces first, halving on MemoryError, so holes between live objects fill up too.
    parts = []
    want = gc.mem_free() - leave
    while want > 64:
        size = want
        while size > 64:
            try:
                parts.append(bytearray(size - 32))
                break
            except MemoryError:
                size //= 2
        if size <= 64:
            break
        want = gc.mem_free() - leave
    return parts


async def _answer(reader, writer):
    line = await reader.readline()
    alloc = gc.mem_alloc()
    cmd = line[:1]
    if cmd == b"c":
        gc.collect()
        alloc = gc.mem_alloc()
    elif cmd == b"r":
        _state["ballast"] = None
        gc.collect()
    elif cmd == b"b":
        _state["ballast"] = None
        gc.collect()
        _state["ballast"] = _fill(int(line[1:]))
        alloc = gc.mem_alloc()
    writer.write(
        "%d %d %d %d %d %d\n" % (alloc, gc.mem_free(), micropython.mem_total(), VM_AND_PROBE, SIM, _state["server"])
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _stats():
    import asyncio

    gc.collect()
    before = gc.mem_alloc()
    _state["keep"] = await asyncio.start_server(_answer, "127.0.0.1", STATS_PORT)
    gc.collect()
    _state["server"] = gc.mem_alloc() - before


# The firmware's own imports start here: asyncio is one of them.
import asyncio  # noqa: E402

_state["task"] = asyncio.create_task(_stats())
from boardmcp import app  # noqa: E402

app.main()
