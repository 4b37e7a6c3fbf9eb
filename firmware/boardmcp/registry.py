"""What the MCP server offers: tools, resources, resource templates and prompts.

Each entry is its published definition plus the function that serves it:

    reg = Registry()
    reg.add_tool({"name": "led", "description": "...", "inputSchema": {...}}, set_led)
    reg.add_resource({"uri": "sensor://bme280", "name": "bme280", "mimeType": "application/json"}, read)
    reg.add_template({"uriTemplate": "pin://{n}", "name": "pin"}, read_pin)
    reg.add_prompt({"name": "diagnose", "description": "...", "arguments": [...]}, get)

- Tool handlers are `fn(args, ctx) -> CallToolResult`, or an `async def` of the same shape. `ctx`
  is the request's context (server.Context: progress, logging, asking the client for input).
  Return `structured(obj)` or `text(s)`, or raise ToolError with a message a model can act on.
- Resource readers are `fn(uri) -> str` (one text content, of the definition's mimeType) or
  a list of content dicts. Template readers are `fn(uri, variables)`, and may raise NotFound.
- Prompt getters are `fn(args, ctx) -> {"messages": [...]}` (args are strings, already checked
  against the declared arguments).
- `complete` (prompts and templates): `fn(argument_name, value, context_args) -> [str]`.
"""

import json
import sys

from . import schema
from .jsonrpc import Error


class ToolError(Exception):
    """A tool failed in a way the caller can act on; becomes a result with isError: true."""


class NotFound(Exception):
    """No resource at this URI (a template matched its shape, but nothing is there)."""


def text(s):
    """A CallToolResult carrying one text block."""
    return {"content": [{"type": "text", "text": s}]}


def structured(obj):
    """A CallToolResult for a tool with an outputSchema: structuredContent plus its JSON as text."""
    return {"content": [{"type": "text", "text": json.dumps(obj)}], "structuredContent": obj}


def failure(message):
    """A CallToolResult reporting a tool failure (isError), as MCP asks for tool-level errors."""
    return {"content": [{"type": "text", "text": message}], "isError": True}


def _is_coroutine(obj):
    # `async def` functions return generator objects on MicroPython (coroutines on CPython).
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


class Registry:
    """Definitions in publication order, and what serves each of them."""

    def __init__(self):
        self.tools = []  # definitions, as tools/list publishes them
        self.resources = []
        self.templates = []
        self.prompts = []
        self.changing = set()  # "tools", "prompts", "resources": lists that change at run time
        self._tools = {}  # name -> (inputSchema, handler)
        self._resources = {}  # uri -> (definition, reader)
        self._templates = []  # (definition, reader, complete), in order
        self._prompts = {}  # name -> (definition, getter, complete)

    # -- tools ------------------------------------------------------------------------------

    def add_tool(self, definition, handler):
        """Register a tool. The definition is published as is; its inputSchema guards the handler."""
        name = definition["name"]
        if name in self._tools:
            raise ValueError("duplicate tool: " + name)
        self.tools.append(definition)
        self._tools[name] = (definition["inputSchema"], handler)

    def remove_tool(self, name):
        """Withdraw a tool (announce it with server.list_changed("tools"))."""
        del self._tools[name]
        self.tools = [t for t in self.tools if t["name"] != name]

    def has_tool(self, name):
        """True when a tool of that name is registered."""
        return name in self._tools

    def tool_schema(self, name):
        """The inputSchema of a registered tool."""
        return self._tools[name][0]

    async def call_tool(self, name, args, ctx):
        """Validate args against the tool's inputSchema, run it, and return a CallToolResult.

        Bad arguments and failures inside the tool come back as isError results, so the
        caller (a model) sees what to fix. MemoryError, protocol errors (jsonrpc.Error) and
        the server's control flow (needing input, cancellation) propagate.
        """
        input_schema, handler = self._tools[name]
        err = schema.check(input_schema, args)
        if err:
            return failure("Invalid arguments for tool %s: %s" % (name, err))
        try:
            result = handler(args, ctx)
            if _is_coroutine(result):
                result = await result
            return result
        except ToolError as e:
            return failure("%s: %s" % (name, e))
        except Exception as e:
            if isinstance(e, (Error, MemoryError)) or getattr(e, "passthrough", False):
                raise
            sys.print_exception(e)
            return failure("%s failed: %s: %s" % (name, type(e).__name__, e))

    # -- resources --------------------------------------------------------------------------

    def add_resource(self, definition, reader):
        """Register a resource at a fixed URI."""
        uri = definition["uri"]
        if uri in self._resources:
            raise ValueError("duplicate resource: " + uri)
        self.resources.append(definition)
        self._resources[uri] = (definition, reader)

    def add_template(self, definition, reader, complete=None):
        """Register a resource template (`uriTemplate`, level-1 `{var}` expressions)."""
        self.templates.append(definition)
        self._templates.append((definition, reader, complete))

    def has_resource(self, uri):
        """True when the URI names a fixed resource (those are the subscribable ones)."""
        return uri in self._resources

    def read_resource(self, uri):
        """Return the `contents` list for a URI; raise NotFound when nothing is there."""
        entry = self._resources.get(uri)
        if entry is not None:
            definition, reader = entry
            return _contents(uri, definition, reader(uri))
        for definition, reader, _ in self._templates:
            variables = match_template(definition["uriTemplate"], uri)
            if variables is not None:
                return _contents(uri, definition, reader(uri, variables))
        raise NotFound(uri)

    # -- prompts ----------------------------------------------------------------------------

    def add_prompt(self, definition, getter, complete=None):
        """Register a prompt; `arguments` in the definition declare what get() accepts."""
        name = definition["name"]
        if name in self._prompts:
            raise ValueError("duplicate prompt: " + name)
        self.prompts.append(definition)
        self._prompts[name] = (definition, getter, complete)

    def remove_prompt(self, name):
        """Withdraw a prompt (announce it with server.list_changed("prompts"))."""
        del self._prompts[name]
        self.prompts = [p for p in self.prompts if p["name"] != name]

    def prompt(self, name):
        """(definition, getter) for a prompt name, or None."""
        entry = self._prompts.get(name)
        return None if entry is None else entry[:2]

    # -- completion -------------------------------------------------------------------------

    def completer(self, ref):
        """The completion function for a `ref/prompt` or `ref/resource` reference, or None.
        Raises KeyError when the reference names nothing registered."""
        kind = ref.get("type")
        if kind == "ref/prompt":
            return self._prompts[ref.get("name")][2]
        if kind == "ref/resource":
            uri = ref.get("uri")
            for definition, _, complete in self._templates:
                if definition["uriTemplate"] == uri:
                    return complete
            if uri in self._resources:
                return None
        raise KeyError(ref)


def _contents(uri, definition, value):
    if isinstance(value, str):
        item = {"uri": uri, "text": value}
        mime = definition.get("mimeType")
        if mime:
            item["mimeType"] = mime
        return [item]
    return value
