"""Announce the board on the LAN as an MCP server: mDNS (RFC 6762) with DNS-SD (RFC 6763).

The esp32 port's own mDNS answers `<hostname>.local` but has no Python API for services, so
this small responder answers for `_mcp._tcp.local`: PTR -> `<hostname>._mcp._tcp.local`, with
SRV (port, host), TXT (path, auth) and A records. Everything it can say is built once, at start.

    mdns.start("boardmcp-1a2b", "192.168.1.23", 80, "bearer")  # a task on the running loop

Two sockets: one bound to 0.0.0.0:5353 and joined to the group on the board's address receives
queries; one bound to (address, 5353) sends, which pins multicast to that interface (on a host
with several, e.g. the emulator's loopback, the default route would pick another).
"""

import asyncio
import socket

from micropython import const

GROUP = "224.0.0.251"
PORT = const(5353)
SERVICE = "_mcp._tcp.local"
_META = "_services._dns-sd._udp.local"
_TTL = const(120)
_A = const(1)
_PTR = const(12)
_TXT = const(16)
_SRV = const(33)
_ANY = const(255)
_IN = const(1)
_FLUSH = const(0x8000)  # cache-flush bit: the record is this board's alone
_MAX_PACKET = const(512)


def _name(name):
    out = bytearray()
    for label in name.split("."):
        out.append(len(label))
        out.extend(label.encode())
    out.append(0)
    return bytes(out)


def _record(name, rtype, unique, data):
    cls = _IN | (_FLUSH if unique else 0)
    return (
        _name(name)
        + bytes((rtype >> 8, rtype & 0xFF, cls >> 8, cls & 0xFF, 0, 0, _TTL >> 8, _TTL & 0xFF))
        + bytes((len(data) >> 8, len(data) & 0xFF))
        + data
    )


def _read_name(pkt, i):
    # (lower-case dotted name, index after it); follows compression pointers.
    labels = []
    end = -1
    for _ in range(32):  # bounds pointer loops
        n = pkt[i]
        if n == 0:
            return ".".join(labels).lower(), (i + 1 if end < 0 else end)
        if n & 0xC0 == 0xC0:
            if end < 0:
                end = i + 2
            i = ((n & 0x3F) << 8) | pkt[i + 1]
            continue
        labels.append(bytes(pkt[i + 1 : i + 1 + n]).decode())
        i += 1 + n
    raise ValueError("name too long")


class Responder:
    """Answers mDNS queries for one board's `_mcp._tcp` service."""

    def __init__(self, host, ip, port, auth):
        target = host + ".local"
        self.instance = host + "." + SERVICE
        txt = bytearray()
        for kv in ("path=/mcp", "auth=" + auth):
            txt.append(len(kv))
            txt.extend(kv.encode())
        self._ptr = _record(SERVICE, _PTR, False, _name(self.instance))
        self._srv = _record(self.instance, _SRV, True, bytes((0, 0, 0, 0, port >> 8, port & 0xFF)) + _name(target))
        self._txt = _record(self.instance, _TXT, True, bytes(txt))
        self._a = _record(target, _A, True, bytes(int(b) for b in ip.split(".")))
        self._meta = _record(_META, _PTR, False, _name(SERVICE))
        self._names = (SERVICE, self.instance.lower(), target.lower(), _META)
        self._ip = ip
        self._rx = None
        self._tx = None

    def announcement(self):
        """The unsolicited response sent at start: every record, all as answers."""
        return _packet((self._ptr, self._srv, self._txt, self._a), ())

    def answer(self, pkt):
        """The response to one received packet, or None when it asks nothing of this board."""
        if len(pkt) < 12 or pkt[2] & 0x80:  # too short, or a response (QR set)
            return None
        answers = []
        extra = []
        i = 12
        try:
            for _ in range((pkt[4] << 8) | pkt[5]):
                name, i = _read_name(pkt, i)
                qtype = (pkt[i] << 8) | pkt[i + 1]
                i += 4
                if name not in self._names:
                    continue
                if name == SERVICE and qtype in (_PTR, _ANY):
                    _add(answers, self._ptr)
                    _add(extra, self._srv)
                    _add(extra, self._txt)
                    _add(extra, self._a)
                elif name == self._names[1]:
                    if qtype in (_SRV, _ANY):
                        _add(answers, self._srv)
                    if qtype in (_TXT, _ANY):
                        _add(answers, self._txt)
                    _add(extra, self._a)
                elif name == self._names[2] and qtype in (_A, _ANY):
                    _add(answers, self._a)
                elif name == _META and qtype in (_PTR, _ANY):
                    _add(answers, self._meta)
        except (IndexError, ValueError, UnicodeError):
            return None  # malformed: ignore it, as every responder must
        if not answers:
            return None
        return _packet(answers, [r for r in extra if r not in answers])

    def open(self):
        """Bind the sockets; raises OSError when port 5353 is not available to Python."""
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for s, host in ((rx, "0.0.0.0"), (tx, self._ip)):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(socket.getaddrinfo(host, PORT)[0][-1])
            mreq = bytes(int(b) for b in (GROUP + "." + self._ip).split("."))
            rx.setsockopt(getattr(socket, "IPPROTO_IP", 0), socket.IP_ADD_MEMBERSHIP, mreq)
        except OSError:
            rx.close()
            tx.close()
            raise
        self._rx = rx
        self._tx = tx

    async def run(self):
        """Announce twice, a second apart (RFC 6762 §8.3), then answer queries until cancelled."""
        group = socket.getaddrinfo(GROUP, PORT)[0][-1]
        tx = self._tx
        rx = asyncio.StreamReader(self._rx)
        buf = bytearray(_MAX_PACKET)
        try:
            tx.sendto(self.announcement(), group)
            await asyncio.sleep(1)
            tx.sendto(self.announcement(), group)
            while True:
                n = await rx.readinto(buf)
                reply = self.answer(memoryview(buf)[:n]) if n else None
                if reply is not None:
                    tx.sendto(reply, group)
        except OSError as e:
            print("mdns: stopped (%s)" % e)
        finally:
            self._rx.close()
            tx.close()


def _add(records, rec):
    if rec not in records:
        records.append(rec)


def _packet(answers, extra):
    head = bytes((0, 0, 0x84, 0, 0, 0, 0, len(answers), 0, 0, 0, len(extra)))
    return head + b"".join(answers) + b"".join(extra)


def start(host, ip, port, auth):
    """Start announcing on the running event loop; returns the Responder, or None if 5353 is taken."""
    responder = Responder(host, ip, port, auth)
    try:
        responder.open()
    except OSError as e:
        # On a stock esp32 build the IDF responder may hold 5353: <hostname>.local still resolves.
        print("mdns: %s not announced (port 5353: %s); %s.local still resolves" % (SERVICE, e, host))
        return None
    asyncio.create_task(responder.run())
    print("mdns: announcing %s" % responder.instance)
    return responder
