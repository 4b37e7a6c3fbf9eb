"""Run the real command-line tools (esptool, mpremote) with their output shown as progress."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

from host_tools.device import Progress

_LINE_END = re.compile(rb"[\r\n]+")


def run_tool(argv: Sequence[str], progress: Progress, label: str) -> tuple[int, str]:
    """Run `argv`, passing each output line to `progress` as `  <label>: <line>`; return the exit
    status and the whole output (for diagnosing a failure)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    output = bytearray()
    pending = b""
    while chunk := proc.stdout.read1(4096):
        output += chunk
        *lines, pending = _LINE_END.split(pending + chunk)
        for line in lines:
            if text := line.decode("utf-8", "replace").strip():
                progress(f"  {label}: {text}")
    if text := pending.decode("utf-8", "replace").strip():
        progress(f"  {label}: {text}")
    return proc.wait(), output.decode("utf-8", "replace")
