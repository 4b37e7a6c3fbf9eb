"""What the MCP server offers: tools, resources, resource templates and prompts.

Each entry is its published definition plus the function that serves it. The definitions live
on flash, in a catalog of files written at boot, and are sent from there as they are; what
serves them lives in the tools modules (tools/), which are loaded when a request needs one and
unloaded again when the heap runs short. So the heap holds the catalog's index, not the
definitions, and only the code the requests use.

    reg = Registry("catalog")
    reg.publish("system")   # runs tools/defs/system.py's define(reg, profile), then unloads it
    reg.seal()
    reg.call_tool("system_info", {}, ctx)   # loads tools/system.py, runs its register(), keeps it

A tools module's published definitions (titles, descriptions, output schemas) are built at boot
only, by its definitions module `tools/defs/<module>.py`: `define(reg, profile)` adds each entry
with no handler. The module itself is loaded when a request needs it, and its
`register(reg, profile)` hands over the handlers, naming each entry with only what serving it
takes (a tool's inputSchema, a resource's mimeType). So a load costs the heap only the code that
serves (the gpio module: 5.3 KB allocated instead of 10.7 KB, on the esp32). A module without a
definitions module (a test fixture) publishes and serves from register() alike.

register() runs each time the module is loaded again, and its module-level state starts afresh
each time (keep what must last, like the boot time, in the boardmcp package). What define()
works out from the profile or sets up only once (the pins a tool may use, the LED's Pin, put in
its initial state) goes in the dict `reg.derived`, which the registry keeps across reloads.
Entries are added with (in define(), the whole definition and None; in register(), the name
and what serving takes, and the function that serves):

    reg.add_tool({"name": "led", "description": "...", "inputSchema": LED_ARGS}, None)
    reg.add_tool({"name": "led", "inputSchema": LED_ARGS}, set_led)
    reg.add_resource({"uri": "sensor://bme280", "name": "bme280", "mimeType": "application/json"}, read)
    reg.add_template({"uriTemplate": "pin://{n}", "name": "pin"}, read_pin)
    reg.add_prompt({"name": "diagnose", "description": "...", "arguments": [...]}, get)

- Tool handlers are `fn(args, ctx) -> CallToolResult`, or an `async def` of the same shape. `ctx`
  is the request's context (server.Context: progress, logging, asking the client for input);
  a handler that returns at once must not keep it, as the next request reuses it.
  Return `structured(obj)` or `text(s)`, or raise ToolError with a message a model can act on
  (an OSError, a part's fault, is reported the same way).
- Resource readers are `fn(uri) -> str` (one text content, of the definition's mimeType) or
  a list of content dicts. Template readers are `fn(uri, variables)`, and may raise NotFound.
- Prompt getters are `fn(args, ctx) -> {"messages": [...]}` (args are strings, already checked
  against the declared arguments).
- `complete` (prompts and templates): `fn(argument_name, value, context_args) -> [str]`.
- A module that defines `watch(server)` has it run as a task once a client subscribes to one of
  its resources (it tells subscribers when a reading moved).
- A module with `RESIDENT = True` stays loaded (one whose entries change at run time).
- Entries added outside any module's register() (at run time, or by a test) stay loaded.
"""

import asyncio
import gc
import os
import sys
from array import array

from micropython import const

from . import config, schema
from .jsonrpc import JSON_TEXT, Error, Raw, dump

# Free heap a board keeps for connections and requests: when less is free after a tool call or a
# resource read, the loaded tools modules are unloaded (a tight board reloads them per request,
# slower but serving; a roomy one keeps them). gc.mem_free() walks the heap's whole allocation
# table (10% of a tools/call's instructions on the VM, callgrind), so a look that found free
# heap above LOW_WATER skips a call for every TRIM_STEP more, up to TRIM_EVERY - 1 calls: as
# many as a roomy board's 2 x LOW_WATER allow, and a few on a tight board, which would
# otherwise look after every call (on the emulated esp32: 8% of a call, 0.2 looks a call now).
LOW_WATER = const(20480)
TRIM_EVERY = const(8)
TRIM_STEP = const(LOW_WATER // TRIM_EVERY)


class ToolError(Exception):
    """A tool failed in a way the caller can act on; becomes a result with isError: true."""


class NotFound(Exception):
    """No resource at this URI (a template matched its shape, but nothing is there)."""


def text(s):
    """A CallToolResult carrying one text block."""
    return {"content": [{"type": "text", "text": s}]}


def structured(obj):
    """A CallToolResult for a tool with an outputSchema: structuredContent plus its JSON as text
    (JSON_TEXT: the text is written from obj as the result is sent, see jsonrpc.py)."""
    return {"content": JSON_TEXT, "structuredContent": obj}


def failure(message):
    """A CallToolResult reporting a tool failure (isError), as MCP asks for tool-level errors."""
    return {"content": [{"type": "text", "text": message}], "isError": True}


def _failed(name, e):
    # The isError result for an exception out of a tool; control flow and MemoryError go on up.
    # An OSError is the hardware's: its message says what failed (drivers explain theirs).
    if isinstance(e, (ToolError, OSError)):
        return failure("%s: %s" % (name, e))
    if isinstance(e, (Error, MemoryError)) or getattr(e, "passthrough", False):
        raise e
    sys.print_exception(e)
    return failure("%s failed: %s: %s" % (name, type(e).__name__, e))


def is_coroutine(obj):
    """True for what an `async def` call returns (a generator object on MicroPython)."""
    return hasattr(obj, "send") and hasattr(obj, "throw")


def match_template(template, uri):
    """Match an RFC 6570 level-1 template (`{var}` stands for one non-empty segment without `/`)
    against a URI; return the variables, or None when it does not match."""
    out = {}
    t = 0
    u = 0
    while t < len(template):
        c = template[t]
        if c == "{":
            close = template.find("}", t)
            name = template[t + 1 : close]
            t = close + 1
            stop = template[t] if t < len(template) else None
            end = u
            while end < len(uri) and uri[end] != "/" and uri[end] != stop:
                end += 1
            if end == u:
                return None
            out[name] = uri[u:end]
            u = end
        else:
            if u >= len(uri) or uri[u] != c:
                return None
            t += 1
            u += 1
    return out if u == len(uri) else None


class Catalog:
    """One published list (tools, resources, templates or prompts). Its file holds the
    definitions as JSON, each followed by a comma, in publication order; a page of the list is
    one slice of it. The heap holds each entry's key and end offset, the module that serves it,
    and what serves it while that module is loaded."""

    def __init__(self, path, key):
        self.path = path
        self.key = key  # the definition field that names an entry
        self.keys = []  # in publication order
        self.ends = array("I")  # end offset of each entry in the file (past its comma)
        self.owners = {}  # key -> tools module serving it (None: added outside one; always loaded)
        self.live = {}  # key -> what serves it, while its module is loaded
        self._file = open(path, "wb")  # noqa: SIM115 (open while the board publishes at boot; seal() closes it)

    def __len__(self):
        return len(self.keys)

    def add(self, definition, served, owner):
        """Publish a definition (or, for an entry its module published before, take what serves it)."""
        key = definition[self.key]
        if key in self.owners:
            if owner is None or self.owners[key] != owner:
                raise ValueError("duplicate: " + key)
            self.live[key] = served
            return
        if self._file is not None:
            self._write(self._file, definition)
        else:
            with open(self.path, "ab") as f:
                self._write(f, definition)
        self.keys.append(key)
        self.owners[key] = owner
        self.live[key] = served

    def _write(self, f, definition):
        dump(definition, f)
        f.write(b",")
        self.ends.append(f.tell())

    def remove(self, key):
        """Withdraw an entry (rare: lists that change at run time); the file is rewritten."""
        i = self.keys.index(key)
        start = self.ends[i - 1] if i else 0
        cut = self.ends[i] - start
        with open(self.path, "rb") as f:
            data = f.read()
        with open(self.path, "wb") as f:
            f.write(memoryview(data)[:start])
            f.write(memoryview(data)[start + cut :])
        del self.keys[i]
        ends = self.ends
        for j in range(i + 1, len(ends)):
            ends[j - 1] = ends[j] - cut
        self.ends = ends[:-1]
        del self.owners[key]
        self.live.pop(key, None)

    def page(self, start, end):
        """Entries start..end-1 as a JSON array straight from the file."""
        if end <= start:
            return Raw(self.path, 0, 0)
        return Raw(self.path, self.ends[start - 1] if start else 0, self.ends[end - 1] - 1)

    def seal(self):
        """Publishing at boot is over: later entries are appended one at a time."""
        if self._file is not None:
            self._file.close()
            self._file = None


class Registry:
    """The catalog of every list, and the tools modules that serve its entries."""

    def __init__(self, folder="catalog", profile=None):
        try:
            os.mkdir(folder)
        except OSError:
            pass  # it exists: its files are written afresh
        self.tools = Catalog(folder + "/tools", "name")
        self.resources = Catalog(folder + "/resources", "uri")
        self.templates = Catalog(folder + "/templates", "uriTemplate")
        self.prompts = Catalog(folder + "/prompts", "name")
        self.changing = set()  # "tools", "prompts", "resources": lists that change at run time
        self.profile = profile  # what register() gets; None: board.json, read (config.Lazy) if a load needs it
        self._owner = None  # the module whose register() is running
        self._modules = {}  # loaded module -> the sys.modules names it brought in
        self._resident = set()  # modules never unloaded
        self._watchers = {}  # module -> its watch() task
        self._untrimmed = 0  # calls and reads trim() lets pass before it looks at the heap again
        # What a tools module worked out from the profile (or set up) once, and needs on each
        # load: key -> value, as the module chooses (hardware state that outlives a registry
        # goes in boardmcp.kept instead).
        self.derived = {}

    # -- modules ------------------------------------------------------------------------------

    def publish(self, module):
        """At boot: publish tools module `module`'s entries, then unload what that loaded (unless
        the module is RESIDENT), so boot leaves only the catalog's index in the heap. A module
        with a definitions module (tools/defs/<module>.py) is published by that one's
        define(reg, profile), and not itself loaded until a request needs it; any other by its
        register()."""
        try:
            define = self._import("tools.defs." + module, "define").define
        except ImportError:  # it has none (were one to fail, register() publishes names and inputs)
            self._load(module)
        else:
            self._owner = module
            try:
                define(self, self._profile())
            finally:
                self._owner = None
        self.evict()

    def seal(self):
        """Boot is over: close the catalog's files."""
        for catalog in (self.tools, self.resources, self.templates, self.prompts):
            catalog.seal()

    def evict(self):
        """Unload every tools module that is not RESIDENT, with the modules it imported: their
        code and state leave the heap, and the next request that needs one loads it again."""
        resident = self._resident
        for catalog in (self.tools, self.resources, self.templates, self.prompts):
            owners = catalog.owners
            live = catalog.live
            for key in list(live):
                owner = owners[key]
                if owner is not None and owner not in resident:
                    del live[key]
        keep = set()
        for module in list(self._modules):
            if module in resident:
                keep.update(self._modules[module])
            else:
                del self._modules[module]
        # Every tools module and driver (with drivers a handler imported on first use) and cold
        # protocol part, deepest first, so each is unhooked from a package that is still there.
        # One in use (its `busy` is not 0: ws.py's open sockets, http_session.py's streams) stays.
        loaded = sys.modules
        names = [m for m in loaded if m.startswith(_UNLOADABLE) and m not in keep and not getattr(loaded[m], "busy", 0)]
        names.sort(reverse=True)
        for name in names:
            unload(name)
        gc.collect()

    def reclaim(self):
        """The heap ran out: unload the tools modules and cold protocol parts that are loaded
        (each loads again when next needed), then collect. True if there was one to unload."""
        gc.collect()  # first, so that unloading finds room for its own few small lists
        if self._unloadable():
            self.evict()
            return True
        gc.collect()
        return False

    def cold(self, where):
        """The function "module.name" of a part loaded on demand, imported if it is not loaded: a
        cold protocol part (see _COLD, unloaded again by evict()) or the console transport. On a
        full heap, once more after unloading what evict() may: that code is a cache, never a
        reason to refuse a request."""
        dot = where.rfind(".")
        name = where[dot + 1 :]
        try:
            module = self._import(where[:dot], name)
        except MemoryError:
            if not self.reclaim():
                raise
            module = self._import(where[:dot], name)
        return getattr(module, name)

    def _import(self, path, name):
        # Module boardmcp.<path>.
        try:
            return __import__("boardmcp." + path, None, None, (name,))
        except MemoryError:
            # Its slot was freed by the import, and adding the name again takes that very slot:
            # every slot before it on the name's probe path was taken when the import took it,
            # and no module has been unloaded since.
            if "boardmcp." + path not in sys.modules:
                _clear("boardmcp." + path)
            raise

    def trim(self):
        """Unload the tools modules and cold protocol parts when the free heap is below LOW_WATER
        (after a collection). Looks less often while the heap is roomy (see TRIM_EVERY)."""
        if self._untrimmed:
            self._untrimmed -= 1
            return
        if not self._unloadable():
            return
        free = gc.mem_free()
        if free >= LOW_WATER:
            self._untrimmed = min(TRIM_EVERY - 1, (free - LOW_WATER) // TRIM_STEP)
        else:
            gc.collect()
            if gc.mem_free() < LOW_WATER:
                self.evict()

    def _unloadable(self):
        # Is a module loaded that evict() would unload? (Runs after every call: dict lookups only.)
        if len(self._modules) > len(self._resident):
            return True
        modules = sys.modules
        for name in _COLD:
            if name in modules:
                return True
        return False

    def _load(self, module):
        before = list(sys.modules)
        self._owner = module
        try:
            mod = self._import("tools." + module, "register")
            # The profile (3-7 KB of heap) is not kept between loads: a loaded module's handlers
            # hold what they need of it, and an unloaded module needs none. It is read only if
            # register() looks at it (one that keeps its facts in `derived` does not).
            mod.register(self, self._profile())
        finally:
            self._owner = None
            # What it brought in (even if the load failed half-way), and itself (even if
            # something imported it before): what a RESIDENT module keeps loaded.
            names = self._modules.get(module) or []
            own = "boardmcp.tools." + module
            for m in sys.modules:
                if (m == own or (m.startswith("boardmcp.") and m not in before)) and m not in names:
                    names.append(m)
            self._modules[module] = names
        if getattr(mod, "RESIDENT", False):
            self._resident.add(module)
        return mod

    def _profile(self):
        return self.profile if self.profile is not None else config.Lazy()

    def _served(self, catalog, key):
        # What serves an entry, loading its module if it is not (KeyError: no such entry).
        served = catalog.live.get(key)
        return served if served is not None else self._load_entry(catalog, key)

    def _load_entry(self, catalog, key):
        module = catalog.owners[key]
        try:
            self._load(module)
        except MemoryError:
            self.evict()  # other modules' code makes room for this one
            self._load(module)
        return catalog.live[key]

    def watch(self, uri, server):
        """A client subscribed to `uri`: start its module's watch(server) task, if it has one
        and it is not running."""
        module = self.resources.owners.get(uri)
        task = self._watchers.get(module)
        if module is None or (task is not None and not task.done()):
            return
        self._served(self.resources, uri)
        fn = getattr(sys.modules["boardmcp.tools." + module], "watch", None)
        if fn is not None:
            self._watchers[module] = asyncio.create_task(fn(server))

    # -- tools ------------------------------------------------------------------------------

    def add_tool(self, definition, handler):
        """Register a tool. The definition is published as is; its inputSchema guards the handler."""
        self.tools.add(definition, (definition["inputSchema"], handler), self._owner)

    def remove_tool(self, name):
        """Withdraw a tool (announce it with server.list_changed("tools"))."""
        self.tools.remove(name)

    def has_tool(self, name):
        """True when a tool of that name is registered."""
        return name in self.tools.owners

    def tool_schema(self, name):
        """The inputSchema of a registered tool."""
        return self._served(self.tools, name)[0]

    def call_tool(self, name, args, ctx):
        """Validate args against the tool's inputSchema, run it, and return a CallToolResult,
        or, when the handler waits, an awaitable of it (no coroutine for a handler that does not).

        Bad arguments and failures inside the tool come back as isError results, so the
        caller (a model) sees what to fix. MemoryError, protocol errors (jsonrpc.Error) and
        the server's control flow (needing input, cancellation) propagate.
        """
        input_schema, handler = self._served(self.tools, name)
        err = schema.check(input_schema, args)
        if err:
            return failure("Invalid arguments for tool %s: %s" % (name, err))
        try:
            result = handler(args, ctx)
        except Exception as e:
            result = _failed(name, e)
        if is_coroutine(result):
            return self._tool_waiting(name, result)
        self.trim()  # after a failure too: a refused call loaded its module all the same
        return result

    async def _tool_waiting(self, name, pending):
        try:
            result = await pending
        except Exception as e:
            result = _failed(name, e)
        self.trim()
        return result

    # -- resources --------------------------------------------------------------------------

    def add_resource(self, definition, reader):
        """Register a resource at a fixed URI."""
        self.resources.add(definition, (definition.get("mimeType"), reader), self._owner)

    def add_template(self, definition, reader, complete=None):
        """Register a resource template (`uriTemplate`, level-1 `{var}` expressions)."""
        self.templates.add(definition, (definition.get("mimeType"), reader, complete), self._owner)

    def has_resource(self, uri):
        """True when the URI names a fixed resource (those are the subscribable ones)."""
        return uri in self.resources.owners

    def read_resource(self, uri):
        """Return the `contents` list for a URI; raise NotFound when nothing is there."""
        if uri in self.resources.owners:
            mime, reader = self._served(self.resources, uri)
            contents = _contents(uri, mime, reader(uri))
            self.trim()
            return contents
        for template in self.templates.keys:
            variables = match_template(template, uri)
            if variables is not None:
                mime, reader, _ = self._served(self.templates, template)
                return _contents(uri, mime, reader(uri, variables))
        raise NotFound(uri)

    # -- prompts ----------------------------------------------------------------------------

    def add_prompt(self, definition, getter, complete=None):
        """Register a prompt; `arguments` in the definition declare what get() accepts."""
        self.prompts.add(definition, (definition, getter, complete), self._owner)

    def remove_prompt(self, name):
        """Withdraw a prompt (announce it with server.list_changed("prompts"))."""
        self.prompts.remove(name)

    def prompt(self, name):
        """(definition, getter) for a prompt name, or None."""
        if name not in self.prompts.owners:
            return None
        return self._served(self.prompts, name)[:2]

    # -- completion -------------------------------------------------------------------------

    def completer(self, ref):
        """The completion function for a `ref/prompt` or `ref/resource` reference, or None.
        Raises KeyError when the reference names nothing registered."""
        kind = ref.get("type")
        if kind == "ref/prompt":
            return self._served(self.prompts, ref.get("name"))[2]
        if kind == "ref/resource":
            uri = ref.get("uri")
            if uri in self.templates.owners:
                return self._served(self.templates, uri)[2]
            if uri in self.resources.owners:
                return None
        raise KeyError(ref)


# The parts of the protocol few requests use, each loaded on demand (Registry.cold) and unloaded
# as the tools modules are; their lasting state lives elsewhere.
_COLD = (
    "boardmcp.lifecycle",
    "boardmcp.notify",
    "boardmcp.resources",
    "boardmcp.prompts",
    "boardmcp.inputs",
    "boardmcp.transport.ws",
    "boardmcp.transport.http_session",
)
_UNLOADABLE = ("boardmcp.tools", "boardmcp.hw") + _COLD  # module names evict() may unload


def unload(name):
    """Forget module `name`: out of sys.modules and off its package, so that nothing holds it
    and its code leaves the heap once no object of it is left."""
    if name in sys.modules:
        _clear(name)
    dot = name.rfind(".")
    parent = sys.modules.get(name[:dot])
    if parent is not None and hasattr(parent, name[dot + 1 :]):
        delattr(parent, name[dot + 1 :])


def _clear(name):
    # Take `name` out of sys.modules with its slot cleared. MicroPython deletes a key from a
    # dict's table by marking its slot free, but leaves the value in it, where the GC still finds
    # it: an unloaded module, or one that failed to load half-way, stayed in the heap until an
    # insertion happened to reuse the slot (a 3.3 KB step measured after a MemoryError mid-import).
    try:
        sys.modules[name] = sys  # any value but the module's
    except MemoryError:  # no free slot: a failed import never took one
        return
    del sys.modules[name]


def _contents(uri, mime, value):
    if isinstance(value, str):
        item = {"uri": uri, "text": value}
        if mime:
            item["mimeType"] = mime
        return [item]
    return value
