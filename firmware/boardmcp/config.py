"""The board's two JSON files: `board.json` (the profile, what the hardware is) and
`config.json` (this installation: Wi-Fi, token, HTTP port; optionally `mqtt`: broker, port,
username, password, tls, server_name, server_id, keepalive, see transport/mqtt.py). Both sit at
the filesystem root.

    profile, cfg = config.load()
    config.update(wifi={"ssid": "lab", "password": "..."}, token="...")
"""

import json
import os

PROFILE_FILE = "board.json"
CONFIG_FILE = "config.json"


def _read(path, required):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        if required:
            raise RuntimeError(path + " is missing: deploy the firmware with `boardmcp deploy`")
        return {}
    except ValueError:
        raise RuntimeError(path + " is not valid JSON")


def profile():
    """The board profile, read afresh: callers keep it only as long as they need it."""
    return _read(PROFILE_FILE, True)


class Lazy:
    """The profile as register() sees it: board.json is read on first use only, so a tools
    module loaded again that keeps what it needs (registry.derived) costs no parse (~3-7 KB of
    heap, needed when the heap is shortest)."""

    def __init__(self):
        self._profile = None

    def _read(self):
        if self._profile is None:
            self._profile = profile()
        return self._profile

    def __getitem__(self, key):
        return self._read()[key]

    def get(self, key, default=None):
        """As dict.get."""
        return self._read().get(key, default)


def load():
    """Return (profile, config) with defaults filled in for anything config.json leaves out."""
    profile = _read(PROFILE_FILE, True)
    cfg = _read(CONFIG_FILE, False)
    http = cfg.get("http") or {}
    cfg["http"] = {
        "host": http.get("host", "0.0.0.0"),
        "port": http.get("port", profile.get("http_port", 80)),
        "allowed_origins": http.get("allowed_origins", ()),
        # A whole request must arrive within the first; a kept-alive connection may idle this long.
        "request_timeout_ms": http.get("request_timeout_ms", 10000),
        "idle_timeout_ms": http.get("idle_timeout_ms", 30000),
        # Per client address: `burst` requests at once, then `per_s` a second (null: no limit).
        # A chip serves on the order of 100 small requests a second: one client gets half.
        "rate": http.get("rate", {"per_s": 50, "burst": 100}),
    }
    cfg.setdefault("wifi", {})
    cfg.setdefault("token", None)
    return profile, cfg


def update(**fields):
    """Set top-level fields of config.json, keeping the rest; the file is replaced atomically."""
    cfg = _read(CONFIG_FILE, False)
    cfg.update(fields)
    tmp = CONFIG_FILE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    os.rename(tmp, CONFIG_FILE)
