"""Who may talk to the board: bearer token, and Host/Origin checks against DNS rebinding.

Transports call `Guard.check(headers)` before reading anything MCP.

    guard = Guard(token="s3cret", hosts=("boardmcp-1a2b.local",))
    guard.add_host("192.168.1.23")
    status, why = guard.check(headers) or (200, None)
"""

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _same(got, start, want):
    # Constant-time comparison of got[start:] (a str whose first `start` characters are ASCII)
    # with want (bytes): the time taken must not reveal how much of a token matched. Compared
    # as UTF-8 bytes, which index in O(1) where a str walks its UTF-8 from the start at every
    # index (on the VM, the loop over a 24-character token took several times as long on a str).
    got = got.encode()
    n = len(want)
    if len(got) - start != n:
        return False
    diff = 0
    for i in range(n):
        diff |= got[start + i] ^ want[i]
    return diff == 0


def _hostname(hostport):
    # "host:port", "[v6]:port" or "host" -> lower-cased host
    hostport = hostport.lower()
    if hostport.startswith("["):
        end = hostport.find("]")
        return hostport[: end + 1] if end > 0 else hostport
    i = hostport.find(":")
    return hostport if i < 0 else hostport[:i]


def _bearer(value):
    # Does an Authorization value use the Bearer scheme (whose name is case-insensitive)?
    return value.startswith("Bearer ") or value[:7].lower() == "bearer "


def _known(hosts, hostport):
    # Is the host of "host[:port]" one of hosts (lower case)? Tried as sent first, which needs
    # no new string; other spellings are lower-cased.
    for h in hosts:
        if hostport.startswith(h) and (len(hostport) == len(h) or hostport.startswith(":", len(h))):
            return True
    return _hostname(hostport) in hosts


class Guard:
    """Bearer-token and Host/Origin policy for network transports."""

    def __init__(self, token=None, hosts=(), origins=()):
        self.token = token.encode() if token else None  # bytes: what _same() compares with
        self._hosts = set(_LOCAL_HOSTS)
        for h in hosts:
            self.add_host(h)
        self._origins = set([o.lower().rstrip("/") for o in origins])

    def add_host(self, host):
        """Accept requests addressed to this host name or IP (e.g. once Wi-Fi has an address)."""
        if host:
            self._hosts.add(host.lower())

    def check(self, headers):
        """None when the request may proceed, else (HTTP status, reason) to refuse it with.
        `headers.get(name)` takes a lower-case bytes name and gives a str (transport.http.Headers)."""
        host = headers.get(b"host")
        if host is not None and not _known(self._hosts, host):
            return 403, "Host not allowed"
        origin = headers.get(b"origin")
        if origin is not None:
            o = origin.lower().rstrip("/")
            i = o.find("://")
            if o not in self._origins and (i < 0 or not _known(self._hosts, o[i + 3 :])):
                return 403, "Origin not allowed"
        if self.token is not None:
            got = headers.get(b"authorization")
            # The scheme name is case-insensitive; the token is not.
            if got is None or not _bearer(got) or not _same(got, 7, self.token):
                return 401, "A valid bearer token is required"
        return None
