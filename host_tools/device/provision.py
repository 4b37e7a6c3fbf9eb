"""Give a board its Wi-Fi credentials and a fresh bearer token, over the serial port.

    result = provision(profile, "/dev/ttyACM0", "home", password, progress=print)
    result.hostname, result.token

The host generates the token. Credentials and token travel in a file (mode 0600, deleted at once)
that mpremote copies to the board, where the firmware's own `config.update` merges it into
config.json: the password is on no command line and in no output. The token, the board's
hostname and (once it serves) its URL are kept for MCP clients in the boards file:
$XDG_CONFIG_HOME/boardmcp/boards.json (default ~/.config/boardmcp/boards.json), mode 0600.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host_tools.device import DeviceError, Progress
from host_tools.device.deploy import run_mpremote
from host_tools.profiles import Profile

_UPLOAD = ".provision.json"
# Runs on the board: merge the uploaded fields into config.json, delete the upload, print the id.
_APPLY = f"""
import json, os, machine
try:
    from boardmcp import config
except ImportError:
    os.remove({_UPLOAD!r})
    raise SystemExit('boardmcp-missing')
with open({_UPLOAD!r}) as f:
    fields = json.load(f)
os.remove({_UPLOAD!r})
config.update(**fields)
u = machine.unique_id()
print('board-id=%02x%02x' % (u[-2], u[-1]))
"""
_BOARD_ID = re.compile(r"board-id=([0-9a-f]{4})")


def boards_file() -> Path:
    """Where the host keeps each provisioned board's token and URL."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "boardmcp" / "boards.json"


def saved_boards() -> dict[str, dict[str, Any]]:
    """hostname -> {"token", "board", "port", "url"} for every board provisioned from this host."""
    try:
        data = json.loads(boards_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_board(hostname: str, **fields: str) -> None:
    """Record (or update) what the host knows about `hostname`; the file stays private (0600)."""
    boards = saved_boards()
    boards.setdefault(hostname, {}).update(fields)
    path = boards_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(boards, f, indent=2)
    tmp.replace(path)


@dataclass(frozen=True)
class Provisioned:
    """A provisioned board: its hostname and the token MCP clients must send."""

    hostname: str
    token: str


def check_credentials(ssid: str, password: str) -> None:
    """Refuse what no access point accepts, before touching the board."""
    if not 1 <= len(ssid.encode()) <= 32:
        raise DeviceError("the Wi-Fi network name must be 1 to 32 bytes", "check --ssid")
    if password and not 8 <= len(password) <= 63:
        raise DeviceError(
            "a WPA password has 8 to 63 characters", "check the password (leave it empty for an open network)"
        )


def provision(profile: Profile, port: str, ssid: str, password: str, progress: Progress) -> Provisioned:
    """Write Wi-Fi credentials and a new token to the board's config.json; keep the token here."""
    check_credentials(ssid, password)
    token = secrets.token_urlsafe(24)
    fd, name = tempfile.mkstemp(prefix="boardmcp-", suffix=".json")  # created 0600
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"wifi": {"ssid": ssid, "password": password}, "token": token}, f)
        progress(f"writing Wi-Fi network {ssid!r} and a new bearer token to the board on {port} (mpremote)")
        output = run_mpremote(
            port, ["fs", "cp", name, ":" + _UPLOAD, "+", "exec", _APPLY], progress, "writing config.json"
        )
    except DeviceError as exc:
        if "boardmcp-missing" in exc.what:
            raise DeviceError(
                "the boardmcp firmware is not on the board", f"deploy it first: boardmcp deploy --port {port}"
            ) from None
        raise
    finally:
        os.unlink(name)
    m = _BOARD_ID.search(output)
    if m is None:
        raise DeviceError("the board did not report its id after writing config.json", "retry the provisioning")
    hostname = profile.hostname_for(m.group(1))
    save_board(hostname, token=token, board=profile.name, port=port)
    progress(f"saved the token for {hostname} in {boards_file()}")
    return Provisioned(hostname, token)
