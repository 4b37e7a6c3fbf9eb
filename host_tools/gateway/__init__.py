"""`boardmcp gateway`: one Streamable HTTP MCP endpoint for every board on an MQTT broker.

- `fleet.py`: the MCP-over-MQTT client side (presence, initialize, requests by JSON-RPC id);
- `server.py`: the MCP server on the host (tools namespaced by board, fan-out, list changes);
- `broker.py`: a private Mosquitto on loopback, for tests and the benchmark.
"""
