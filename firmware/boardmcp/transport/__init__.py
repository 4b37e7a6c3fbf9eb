"""Transports move bytes between clients and the MCP server; they know no MCP methods."""
