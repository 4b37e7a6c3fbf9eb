"""MCP prompts (list, get) and argument completion. Loaded on first use, like resources.py.
Each function is `fn(server, ctx, params) -> result`.
"""

from .jsonrpc import INVALID_PARAMS, Error


def list_prompts(srv, ctx, params):
    return srv.cached(srv.page("prompts", srv.registry.prompts, params, "p"), ctx)


def get(srv, ctx, params):
    name = params.get("name")
    if not isinstance(name, str):
        raise Error(INVALID_PARAMS, "prompts/get needs params.name (string)")
    entry = srv.registry.prompt(name)
    if entry is None:
        raise Error(INVALID_PARAMS, "Unknown prompt: " + name)
    definition, getter = entry
    args = params.get("arguments")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise Error(INVALID_PARAMS, "prompts/get params.arguments must be an object of strings")
    for key in args:
        if not isinstance(args[key], str):
            raise Error(INVALID_PARAMS, "Prompt argument %s must be a string" % key)
    for arg in definition.get("arguments", ()):
        if arg.get("required") and arg["name"] not in args:
            raise Error(INVALID_PARAMS, "Prompt %s needs argument %s" % (name, arg["name"]))
    ctx.target = name
    return getter(args, ctx)  # an async getter's coroutine is awaited by the server


def complete(srv, ctx, params):
    ref = params.get("ref")
    argument = params.get("argument")
    if not isinstance(ref, dict) or not isinstance(argument, dict):
        raise Error(INVALID_PARAMS, "completion/complete needs params.ref and params.argument (objects)")
    name = argument.get("name")
    value = argument.get("value", "")
    if not isinstance(name, str) or not isinstance(value, str):
        raise Error(INVALID_PARAMS, "completion/complete argument.name and argument.value must be strings")
    try:
        complete = srv.registry.completer(ref)
    except KeyError:
        raise Error(INVALID_PARAMS, "Nothing to complete for this ref")
    context = params.get("context")
    known = context.get("arguments") if isinstance(context, dict) else None
    values = complete(name, value, known if isinstance(known, dict) else {}) if complete else []
    return {"completion": {"values": values[:100], "total": len(values), "hasMore": len(values) > 100}}
