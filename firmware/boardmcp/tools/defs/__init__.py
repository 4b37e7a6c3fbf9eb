"""Published definitions, built at boot: `defs/<module>.py` defines what tools module `<module>`
serves (its `define(reg, profile)` runs once, then leaves the heap).

The schema pieces below are shared by every hardware tool's definition, so each costs the heap
only what is its own (a nested literal per tool would be built once per tool).
"""

READ_ONLY = {"readOnlyHint": True, "destructiveHint": False, "openWorldHint": False}
INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}


def obj(props):
    """An output object schema with these properties, all required."""
    return {"type": "object", "properties": props, "required": list(props)}
