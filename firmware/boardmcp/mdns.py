"""Announce the board on the LAN as an MCP server: mDNS (RFC 6762) with DNS-SD (RFC 6763).

The esp32 port's own mDNS answers `<hostname>.local` but has no Python API for services, so
this small responder answers for `_mcp._tcp.local`: PTR -> `<hostname>._mcp._tcp.local`, with
SRV (port, host), TXT (path, auth) and A records. Everything it can say is built once, at start.

    mdns.start("boardmcp-1a2b", "192.168.1.23", 80, "bearer")  # a task on the running loop

Two sockets: one bound to 0.0.0.0:5353 and joined to the group on the board's address receives
queries; one bound to (address, 5353) sends.
"""

import asyncio
import socket

from micropython import const

GROUP = "224.0.0.251"
PORT = const(5353)
SERVICE = "_mcp._tcp.local"
_TTL = const(120)
_WANTED = (1, 12, 16, 33, 255)  # A, PTR, TXT, SRV, ANY
_MAX_PACKET = const(512)


def _name(name):
    out = bytearray()
    for label in name.split("."):
        out.append(len(label))
        out.extend(label.encode())
    out.append(0)
    return out


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


def response(host, ip, port, auth):
    """The one response this board sends, to every question it answers and unasked at start:
    PTR, SRV, TXT and A records, all as answers (a querier caches what it did not ask for)."""
    instance = host + "." + SERVICE
    target = _name(host + ".local")
    txt = bytearray()
    for kv in ("path=/mcp", "auth=" + auth):
        txt.append(len(kv))
        txt.extend(kv.encode())
    out = bytearray(b"\0\0\x84\0\0\0\0\x04\0\0\0\0")  # a response with 4 answers
    for owner, rtype, data in (
        (SERVICE, 12, _name(instance)),
        (instance, 33, bytes((0, 0, 0, 0, port >> 8, port & 0xFF)) + target),
        (instance, 16, txt),
        (host + ".local", 1, bytes([int(b) for b in ip.split(".")])),
    ):
        out.extend(_name(owner))
        # type, class IN (with the cache-flush bit on the records only this board owns), TTL, length
        out.extend(bytes((0, rtype, 0 if rtype == 12 else 0x80, 1, 0, 0, 0, _TTL, len(data) >> 8, len(data) & 0xFF)))
        out.extend(data)
    return bytes(out)


def asks_for(pkt, names):
    """True when `pkt` is a query with a question about one of `names` that this board answers."""
    if len(pkt) < 12 or pkt[2] & 0x80:  # too short, or a response (QR set)
        return False
    i = 12
    try:
        for _ in range((pkt[4] << 8) | pkt[5]):
            name, i = _read_name(pkt, i)
            if name in names and ((pkt[i] << 8) | pkt[i + 1]) in _WANTED:
                return True
            i += 4
    except (IndexError, ValueError, UnicodeError):
        pass  # malformed: ignore it, as every responder must
    return False


async def _run(rx, tx, reply, names):
    # Announce twice, a second apart (RFC 6762 §8.3), then answer queries.
    group = socket.getaddrinfo(GROUP, PORT)[0][-1]
    # read(0) waits until a datagram is queued without taking it; recv() then takes exactly
    # one (a stream readinto() would block for a full buffer, or join datagrams).
    ready = asyncio.StreamReader(rx)
    try:
        tx.sendto(reply, group)
        await asyncio.sleep(1)
        while True:
            tx.sendto(reply, group)
            while True:
                await ready.read(0)
                try:
                    if asks_for(rx.recv(_MAX_PACKET), names):
                        break
                except OSError:
                    pass  # EAGAIN: woken without a datagram
    except OSError as e:
        print("mdns: stopped (%s)" % e)


def start(host, ip, port, auth):
    """Start announcing on the running event loop; returns the task, or None if 5353 is taken."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # tx bound to the board's address pins multicast to that interface (on a host with
        # several, e.g. the emulator's loopback, the default route would pick another).
        for s, addr in ((rx, "0.0.0.0"), (tx, ip)):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(socket.getaddrinfo(addr, PORT)[0][-1])
        mreq = bytes([int(b) for b in (GROUP + "." + ip).split(".")])
        rx.setsockopt(getattr(socket, "IPPROTO_IP", 0), socket.IP_ADD_MEMBERSHIP, mreq)
        rx.setblocking(False)
    except OSError as e:
        rx.close()
        tx.close()
        # On a stock esp32 build the IDF responder may hold 5353: <hostname>.local still resolves.
        print("mdns: %s not announced (port 5353: %s); %s.local still resolves" % (SERVICE, e, host))
        return None
    names = (SERVICE, (host + "." + SERVICE).lower(), (host + ".local").lower())
    print("mdns: announcing %s.%s" % (host, SERVICE))
    return asyncio.create_task(_run(rx, tx, response(host, ip, port, auth), names))
