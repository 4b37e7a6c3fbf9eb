"""The comparison server for `boardmcp bench`: FastMCP on CPython, stateless JSON mode, with the
board's tools (system_info, led, a sensor read), as a Raspberry Pi user would write it.

    python -m host_tools.bench.fastmcp_server --port 8000 --token secret
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Annotated, Any, Literal

import uvicorn
from fastmcp import FastMCP
from fastmcp.server.auth.providers.jwt import StaticTokenVerifier
from pydantic import Field

_BOOT = time.monotonic()
_led = {"on": False}
# The sensor-like read: a slowly drifting temperature, as the emulated board's sensors drift.
_SENSOR_BASE_C = 22.5


def build(token: str | None) -> FastMCP:
    """The FastMCP server with the same three tools the board offers."""
    auth = StaticTokenVerifier({token: {"client_id": "bench", "scopes": []}}) if token else None
    mcp = FastMCP("fastmcp-bench", auth=auth)

    @mcp.tool(annotations={"readOnlyHint": True})
    def system_info() -> dict[str, Any]:
        """Host, Python and memory facts, and the uptime."""
        with open("/proc/meminfo") as f:
            mem = dict(line.split(":", 1) for line in f.read().splitlines()[:3])
        return {
            "machine": platform.machine(),
            "python": sys.version.split()[0],
            "pid": os.getpid(),
            "mem_free_kb": int(mem["MemFree"].split()[0]),
            "mem_total_kb": int(mem["MemTotal"].split()[0]),
            "uptime_s": round(time.monotonic() - _BOOT, 3),
        }

    @mcp.tool(annotations={"destructiveHint": False})
    def led(state: Literal["on", "off", "toggle"]) -> dict[str, bool]:
        """Switch the LED on, off, or toggle it."""
        _led["on"] = not _led["on"] if state == "toggle" else state == "on"
        return {"on": _led["on"]}

    @mcp.tool(annotations={"readOnlyHint": True})
    def read_sensor(
        unit: Annotated[Literal["C", "F"], Field(description="temperature unit")] = "C",
    ) -> dict[str, float | str]:
        """Read the temperature sensor."""
        celsius = _SENSOR_BASE_C + 0.5 * ((time.monotonic() - _BOOT) % 10) / 10
        return {"temperature": round(celsius if unit == "C" else celsius * 9 / 5 + 32, 2), "unit": unit}

    return mcp


def main() -> None:
    """Serve on 127.0.0.1:<port>/mcp until terminated."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    app = build(args.token).http_app(path="/mcp", stateless_http=True, json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
