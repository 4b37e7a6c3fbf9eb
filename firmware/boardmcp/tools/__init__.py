"""MCP tools: each module binds one kind of hardware to the registry with `register()`.

The schema pieces below are shared by every hardware tool, so each definition costs the heap only
what is its own (a nested literal per tool would be built, and kept, once per tool).
"""

READ_ONLY = {"readOnlyHint": True, "destructiveHint": False, "openWorldHint": False}
INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}


def obj(props):
    """An output object schema with these properties, all required."""
    return {"type": "object", "properties": props, "required": list(props)}


def tool(name, title, description, args, output, annotations=READ_ONLY, required=None):
    """A tool definition: a closed input object of `args` (`required` ones listed), `output` schema."""
    schema = {"type": "object", "properties": args, "additionalProperties": False}
    if required:
        schema["required"] = required
    return {
        "name": name,
        "title": title,
        "description": description,
        "inputSchema": schema,
        "outputSchema": output,
        "annotations": annotations,
    }
