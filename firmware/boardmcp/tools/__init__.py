"""MCP tools: each module binds one kind of hardware to the registry with `register()`.

A module's published definitions (titles, descriptions, output schemas, annotations) may live
apart, in `defs/<module>.py`: that code runs once, at boot, and a request that loads the module
again loads only what serves it (see registry.py).
"""
