# The registry's catalog on the MicroPython VM: definitions written to flash and sent from there,
# tools modules unloaded after publishing, loaded again by the request that needs one, and
# unloaded again to make room.
import gc
import json
import sys
import time

from boardmcp import jsonrpc
from boardmcp.registry import Registry, is_coroutine, text

PROFILE = {"name": "bench", "chip": "esp32s3"}
SYSTEM = "boardmcp.tools.system"
SYSTEM_DEFS = "boardmcp.tools.defs.system"
OBJ = {"type": "object"}


def _page(catalog, start, end):
    # A page as the client receives it.
    return json.loads(jsonrpc.result(1, {"items": catalog.page(start, end)}))["result"]["items"]


async def _call(reg, name, args):
    # Registry.call_tool() answers at once, or returns an awaitable when the handler waits.
    result = reg.call_tool(name, args, None)
    return (await result) if is_coroutine(result) else result


def _system():
    reg = Registry("cat_system", PROFILE)
    reg.publish("system")
    reg.seal()
    return reg


async def test_publishing_leaves_the_module_unloaded_and_a_call_loads_it():
    reg = _system()
    assert SYSTEM not in sys.modules
    assert [t["name"] for t in _page(reg.tools, 0, 1)] == ["system_info"]
    assert "outputSchema" in _page(reg.tools, 0, 1)[0]
    r = await _call(reg, "system_info", {})
    assert "structuredContent" in r, r
    assert r["structuredContent"]["board"] == "bench" and SYSTEM in sys.modules
    reg.evict()
    tools = sys.modules.get("boardmcp.tools")
    assert SYSTEM not in sys.modules and not (tools and hasattr(tools, "system"))
    r = await _call(reg, "system_info", {})  # loaded again
    reg.evict()
    assert r["structuredContent"]["chip"] == "esp32s3"


async def test_a_call_loads_what_serves_not_the_definitions():
    reg = _system()
    assert SYSTEM_DEFS not in sys.modules
    await _call(reg, "system_info", {})
    # The published definition (outputSchema and all) came from defs/system.py at boot; serving
    # loads tools/system.py alone, and validates with the inputSchema it handed over.
    assert SYSTEM in sys.modules and SYSTEM_DEFS not in sys.modules and "boardmcp.tools.defs" not in sys.modules
    r = await _call(reg, "system_info", {"surprise": 1})
    assert r.get("isError") and "surprise" in r["content"][0]["text"], r
    reg.evict()


class _Heap:
    # Stands in for the gc module in registry.py: a free heap the test sets, looks counted.
    def __init__(self, free):
        self.free = free
        self.looks = 0
        self.collected = 0

    def mem_free(self):
        self.looks += 1
        return self.free

    def collect(self):
        self.collected += 1


async def test_trim_looks_at_the_heap_less_often_the_more_is_free():
    from boardmcp import registry

    reg = _system()
    await _call(reg, "system_info", {})  # a tools module loaded: trim() has something to unload
    heap = _Heap(registry.LOW_WATER + 3 * registry.TRIM_STEP)
    real, registry.gc = registry.gc, heap
    reg._untrimmed = 0  # the call trimmed with the real heap
    try:
        for _ in range(8):
            reg.trim()
        assert heap.looks == 2, heap.looks  # a look, three calls passed, a look, three passed
        heap.free = 10 * registry.LOW_WATER
        reg._untrimmed = 0
        for _ in range(3 * registry.TRIM_EVERY):
            reg.trim()
        assert heap.looks == 2 + 3, heap.looks  # roomy: one look every TRIM_EVERY calls
        assert heap.collected == 0 and SYSTEM in sys.modules
        heap.free = registry.LOW_WATER - 1
        reg._untrimmed = 0
        reg.trim()
        # Short: a collection, a second look, still short, so the tools module is unloaded.
        assert heap.collected >= 1 and heap.looks == 2 + 3 + 2 and SYSTEM not in sys.modules
    finally:
        registry.gc = real
        reg.evict()


async def test_evicting_gives_the_module_heap_back():
    reg = _system()
    await _call(reg, "system_info", {})
    reg.evict()  # first use interns the module's names for good; measure from here
    gc.collect()
    before = gc.mem_alloc()
    await _call(reg, "system_info", {})
    gc.collect()
    loaded = gc.mem_alloc() - before
    reg.evict()
    left = gc.mem_alloc() - before
    assert loaded > 1024, loaded
    assert left < loaded // 4, (loaded, left)


async def test_reclaiming_unloads_what_is_loaded_and_says_so():
    # What a transport calls when the heap runs out: True while there was a module to unload.
    reg = _system()
    await _call(reg, "system_info", {})
    assert reg.reclaim() is True and SYSTEM not in sys.modules
    assert reg.reclaim() is False


async def test_arguments_are_checked_against_the_published_schema():
    reg = _system()
    r = await _call(reg, "system_info", {"x": 1})
    reg.evict()
    assert r["isError"] and "x" in r["content"][0]["text"]


def test_pages_are_slices_of_the_file_and_removal_rewrites_it():
    reg = Registry("cat_pages")
    reg.seal()
    for i in range(5):
        reg.add_tool({"name": "t%d" % i, "description": "d", "inputSchema": OBJ}, lambda a, c: text("ok"))
    assert [t["name"] for t in _page(reg.tools, 1, 3)] == ["t1", "t2"]
    assert _page(reg.tools, 2, 2) == []
    reg.remove_tool("t1")
    assert not reg.has_tool("t1")
    assert [t["name"] for t in _page(reg.tools, 0, len(reg.tools))] == ["t0", "t2", "t3", "t4"]
    reg.add_tool({"name": "t1", "description": "back", "inputSchema": OBJ}, lambda a, c: text("ok"))
    assert [t["description"] for t in _page(reg.tools, 3, 5)] == ["d", "back"]


def test_a_duplicate_name_is_refused():
    reg = Registry("cat_dup")
    reg.add_tool({"name": "a", "description": "d", "inputSchema": OBJ}, lambda a, c: text("ok"))
    try:
        reg.add_tool({"name": "a", "description": "d", "inputSchema": OBJ}, lambda a, c: text("ok"))
    except ValueError:
        return
    raise AssertionError("duplicate accepted")


def test_a_long_page_is_streamed_in_pieces():
    reg = Registry("cat_long")
    for i in range(40):
        reg.add_tool({"name": "tool_%d" % i, "description": "x" * 40, "inputSchema": OBJ}, lambda a, c: text("ok"))
    result = {"tools": reg.tools.page(0, 40)}
    assert jsonrpc.is_large(result)
    out = jsonrpc.io.BytesIO()
    pieces = sum(1 for _ in jsonrpc.dump_pieces(out, 7, result))
    assert pieces > 1
    out.seek(0)
    sent = json.load(out)  # from the stream: a 4.6 KB copy needs a block the esp32 heap may lack
    assert sent["id"] == 7 and [t["name"] for t in sent["result"]["tools"]] == ["tool_%d" % i for i in range(40)]


async def test_state_that_must_last_survives_an_unload():
    reg = _system()
    before = (await _call(reg, "system_info", {}))["structuredContent"]["uptime_s"]
    time.sleep_ms(30)
    reg.evict()
    after = (await _call(reg, "system_info", {}))["structuredContent"]["uptime_s"]
    reg.evict()
    assert after >= before + 0.02, (before, after)  # from boot, not from the module's reload


async def test_a_reload_leaves_the_hardware_as_a_client_set_it():
    reg = Registry("cat_led", {"name": "bench", "chip": "esp32s3", "led": {"pin": 2}, "reserved_pins": []})
    reg.publish("gpio")
    reg.seal()
    r = await _call(reg, "led", {"state": "on"})
    assert r["structuredContent"]["on"] is True
    reg.evict()
    r = await _call(reg, "led", {"state": "toggle"})  # loads the module again
    reg.evict()  # this VM has the esp32's heap: leave it as found
    assert r["structuredContent"]["on"] is False


async def test_a_module_loaded_again_reads_no_profile():
    # Without a profile given, define() reads board.json at boot. Loaded again, system and
    # gpio take what they need from reg.derived, so a board.json gone missing goes unnoticed.
    import os

    reg = Registry("cat_lazy")
    reg.publish("system")
    reg.publish("gpio")
    reg.seal()
    os.rename("board.json", "board.json.away")
    try:
        info = (await _call(reg, "system_info", {}))["structuredContent"]
        led = (await _call(reg, "led", {"state": "off"}))["structuredContent"]
    finally:
        os.rename("board.json.away", "board.json")
        reg.evict()
    assert info["board"] == "esp32" and led["on"] is False, (info, led)


async def test_a_driven_pin_stays_driven_across_a_reload():
    profile = {"name": "bench", "chip": "esp32s3", "reserved_pins": [], "led": {"pin": 2}, "gpio_allow": [5]}
    reg = Registry("cat_gpio", profile)
    reg.publish("gpio")
    reg.seal()
    await _call(reg, "gpio_write", {"pin": 5, "value": 1})
    reg.evict()
    r = await _call(reg, "gpio_read", {"pin": 5})  # the driver is loaded again
    reg.evict()
    assert r["structuredContent"]["value"] == 1, r
    import machine  # the bench's simulated chip: is the pin still an output?

    assert machine._state(5)[machine._MODE] == machine.Pin.OUT
