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
    # Split by kind of value, as on every per-request path: a frame of more than 11 words
    # (locals plus expression stack) is heap allocated on every call, and this runs on every
    # tools/call, once per argument.
    err = _check_any(schema, value, path)
    if err:
        return err
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _check_number(schema, value, path)
    if isinstance(value, str):
        return _check_length(schema, len(value), path, _CHARACTERS)
    if isinstance(value, list):
        return _check_list(schema, value, path)
    if isinstance(value, dict):
        err = _missing(schema, value, path)
        # A loop over a dict takes 4 words of the frame: only an object with members gets one.
        return err if err or not value else _check_members(schema, value, path)
    return None


def _check_any(schema, value, path):
    # type, enum, const
    t = schema.get("type")
    if t is not None and not _types_ok(t, value):
        return "%s must be of type %s" % (_where(path), " or ".join(t) if isinstance(t, list) else t)
    if "enum" in schema and value not in schema["enum"]:
        return "%s must be one of: %s" % (_where(path), ", ".join([str(v) for v in schema["enum"]]))
    if "const" in schema and value != schema["const"]:
        return "%s must be %s" % (_where(path), schema["const"])
    return None


def _check_number(schema, value, path):
    bound = schema.get("minimum")
    if bound is not None and value < bound:
        return "%s must be >= %s" % (_where(path), bound)
    bound = schema.get("maximum")
    if bound is not None and value > bound:
        return "%s must be <= %s" % (_where(path), bound)
    bound = schema.get("exclusiveMinimum")
    if bound is not None and value <= bound:
        return "%s must be > %s" % (_where(path), bound)
    bound = schema.get("exclusiveMaximum")
    if bound is not None and value >= bound:
        return "%s must be < %s" % (_where(path), bound)
    return None


# A length's keywords and messages: a string's, an array's.
_CHARACTERS = ("minLength", "maxLength", "%s must be at least %d characters", "%s must be at most %d characters")
_ITEMS = ("minItems", "maxItems", "%s must have at least %d items", "%s must have at most %d items")


def _check_length(schema, n, path, words):
    bound = schema.get(words[0])
    if bound is not None and n < bound:
        return words[2] % (_where(path), bound)
    bound = schema.get(words[1])
    if bound is not None and n > bound:
        return words[3] % (_where(path), bound)
    return None


def _check_list(schema, value, path):
    err = _check_length(schema, len(value), path, _ITEMS)
    items = schema.get("items")
    if err or not isinstance(items, dict):
        return err
    i = 0
    while i < len(value) and not err:
        err = check(items, value[i], "%s[%d]" % (_where(path), i))
        i += 1
    return err


def _missing(schema, value, path):
    # The first required member value lacks, as a message; None when it has them all.
    required = schema.get("required", ())
    i = 0
    while i < len(required):
        if required[i] not in value:
            return "%s is required" % _join(path, required[i])
        i += 1
    return None


def _check_members(schema, value, path):
    for name in value:
        err = _check_member(schema, value, name, path)
        if err:
            return err
    return None


def _check_member(schema, value, name, path):
    # One member against its property schema, else additionalProperties.
    props = schema.get("properties") or _NONE
    sub = props.get(name)
    if sub is None:
        sub = schema.get("additionalProperties", True)
        if sub is False:
            return "%s is not an accepted argument (accepted: %s)" % (_join(path, name), ", ".join(props) or "none")
        if not isinstance(sub, dict):
            return None
    return check(sub, value[name], _join(path, name))


def _join(path, name):
    return path + "." + name if path else name
