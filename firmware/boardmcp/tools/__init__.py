"""MCP tools: each module binds one kind of hardware to the registry with `register()`."""
