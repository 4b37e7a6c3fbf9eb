"""The board's life: boot (boot.py, unloaded once done), then serve until reset."""

import asyncio
import gc
import sys

import machine
from micropython import const

from . import net
from .registry import unload

_WATCHDOG_PARKED_MS = const(0x7FFFFFFF)  # a watchdog cannot be stopped: after Ctrl-C it gets this
SUPERVISE_MS = const(1000)  # how often the server's health is checked and the watchdog fed
CONSOLE_RETRY_MS = const(50)  # before trying again to load the console transport on a full heap
TIGHT_HEAP = const(65536)  # a board with less free heap once booted collects early ...
EARLY_GC = const(4096)  # ... after every this many bytes allocated


def main():
    """Bring the board up and serve until reset (or Ctrl-C on the console)."""
    from . import boot

    http, ip, serial, mqtt, wifi, watchdog_ms = boot.start()
    # Boot's code is not needed to serve: out of the heap with it.
    boot = None
    unload("boardmcp.boot")
    gc.collect()
    if gc.mem_free() < TIGHT_HEAP:
        # Collect every EARLY_GC bytes allocated, not only once the heap is full: a request's
        # garbage is then freed while it still lies in a few runs, instead of spread through the
        # whole heap between the longer-lived objects, where it leaves no block large enough for
        # the next module load. On the emulated esp32 (50 KB free once booted) that halved the
        # soak's out-of-memory failures; a roomy board (esp32c3: 70 KB, no failures either way)
        # gains nothing from it and, collecting twice a request, answers in twice the time.
        # EARLY_GC is what the esp32 soak bears (with turns): its 1,000-request run failed (a
        # request found no block) 3 times in 14 at 8 KB; at 6 KB 2 in 15 (none in 30 a session
        # earlier: the rate moves with the heap's layout); at 4 KB none in 20 (2 in 36 a session
        # later). Each KB more is fewer collections per request (4 KB: 2.2, 6 KB: 1.5, callgrind).
        gc.threshold(EARLY_GC)
        # And serve one request at a time (Server.turn): five clients' requests half-served at
        # once left the esp32 soak no heap for any of them (24-51 failures per 4,000; none since).
        http.server.one_at_a_time = True
    try:
        asyncio.run(_serve(http, ip, serial, mqtt, wifi, watchdog_ms))
    except KeyboardInterrupt:
        # The console user wants the REPL: keep the watchdog from resetting the board under them.
        # Any other way out leaves it unfed, so a crashed server comes back by itself.
        if watchdog_ms:
            machine.WDT(timeout=_WATCHDOG_PARKED_MS)
        raise
    finally:
        # After Ctrl-C the REPL may run main() again: free the port and start from a clean loop.
        http.close()
        if mqtt:
            mqtt.close()  # no DISCONNECT: the broker publishes the will, clearing our presence
        asyncio.new_event_loop()


async def _serve(http, ip, serial, mqtt, wifi, watchdog_ms):
    # The server, and beside it the watchdog's feeder, the Wi-Fi watch, MQTT and the console transport.
    await http.start()
    asyncio.create_task(_supervise(http, machine.WDT(timeout=watchdog_ms) if watchdog_ms else None))  # noqa: RUF006
    # Rejoin after Wi-Fi drops; a new address (DHCP) is added to the hosts requests may name.
    asyncio.create_task(net.keep_connected(wifi["ssid"], wifi.get("password", ""), http.guard.add_host))  # noqa: RUF006
    if mqtt:
        asyncio.create_task(mqtt.run())  # noqa: RUF006 (the scheduler holds its tasks)
    if serial:
        asyncio.create_task(_console(http.server))  # noqa: RUF006 (the scheduler holds its tasks)
    gc.collect()
    print("mcp: serving http://%s:%d/mcp" % (ip or http.host, http.port))
    print("mcp: serving ws://%s:%d/ws" % (ip or http.host, http.port))
    if serial:
        print("mcp: serving JSON-RPC lines on this console")
    print("auth: " + ("bearer token required" if http.guard.token else "OFF (no token configured)"))
    while True:
        await asyncio.sleep(3600)


async def _console(server):
    # The console transport (about 8 KB of heap with its session) loads when the console first
    # receives a byte, so a board served only over the network never holds it.
    reader = asyncio.StreamReader(sys.stdin.buffer)
    one = bytearray(1)
    if not await reader.readinto(one):
        return
    registry = server.registry
    while True:
        try:
            # Unload the cached code first: the console's stays for good, so it should take the
            # lowest free blocks, not split the free space those modules leave when unloaded.
            registry.reclaim()
            serve = registry.cold("transport.serial.serve")
            break
        except MemoryError:
            await asyncio.sleep_ms(CONSOLE_RETRY_MS)  # others free heap meanwhile; the byte waits
    await serve(server, reader, one)


async def _supervise(http, wdt):
    # Feeds the watchdog from the event loop, so a handler that blocks the loop (a hung driver,
    # a runaway loop) starves it and the watchdog resets the board. And resets the board at once
    # if the HTTP server's accept loop or reaper has ended (they survive refusals and a full
    # heap; only a bug ends them), since nothing new would be served (or timed out) again.
    while http.serving():
        if wdt is not None:
            wdt.feed()
        await asyncio.sleep_ms(SUPERVISE_MS)
    print("http: no longer serving (accept loop or reaper ended); resetting")
    machine.reset()
