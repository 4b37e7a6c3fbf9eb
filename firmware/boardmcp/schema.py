"""A small JSON Schema validator for tool arguments.

Covers what tool input schemas here use: type, properties, required, additionalProperties,
enum, const, minimum/maximum (and exclusive), minLength/maxLength, items, minItems/maxItems.
Unknown keywords are ignored (they are still published verbatim in tools/list).

    err = schema.check({"type": "integer", "minimum": 0}, -1)   # -> "must be >= 0"
"""

_NONE = {}  # no properties (never written to)


def _type_ok(name, value):
    if name == "string":
        return isinstance(value, str)
    if name == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value % 1 == 0)  # inf, nan: False
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "null":
        return value is None
    return True


def _types_ok(t, value):
    # `type` is one name or a list of them.
    if isinstance(t, list):
        for name in t:
            if _type_ok(name, value):
                return True
        return False
    return _type_ok(t, value)


def _where(path):
    return path if path else "arguments"


def check(schema, value, path=""):
    """Return None when value conforms to schema, else a message naming the offending field."""
    t = schema.get("type")
    if t is not None and not _types_ok(t, value):
        return "%s must be of type %s" % (_where(path), " or ".join(t) if isinstance(t, list) else t)
    if "enum" in schema and value not in schema["enum"]:
        return "%s must be one of: %s" % (_where(path), ", ".join([str(v) for v in schema["enum"]]))
    if "const" in schema and value != schema["const"]:
        return "%s must be %s" % (_where(path), schema["const"])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo = schema.get("minimum")
        if lo is not None and value < lo:
            return "%s must be >= %s" % (_where(path), lo)
        hi = schema.get("maximum")
        if hi is not None and value > hi:
            return "%s must be <= %s" % (_where(path), hi)
        lo = schema.get("exclusiveMinimum")
        if lo is not None and value <= lo:
            return "%s must be > %s" % (_where(path), lo)
        hi = schema.get("exclusiveMaximum")
        if hi is not None and value >= hi:
            return "%s must be < %s" % (_where(path), hi)
    elif isinstance(value, str):
        n = schema.get("minLength")
        if n is not None and len(value) < n:
            return "%s must be at least %d characters" % (_where(path), n)
        n = schema.get("maxLength")
        if n is not None and len(value) > n:
            return "%s must be at most %d characters" % (_where(path), n)
    elif isinstance(value, list):
        n = schema.get("minItems")
        if n is not None and len(value) < n:
            return "%s must have at least %d items" % (_where(path), n)
        n = schema.get("maxItems")
        if n is not None and len(value) > n:
            return "%s must have at most %d items" % (_where(path), n)
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                err = check(items, item, "%s[%d]" % (_where(path), i))
                if err:
                    return err
    elif isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                return "%s is required" % (path + "." + name if path else name)
        props = schema.get("properties") or _NONE
        extra = schema.get("additionalProperties", True)
        for name in value:
            sub = props.get(name)
            where = path + "." + name if path else name
            if sub is None:
                if extra is False:
                    return "%s is not an accepted argument (accepted: %s)" % (
                        where,
                        ", ".join(props) or "none",
                    )
                if isinstance(extra, dict):
                    sub = extra
                else:
                    continue
            err = check(sub, value[name], where)
            if err:
                return err
    return None
