"""Who may talk to the board: bearer token, and Host/Origin checks against DNS rebinding.

Transports call `Guard.check(field)` before reading anything MCP. It reads the request's header
fields as bytes, through `field(lower-case name) -> value or None`: no string per request.

    guard = Guard(token="s3cret", hosts=("boardmcp-1a2b.local",))
    guard.add_host("192.168.1.23")
    status, why = guard.check(headers.raw) or (200, None)
"""

import hashlib
import os

_LOCAL_HOSTS = (b"localhost", b"127.0.0.1", b"[::1]")


def _digest(key, value):
    # SHA-256 of key + value (bytes).
    h = hashlib.sha256(key)
    h.update(value)
    return h.digest()


def _hostname(hostport):
    # "host:port", "[v6]:port" or "host" -> lower-cased host
    hostport = hostport.lower()
    if hostport.startswith(b"["):
        end = hostport.find(b"]")
        return hostport[: end + 1] if end > 0 else hostport
    i = hostport.find(b":")
    return hostport if i < 0 else hostport[:i]


def _bearer(value):
    # Does an Authorization value use the Bearer scheme (whose name is case-insensitive)?
    return value.startswith(b"Bearer ") or value[:7].lower() == b"bearer "


def _known(hosts, hostport):
    # Is the host of "host[:port]" one of hosts (lower case)? Tried as sent first, which needs
    # no new string; other spellings are lower-cased. (The per-request functions here are small:
    # a frame of more than 11 words, locals plus expression stack, is heap allocated per call.)
    for h in hosts:
        if _is(hostport, h):
            return True
    return _hostname(hostport) in hosts


def _is(hostport, host):
    # "host" or "host:port"
    return hostport.startswith(host) and (len(hostport) == len(host) or hostport.startswith(b":", len(host)))


class Guard:
    """Bearer-token and Host/Origin policy for network transports."""

    def __init__(self, token=None, hosts=(), origins=()):
        # The token is kept only as a digest keyed with a secret drawn at boot, and a credential
        # is compared digest to digest. How long that comparison takes depends on digests no
        # client can compute, so it tells nothing about the token (the "double HMAC" check),
        # and it is one C hash: a constant-time loop over the token in Python took ten times
        # as long on the VM.
        self._key = os.urandom(16)
        self.token = _digest(self._key, b"Bearer " + token.encode()) if token else None
        self._hosts = set(_LOCAL_HOSTS)
        for h in hosts:
            self.add_host(h)
        self._origins = set([o.lower().rstrip("/").encode() for o in origins])

    def add_host(self, host):
        """Accept requests addressed to this host name or IP (e.g. once Wi-Fi has an address)."""
        if host:
            self._hosts.add(host.lower().encode())

    def check(self, field):
        """None when the request may proceed, else (HTTP status, reason) to refuse it with.
        `field(name)` takes a lower-case bytes name and gives the value as bytes, or None when
        the request has no such field (transport.http.Headers.raw, or a dict's get)."""
        host = field(b"host")
        if host is not None and not _known(self._hosts, host):
            return 403, "Host not allowed"
        origin = field(b"origin")
        if origin is not None and not self._origin_ok(origin):
            return 403, "Origin not allowed"
        if self.token is not None and not self._token_ok(field(b"authorization")):
            return 401, "A valid bearer token is required"
        return None

    def _origin_ok(self, origin):
        o = origin.lower().rstrip(b"/")
        i = o.find(b"://")
        return o in self._origins or (i >= 0 and _known(self._hosts, o[i + 3 :]))

    def _token_ok(self, got):
        # The scheme name is case-insensitive; the token is not.
        if got is None or not _bearer(got):
            return False
        if not got.startswith(b"Bearer "):
            got = b"Bearer " + got[7:]
        return _digest(self._key, got) == self.token
