# boardmcp bench probe: `boardmcp bench` stages this as main.py on emulated boards only; it is
# never deployed. It runs the real firmware exactly as main.py does (boardmcp.app.main) and, beside
# it, a stats port answering one command per connection with heap figures read from the VM:
#   m  read        c  gc.collect(), then read
#   bN leave only N bytes of heap free (ballast)      r  drop the ballast
#   u  unload the firmware's loadable code (Registry.evict(), as a full heap would) and drop
#      the HTTP server's spare request buffer, then as c
#   d  also print the firmware's loaded modules to the console (what a heap figure holds)
#   f  as u, and find the largest block the heap can give (how fragmented the free heap is)
# Reply: "mem_alloc mem_free mem_total vm_and_probe sim stats_server largest_free\n" (bytes);
# mem_total is the VM's cumulative count of bytes allocated (micropython.mem_total()), and
# largest_free is 0 unless the command was f.
import gc
import sys

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
_state = {"ballast": None, "reserve": None, "server": 0, "task": None, "http": None}


def _fill(leave):
    # Largest pieces first, halving on MemoryError, so holes between live objects fill up too.
    # To leave (next to) nothing, floats (one GC block each) then fill the smallest holes, which
    # boot leaves by the hundred between the objects it keeps.
    crumbs = None
    if leave < 64:
        try:
            crumbs = [None] * CRUMBS
        except MemoryError:
            pass
    parts = [crumbs]
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
    if crumbs is not None:
        try:
            for i in range(CRUMBS):
                crumbs[i] = i + 0.5
        except MemoryError:
            pass
    return parts


CRUMBS = 512  # one-block holes a ballast that leaves nothing fills at most
RESERVE = 1024  # heap the probe keeps for its own answer while a ballast is held
POLL_MS = 5  # how often a probe under ballast looks for a stats connection
_figures = [0, 0, 0, 0, 0, 0, 0]  # the reply's numbers, set in place (allocates nothing)


def _empty(ballast):
    # Drop every part before the list goes: the unix port scans the C stack conservatively, and
    # a stale copy of a pointer to the list (or to its crumbs) left there would otherwise keep the
    # whole ballast alive (seen once in CI: 2.5 KB free after `r`).
    crumbs = ballast[0]
    if crumbs is not None:
        for i in range(len(crumbs)):
            crumbs[i] = None
    for i in range(len(ballast)):
        ballast[i] = None


def _spare(keep):
    # Under ballast, the probe answers out of a reserve of its own: let go while it works, taken
    # back after (from the same hole, once its garbage is collected) so the firmware still sees
    # exactly what the ballast left. Without ballast the heap has room and no reserve is held.
    if keep and _state["ballast"] is not None:
        gc.collect()
        try:
            _state["reserve"] = bytearray(RESERVE)
        except MemoryError:
            pass
    elif not keep and _state["reserve"] is not None:
        _state["reserve"] = None
        gc.collect()


def _carry_out(line, n):
    # The command in line[:n], parsed in place; its figures go to _figures.
    alloc = gc.mem_alloc()
    cmd = line[0] if n else 0
    if cmd in b"uf":
        http = _state["http"]
        http.server.registry.evict()
        # The HTTP server's spare request buffer (2 KB) is a cache too: whether one is held after
        # a test depends on whether its last request got a full-size buffer.
        http._spare = http._spare_mv = None
    if cmd in b"cuf":
        gc.collect()
        alloc = gc.mem_alloc()
    elif cmd == ord("d"):
        print("probe: loaded:", " ".join(sorted(m[9:] for m in sys.modules if m.startswith("boardmcp."))))
    elif cmd in b"rb":
        if _state["ballast"] is not None:
            _empty(_state["ballast"])
        _state["ballast"] = _state["reserve"] = None
        gc.collect()
        if cmd == ord("b"):
            leave = 0
            for i in range(1, n):
                if 48 <= line[i] <= 57:
                    leave = leave * 10 + line[i] - 48
            _state["reserve"] = bytearray(RESERVE)
            _state["ballast"] = _fill(leave)
            gc.collect()  # the fill's own garbage
            alloc = gc.mem_alloc()
    # Figures as the firmware sees the heap: with the reserve, if a ballast holds one.
    lent = RESERVE if _state["ballast"] is not None and _state["reserve"] is None else 0
    _figures[0] = alloc + lent
    _figures[1] = max(gc.mem_free() - lent, 0)
    _figures[2] = micropython.mem_total()
    _figures[3] = VM_AND_PROBE
    _figures[4] = SIM
    _figures[5] = _state["server"]
    _figures[6] = _largest(_figures[1]) if cmd == ord("f") else 0


def _largest(free):
    # The largest block an allocation can have (bytes, to 16): bisected with bytearrays, each
    # dropped and collected before the next (mem_info() only prints its "max free sz").
    low, high = 0, free + 16
    while high - low > 16:
        mid = (low + high) // 2
        gc.collect()
        try:
            bytearray(mid)
            low = mid
        except MemoryError:
            high = mid
    gc.collect()
    return low


def _answer(sock, line, one):
    # One stats connection, answered synchronously (a command line in, a line of figures out):
    # nothing else runs meanwhile, so the figures are the firmware's as it was left.
    _spare(False)
    try:
        client = sock.accept()[0]
    except OSError:  # nothing waiting after all
        return
    try:
        client.settimeout(5)
        n = 0
        while n < len(line) and client.readinto(one) == 1 and one[0] != 10:
            line[n] = one[0]
            n += 1
        _carry_out(line, n)
        _spare(False)
        client.write(b"%d %d %d %d %d %d %d\n" % tuple(_figures))
    except OSError:
        pass
    client.close()


def _waiting(poller):
    for _ in poller.ipoll(0):  # ipoll, not poll: it makes no list
        return True
    return False


async def _stats():
    # Its own accept loop rather than asyncio.start_server's, whose per-connection stream, dict
    # and task find no room under a ballast that left little free: its accept task died there,
    # and every later command timed out. Under ballast it polls, which allocates nothing.
    import asyncio
    import select
    import socket

    gc.collect()
    before = gc.mem_alloc()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(socket.getaddrinfo("127.0.0.1", STATS_PORT)[0][-1])
    sock.listen(4)
    sock.setblocking(False)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    ready = asyncio.StreamReader(sock)
    nothing = bytearray(0)
    line = bytearray(24)
    one = bytearray(1)
    gc.collect()
    _state["server"] = gc.mem_alloc() - before
    while True:
        if _state["ballast"] is None:
            try:
                await ready.readinto(nothing)  # returns once a connection is waiting
            except OSError:
                pass  # a listening socket's read may report an error: it is ready all the same
            except MemoryError:
                await asyncio.sleep_ms(POLL_MS)  # the firmware has the heap full: poll for now
        else:
            await asyncio.sleep_ms(POLL_MS)
        if _waiting(poller):
            _answer(sock, line, one)
            _spare(True)


# The firmware's own imports start here: asyncio is one of them.
import asyncio  # noqa: E402

_state["task"] = asyncio.create_task(_stats())
from boardmcp import app  # noqa: E402
from boardmcp.transport import http  # noqa: E402

_http_init = http.HTTPServer.__init__


def _keep(self, *args, **kwargs):
    # The firmware's HTTP server (and through it the registry), for the u command.
    _state["http"] = self
    _http_init(self, *args, **kwargs)


http.HTTPServer.__init__ = _keep

app.main()
