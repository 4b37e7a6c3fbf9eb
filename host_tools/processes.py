"""Child processes the host tools start and stop (the gateway, a test broker, the FastMCP server):
wait for one to listen on a loopback port, and stop one politely, then firmly."""

from __future__ import annotations

import socket
import subprocess
import time


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> str | None:
    """Wait until 127.0.0.1:`port` accepts connections: None then, else why not (the process
    exited, or the time ran out)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            return f"exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return None
        except OSError:
            if time.monotonic() > deadline:
                return f"did not listen on {port} within {timeout:g} s"
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, and SIGKILL if it has not exited after `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
