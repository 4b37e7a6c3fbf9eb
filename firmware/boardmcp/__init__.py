"""boardmcp: an MCP server for ESP32 boards running MicroPython."""

NAME = "boardmcp"
VERSION = "0.1.0"
