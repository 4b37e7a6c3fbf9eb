"""Who may talk to the board: bearer token, and Host/Origin checks against DNS rebinding.

Transports call `Guard.check(headers)` before reading anything MCP.

    guard = Guard(token="s3cret", hosts=("boardmcp-1a2b.local",))
    guard.add_host("192.168.1.23")
    status, why = guard.check(headers) or (200, None)
"""

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def _same(a, b):
    # Constant-time comparison: the time taken must not reveal how much of a token matched.
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= ord(a[i]) ^ ord(b[i])
    return diff == 0


def _hostname(hostport):
    # "host:port", "[v6]:port" or "host" -> lower-cased host
    hostport = hostport.lower()
    if hostport.startswith("["):
        end = hostport.find("]")
        return hostport[: end + 1] if end > 0 else hostport
    i = hostport.find(":")
    return hostport if i < 0 else hostport[:i]


class Guard:
    """Bearer-token and Host/Origin policy for network transports."""

    def __init__(self, token=None, hosts=(), origins=()):
        self.token = token or None
        self._bearer = "bearer " + self.token if self.token else None
        self._hosts = set(_LOCAL_HOSTS)
        for h in hosts:
            self.add_host(h)
        self._origins = set([o.lower().rstrip("/") for o in origins])

    def add_host(self, host):
        """Accept requests addressed to this host name or IP (e.g. once Wi-Fi has an address)."""
        if host:
            self._hosts.add(host.lower())

    def check(self, headers):
        """None when the request may proceed, else (HTTP status, reason) to refuse it with."""
        host = headers.get("host")
        if host is not None and _hostname(host) not in self._hosts:
            return 403, "Host not allowed"
        origin = headers.get("origin")
        if origin is not None:
            o = origin.lower().rstrip("/")
            i = o.find("://")
            if o not in self._origins and (i < 0 or _hostname(o[i + 3 :]) not in self._hosts):
                return 403, "Origin not allowed"
        if self._bearer is not None:
            got = headers.get("authorization")
            # The scheme name is case-insensitive; the token is not.
            if got is None or len(got) < 7 or not _same(got[:7].lower() + got[7:], self._bearer):
                return 401, "A valid bearer token is required"
        return None
