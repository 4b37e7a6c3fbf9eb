"""Tools (and later resources and prompts) that the MCP server offers.

A tool is its published definition plus a handler `fn(args) -> result`. Handlers return
`structured(obj)` or `text(s)`, or raise ToolError with a message a model can act on.

    reg = Registry()
    reg.add_tool({"name": "ping_led", "description": "...", "inputSchema": {...}}, handler)
"""

import json
import sys

from . import schema


class ToolError(Exception):
    """A tool failed in a way the caller can act on; becomes a result with isError: true."""


def text(s):
    """A CallToolResult carrying one text block."""
    return {"content": [{"type": "text", "text": s}]}


def structured(obj):
    """A CallToolResult for a tool with an outputSchema: structuredContent plus its JSON as text."""
    return {"content": [{"type": "text", "text": json.dumps(obj)}], "structuredContent": obj}


def failure(message):
    """A CallToolResult reporting a tool failure (isError), as MCP asks for tool-level errors."""
    return {"content": [{"type": "text", "text": message}], "isError": True}


class Registry:
    """Tool definitions in publication order, and their handlers by name."""

    def __init__(self):
        self.tools = []  # definitions, as tools/list publishes them
        self._by_name = {}  # name -> (inputSchema, handler)

    def add_tool(self, definition, handler):
        """Register a tool. The definition is published as is; its inputSchema guards the handler."""
        name = definition["name"]
        if name in self._by_name:
            raise ValueError("duplicate tool: " + name)
        self.tools.append(definition)
        self._by_name[name] = (definition["inputSchema"], handler)

    def has_tool(self, name):
        """True when a tool of that name is registered."""
        return name in self._by_name

    def call_tool(self, name, args):
        """Validate args against the tool's inputSchema, run it, and return a CallToolResult.

        Bad arguments and failures inside the tool come back as isError results, so the
        caller (a model) sees what to fix. MemoryError propagates: the transport answers it.
        """
        input_schema, handler = self._by_name[name]
        err = schema.check(input_schema, args)
        if err:
            return failure("Invalid arguments for tool %s: %s" % (name, err))
        try:
            return handler(args)
        except ToolError as e:
            return failure("%s: %s" % (name, e))
        except MemoryError:
            raise
        except Exception as e:
            sys.print_exception(e)
            return failure("%s failed: %s: %s" % (name, type(e).__name__, e))
