"""MCP over MQTT 5, as EMQX's "MCP over MQTT" specification defines it (the MQTT transport of
mcp-over-mqtt, specification/2025-03-26/basic/mqtt_transport.md; "spec §Section" below).

The board is one MCP server on a broker. It connects as `server-id` with a will that clears its
presence (an empty retained message), publishes `notifications/server/online` retained on
`$mcp-server/presence/{server-id}/{server-name}`, and takes `initialize` on its control topic
`$mcp-server/{server-id}/{server-name}`. Each MCP client (its mcp-client-id is the
MCP-MQTT-CLIENT-ID user property of that initialize, afterwards the RPC topic) is one session
of the stream core (stream.py), talking on `$mcp-rpc/{mcp-client-id}/{server-id}/{server-name}`.
Requests and responses are matched by JSON-RPC id on that per-client topic, as the spec does
(it uses no Response Topic or Correlation Data). Every PUBLISH carries the spec's user
properties, at QoS 1 (spec §QoS of its first revision; later ones leave QoS open).

A PUBLISH states its length before its payload, so a message cannot go out in parts as it is
serialised (as WebSocket fragments and serial lines do). A short message is copied from the
shared stream straight into the socket's writes, or into one packet buffer when it has to wait
its turn; a long result (a tools/list) is serialised twice, once to count its bytes and once
piece by piece onto the socket, so no block the size of the message is ever needed.

Only boards with an `mqtt` section in config.json import this module:

    mq = MQTT(server, cfg["mqtt"], hostname)
    asyncio.create_task(mq.run())   # connects, serves, reconnects with backoff, forever
    mq.close()                      # drop the link without DISCONNECT: the broker sends the will
"""

import asyncio
import binascii
import gc
import json
import struct

import machine
from micropython import const

from .. import NAME, VERSION, jsonrpc
from . import buffers
from .stream import PART, Connection

MAX_PACKET = const(9216)  # bytes of one packet in; told to the broker, which then drops larger ones
BUF_SIZE = const(1024)  # packets up to this size are read into one buffer; larger ones get their own
MAX_CLIENTS = const(4)  # MCP clients at once; the least recently active is de-initialized for a new one
RECEIVE_MAX = const(8)  # QoS 1 messages the broker may send us before we acknowledge them
MAX_INFLIGHT = const(8)  # our QoS 1 publishes awaiting PUBACK (fewer if the broker says so)
KEEPALIVE_S = const(60)
PACKET_MS = const(10000)  # from a packet's first byte to its last; also the wait for CONNACK
BACKOFF_MAX_S = const(30)

_CONNACK = const(2)
_PUBLISH = const(3)
_PUBACK = const(4)
_DISCONNECT = const(14)
_PINGREQ = b"\xc0\x00"

_RPC = b"$mcp-rpc/"
_CLIENT_PRESENCE = b"$mcp-client/presence/"
_CLIENT_CAPABILITY = b"$mcp-client/capability/"
_DISCONNECTED = b"notifications/disconnected"
_DISCONNECTED_MSG = b'{"jsonrpc":"2.0","method":"notifications/disconnected"}'

# MQTT 5 property identifier -> the kind of its value: 1, 2, 4 bytes (big-endian integer),
# 5 string or binary data, 6 string pair (user property), 7 variable byte integer, 0 invalid.
_KINDS = (
    b"\x00\x01\x04\x05\x00\x00\x00\x00\x05\x05\x00\x07\x00\x00\x00\x00\x00\x04\x05\x02\x00\x05"
    b"\x05\x01\x04\x01\x05\x00\x05\x00\x00\x05\x00\x02\x02\x02\x01\x01\x06\x04\x01\x01\x01"
)


def _varint(n):
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return out
        out.append(0x80 | (n & 0x7F))
        n >>= 7


def _varint_at(buf, p):
    # (value, position after it) of the variable byte integer at buf[p].
    n = 0
    shift = 0
    while True:
        b = buf[p]
        p += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, p
        shift += 7
        if shift > 21:
            raise ValueError("malformed variable byte integer")


def _str(s):
    # An MQTT UTF-8 string or binary data: 2-byte length, then the bytes.
    if isinstance(s, str):
        s = s.encode()
    return struct.pack("!H", len(s)) + s


def _pair(key, value):
    return b"\x26" + _str(key) + _str(value)


def _packet(first, head, payload=b""):
    # The whole packet in one buffer, so it goes out in one write.
    n = len(head) + len(payload)
    size = _varint(n)
    pkt = bytearray(1 + len(size) + n)
    pkt[0] = first
    p = 1 + len(size)
    pkt[1:p] = size
    pkt[p : p + len(head)] = head
    pkt[p + len(head) :] = payload
    return pkt


def _piece(w, head, out, left):
    # Write head and out's bytes, at most `left` of them (what the PUBLISH header promised and
    # is still owed); return what is still owed.
    k = min(out.tell(), left)
    buffers.copy_out(w.write, head, out, k, b"")
    return left - k


def _pad(w, left):
    # Spaces for payload bytes promised and not produced: the packet ends where its header says,
    # so the broker's framing holds (the client finds the message cut short).
    while left > 0:
        k = min(left, 64)
        w.write(b" " * k)
        left -= k


def _prop(buf, p, end, pid, key=None):
    """Property `pid` among the properties in buf[p:end] (a user property: the one named `key`):
    an int, bytes, or None when absent. Malformed properties raise ValueError or IndexError."""
    while p < end:
        i = buf[p]
        kind = _KINDS[i] if i < len(_KINDS) else 0
        p += 1
        if kind == 0:
            raise ValueError("unknown property 0x%02x" % i)
        if kind == 7:
            v, p = _varint_at(buf, p)
        elif kind < 5:
            v = int.from_bytes(buf[p : p + kind], "big")
            p += kind
        else:
            n = (buf[p] << 8) | buf[p + 1]
            v = bytes(buf[p + 2 : p + 2 + n])
            p += 2 + n
            if kind == 6:
                n = (buf[p] << 8) | buf[p + 1]
                if i == pid and v == key:
                    return bytes(buf[p + 2 : p + 2 + n])
                p += 2 + n
                continue
        if i == pid:
            return v
    if p > end:
        raise ValueError("properties overrun their length")
    return None


class MQTT:
    """The board as an MCP server on an MQTT 5 broker (`cfg`: config.json's `mqtt` section)."""

    def __init__(self, server, cfg, hostname):
        self.server = server
        self.host = cfg["broker"]
        self.tls = cfg.get("tls")
        self.port = cfg.get("port", 8883 if self.tls else 1883)
        self.user = cfg.get("username")
        self.password = cfg.get("password")
        self.keepalive = cfg.get("keepalive", KEEPALIVE_S)
        # spec §MQTT Client ID: server-id is the MQTT client id, unique on the broker: the chip's.
        self.id = cfg.get("server_id") or "boardmcp-" + binascii.hexlify(machine.unique_id()).decode()
        # spec §Terminology: server-name is hierarchical, so clients can filter on `boardmcp/#`.
        self.name = cfg.get("server_name") or "boardmcp/" + hostname
        self._topics()
        props = _pair("MCP-COMPONENT-TYPE", "mcp-server") + _pair("MCP-MQTT-CLIENT-ID", self.id)
        self._props = _varint(len(props)) + props  # spec §User Property: on every PUBLISH
        self.clients = []  # _Client, least recently active first
        self.buf = bytearray(BUF_SIZE)
        self.writer = None
        self.reader = None
        self.backoff = 1
        self._task = None  # the reading task: it never waits for PUBACKs, since it reads them
        self._busy = False  # a task is writing a packet (and draining): the socket is its own
        self._ready = asyncio.Event()  # pulsed when the socket is free again or a PUBACK came
        self._inflight = 0
        self._quota = MAX_INFLIGHT
        self._pid = 0

    def _topics(self):
        tail = "/%s/%s" % (self.id, self.name)
        self.tail = tail.encode()
        self.control = ("$mcp-server" + tail).encode()  # spec §Message Topics
        self.presence = "$mcp-server/presence" + tail
        self.capability = "$mcp-server/capability" + tail

    async def run(self):
        """Connect and serve; when the broker goes away, reconnect with backoff. Never returns."""
        self._task = asyncio.current_task()
        while True:
            try:
                await self._session()
            except Exception as e:  # whatever goes wrong, the board stays up and retries
                if isinstance(e, MemoryError):
                    gc.collect()
                print("mqtt: %s:%d: %s %s" % (self.host, self.port, type(e).__name__, e))
            self.close()
            await asyncio.sleep(self.backoff)
            self.backoff = min(max(1, self.backoff * 2), BACKOFF_MAX_S)

    def close(self):
        """Drop the connection without DISCONNECT, so the broker publishes the will (spec
        §Server Disconnect), and end every client's session."""
        w = self.writer
        self.writer = self.reader = None
        if w is not None:
            try:
                w.close()
            except OSError:
                pass
        for client in self.clients:
            client.close()
        self.clients = []
        self._inflight = 0
        self._wake()

    def _wake(self):
        self._ready.set()
        self._ready.clear()

    async def _session(self):
        # One connection to the broker, served until it fails.
        ssl = self._ssl_context() if self.tls else None
        self.reader, self.writer = await asyncio.wait_for_ms(
            asyncio.open_connection(self.host, self.port, ssl=ssl), PACKET_MS
        )
        try:
            # A PUBACK then a response are two small writes: without TCP_NODELAY the second waits
            # for the broker's delayed ACK (~40 ms a call).
            getattr(self.writer, "s").setsockopt(6, 1, 1)  # noqa: B009 (IPPROTO_TCP, TCP_NODELAY; the stream's socket)
        except (AttributeError, OSError):
            pass  # a TLS socket: its records are not Nagled the same way
        self.writer.write(self._connect())
        await self.writer.drain()
        first, n, buf = await self._read_packet(PACKET_MS)
        if first >> 4 != _CONNACK or n < 2:
            raise ValueError("expected CONNACK")
        if buf[1]:
            raise OSError("broker refused the connection: reason 0x%02x" % buf[1])
        size, p = _varint_at(buf, 2)
        end = p + size
        self._inflight = 0  # nothing of ours is unacknowledged on a new connection
        quota = _prop(buf, p, end, 0x21)  # Receive Maximum
        self._quota = min(quota, MAX_INFLIGHT) if isinstance(quota, int) and quota else MAX_INFLIGHT
        name = _prop(buf, p, end, 0x26, b"MCP-SERVER-NAME")
        if isinstance(name, bytes) and name and name.decode() != self.name:
            # spec §Terminology: a server-name the broker suggests MUST be used. The will named
            # the old one, so connect again under the new name.
            self.name = name.decode()
            self._topics()
            self.backoff = 0
            return
        self.backoff = 1
        pinger = asyncio.create_task(self._ping())
        try:
            await self._subscribe(((self.control, 1),))
            # spec §Service Registration: online, retained.
            out = self._online()
            await self.publish(self.presence, out, out.tell(), True)
            print("mqtt: serving MCP as %s on %s:%d" % (self.name, self.host, self.port))
            while True:
                first, n, buf = await self._read_packet(self.keepalive * 1500)
                kind = first >> 4
                if kind == _PUBLISH:
                    await self._publish_in(first, buf, n)
                elif kind == _PUBACK:
                    self._inflight -= 1
                    self._wake()
                elif kind == _DISCONNECT:
                    raise OSError("broker sent DISCONNECT (reason 0x%02x)" % (buf[0] if n else 0))
                # SUBACK, UNSUBACK, PINGRESP: reading them proved the link alive
        finally:
            pinger.cancel()

    def _ssl_context(self):
        import ssl

        opts = self.tls if isinstance(self.tls, dict) else {}
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if opts.get("ca"):
            # A DER file: some builds' mbedtls (the unix port's) parse no PEM.
            ctx.load_verify_locations(cafile=opts["ca"])
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = ssl.CERT_NONE  # encrypted, but the broker is not authenticated
        if opts.get("cert"):
            ctx.load_cert_chain(opts["cert"], opts["key"])
        return ctx

    def _connect(self):
        # spec §MQTT Protocol Version, §Session Expiry Interval (0), §User Property (CONNECT), and
        # §Service Unregistration: the will is an empty retained message on the presence topic.
        flags = 0x02 | 0x04 | 0x08 | 0x20  # clean start; will, at QoS 1, retained
        if self.user is not None:
            flags |= 0x80
        if self.password is not None:
            flags |= 0x40
        props = b"\x11\x00\x00\x00\x00\x21" + struct.pack("!H", RECEIVE_MAX) + b"\x27" + struct.pack("!I", MAX_PACKET)
        props += _pair("MCP-COMPONENT-TYPE", "mcp-server")
        props += _pair("MCP-META", json.dumps({"implementation": NAME, "version": VERSION}))
        head = b"\x00\x04MQTT\x05" + bytes((flags,)) + struct.pack("!H", self.keepalive) + _varint(len(props)) + props
        payload = _str(self.id) + b"\x00" + _str(self.presence) + b"\x00\x00"
        if self.user is not None:
            payload += _str(self.user)
        if self.password is not None:
            payload += _str(self.password)
        return _packet(0x10, head, payload)

    def _online(self):
        # The server/online notification, in the shared stream.
        names = ", ".join(self.server.registry.tools.keys)
        info = self.server.info
        msg = {
            "jsonrpc": "2.0",
            "method": "notifications/server/online",
            "params": {
                "server_name": self.name,
                "description": "%s. Tools: %s" % (info["title"], names),
                "meta": {"implementation": NAME, "version": VERSION},
            },
        }
        out = buffers.stream()
        jsonrpc.dump(msg, out)
        return out

    async def _ping(self):
        try:
            while True:
                await asyncio.sleep(max(1, self.keepalive // 2))
                await self._send(_PINGREQ)
        except OSError:
            pass  # the reader notices the dead link

    # -- packets in ----------------------------------------------------------------------------

    async def _read(self, mv, wait_ms):
        reader = self.reader
        if reader is None:
            raise OSError("not connected to the broker")
        got = 0
        while got < len(mv):
            n = await asyncio.wait_for_ms(reader.readinto(mv[got:]), wait_ms)
            if not n:
                raise OSError("the broker closed the connection")
            got += n

    async def _read_packet(self, wait_ms):
        # (first byte, remaining length, buffer holding the rest) of the next packet.
        buf = self.buf
        one = memoryview(buf)[0:1]
        await self._read(one, wait_ms)
        first = buf[0]
        n = 0
        shift = 0
        while True:
            await self._read(one, PACKET_MS)
            n |= (buf[0] & 0x7F) << shift
            if not buf[0] & 0x80:
                break
            shift += 7
            if shift > 21:
                raise ValueError("malformed remaining length")
        if n > MAX_PACKET:
            raise ValueError("a %d-byte packet, over the %d we allow" % (n, MAX_PACKET))
        if n > len(buf):
            try:
                buf = bytearray(n)
            except MemoryError:
                gc.collect()
                await self._skip(n)
                return 0, 0, self.buf  # dropped: nothing to act on
        await self._read(memoryview(buf)[0:n], PACKET_MS)
        return first, n, buf

    async def _skip(self, n):
        mv = memoryview(self.buf)
        while n:
            take = min(n, len(mv))
            await self._read(mv[0:take], PACKET_MS)
            n -= take

    async def _publish_in(self, first, buf, n):
        p = 2 + ((buf[0] << 8) | buf[1])
        topic = bytes(buf[2:p])
        if first & 0x06:  # QoS 1 (we subscribe at most QoS 1): acknowledge at once
            await self._send(b"\x40\x02" + bytes(buf[p : p + 2]))
            p += 2
        size, q = _varint_at(buf, p)
        start = q + size
        if start > n:
            raise ValueError("malformed PUBLISH")
        if topic == self.control:
            cid = _prop(buf, q, start, 0x26, b"MCP-MQTT-CLIENT-ID")
            if isinstance(cid, bytes) and cid and b"/" not in cid and b"+" not in cid and b"#" not in cid:
                await self._initialize(cid, buf, start, n)
            return
        if topic.startswith(_CLIENT_PRESENCE):
            # spec §Client Disconnect: the client's "disconnected" notification (or its will).
            await self._forget(self._client(topic[len(_CLIENT_PRESENCE) :]), False)
            return
        if topic.startswith(_RPC):
            cid = topic[len(_RPC) : topic.find(b"/", len(_RPC))]
        elif topic.startswith(_CLIENT_CAPABILITY):
            cid = topic[len(_CLIENT_CAPABILITY) :]
        else:
            return
        client = self._client(cid)
        if client is None:
            return  # not initialized with us (or already forgotten)
        if n - start < 96 and _DISCONNECTED in bytes(buf[start:n]):
            await self._forget(client, False)  # spec §Client Disconnect, on the RPC topic
            return
        self.clients.remove(client)
        self.clients.append(client)  # most recently active last
        # The reader waits for a turn here (a tight heap): a request holding one while it waits
        # for the PUBACK quota, which only this reader frees, holds it TURN_MAX_MS at most.
        server = client.server
        error = client.receive(buf, start, n, server.turn() or await server.wait_turn())
        if error:
            await client.reply(error)

    # -- clients -------------------------------------------------------------------------------

    def _client(self, cid):
        for client in self.clients:
            if client.cid == cid:
                return client
        return None

    async def _initialize(self, cid, buf, start, end):
        # spec §Initialization: a client's first message comes on the control topic.
        old = self._client(cid)
        if old is not None:
            self.clients.remove(old)  # initializing again: a fresh session on the same topics
            old.close()
        elif len(self.clients) >= MAX_CLIENTS:
            await self._forget(self.clients[0], True)
        client = _Client(self, cid)
        self.clients.append(client)
        if old is None:
            # spec §Initialization, §Capability List Changed, §Client Disconnect: subscribe to the
            # client's RPC (No Local), capability and presence topics before answering.
            await self._subscribe(((client.topic, 0x05), (_CLIENT_CAPABILITY + cid, 1), (_CLIENT_PRESENCE + cid, 1)))
        server = client.server
        error = client.receive(buf, start, end, server.turn() or await server.wait_turn())
        if error:
            await client.reply(error)

    async def _forget(self, client, tell):
        # End a client's session and unsubscribe from its topics; `tell`: we de-initialize it,
        # so say so on its RPC topic first (spec §Server Disconnect).
        if client is None:
            return
        self.clients.remove(client)
        client.close()
        if tell:
            out = buffers.stream()
            out.write(_DISCONNECTED_MSG)
            await self.publish(client.topic, out, len(_DISCONNECTED_MSG))
        cid = client.cid
        topics = ((client.topic, -1), (_CLIENT_CAPABILITY + cid, -1), (_CLIENT_PRESENCE + cid, -1))
        await self._subscription(0xA2, topics)

    # -- packets out ---------------------------------------------------------------------------

    def _must_wait(self, publish):
        # The socket is taken, or (for a PUBLISH) the in-flight quota is used up; the reader
        # task never waits for the quota, since it is the one to read the PUBACKs.
        if self._busy:
            return True
        return publish and self._inflight >= self._quota and asyncio.current_task() is not self._task

    async def _claim(self, publish):
        # Wait while _must_wait(publish), then take the socket; the writer. Without a wait this
        # never yields, so a caller's shared stream is still intact after it.
        while self._must_wait(publish):
            if self.writer is None:
                raise OSError("not connected to the broker")
            await self._ready.wait()
        w = self.writer
        if w is None:
            raise OSError("not connected to the broker")
        self._busy = True
        return w

    def _release(self, qos, failed):
        # Give the socket back; a failed QoS 1 publish gets no PUBACK, so it leaves the count.
        if failed and qos and self._inflight:
            self._inflight -= 1
        self._busy = False
        self._wake()

    async def _send(self, data):
        # One small packet (bytes) that is not a PUBLISH.
        w = await self._claim(False)
        try:
            w.write(data)
            await w.drain()
        finally:
            self._release(0, False)

    def _next_id(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    async def _subscribe(self, filters):
        await self._subscription(0x82, filters)

    async def _subscription(self, first, filters):
        # SUBSCRIBE (0x82: (topic, options)) or UNSUBSCRIBE (0xA2: options -1, not sent).
        body = bytearray(struct.pack("!HB", self._next_id(), 0))
        for topic, opts in filters:
            body += _str(topic)
            if opts >= 0:
                body.append(opts)
        await self._send(_packet(first, body))

    def _head(self, topic, n, retain):
        # A PUBLISH's fixed and variable header for an n-byte payload, once the socket is ours:
        # QoS 1 with a packet id, counted in flight; QoS 0 when the quota is used up (only the
        # reader task gets here then).
        qos = 2 if self._inflight < self._quota else 0
        var = _str(topic)
        if qos:
            var += struct.pack("!H", self._next_id())
        var += self._props
        head = bytes((0x30 | qos | (1 if retain else 0),)) + _varint(len(var) + n) + var
        if qos:
            self._inflight += 1  # a PUBACK may be read before the drain returns
        return head

    async def publish(self, topic, out, n, retain=False):
        """Publish the first n bytes of the stream `out` (the shared one: they are copied before
        any wait) as one message at QoS 1, waiting while the in-flight quota is used up. OSError
        when not connected."""
        data = None
        if self._must_wait(True):  # keep a copy while it waits its turn
            data = bytearray(n)
            out.seek(0)
            out.readinto(data)
        w = await self._claim(True)
        qos = 0
        failed = True
        try:
            head = self._head(topic, n, retain)
            qos = head[0] & 0x06
            if data is None:
                buffers.copy_out(w.write, head, out, n, b"")
            else:
                w.write(head)
                w.write(data)
                data = None
            await w.drain()
            failed = False
        finally:
            self._release(qos, failed)

    async def publish_result(self, topic, n, rid, result):
        """Publish a long success response of n bytes (counted by a first pass) as one message,
        serialising it again straight onto the socket, a piece at a time."""
        w = await self._claim(True)
        qos = 0
        failed = True
        try:
            head = self._head(topic, n, False)
            qos = head[0] & 0x06
            out = buffers.stream()  # the socket is ours from here: nobody else writes this packet
            try:
                for _ in jsonrpc.dump_pieces(out, rid, result):
                    if out.tell() >= PART:
                        n = _piece(w, head, out, n)
                        head = b""
                        await w.drain()
                        out.seek(0)  # other requests may have used it meanwhile
                n = _piece(w, head, out, n)
            except MemoryError:
                if head:
                    raise  # nothing of it is out: the error response takes its place
                _pad(w, n)
                await w.drain()
                failed = False
                raise
            _pad(w, n)  # only if the result changed between the passes
            await w.drain()
            failed = False
        finally:
            self._release(qos, failed)


class _Client(Connection):
    """One MCP client of this board over MQTT: a session of the stream core."""

    def __init__(self, mqtt, cid):
        self.mqtt = mqtt
        self.cid = cid
        self.topic = _RPC + cid + mqtt.tail
        super().__init__(mqtt.server)

    async def write_part(self, out, n, first, last):
        """One whole message on the client's RPC topic: stream.py only sends a message in parts
        from _result, which this class replaces."""
        await self.mqtt.publish(self.topic, out, n)

    async def _result(self, rid, result):
        # A long result is counted first (serialised without keeping it), then sent.
        if not jsonrpc.is_large(result):
            await super()._result(rid, result)
            return
        out = buffers.stream()
        n = 0
        for _ in jsonrpc.dump_pieces(out, rid, result):
            n += out.tell()
            out.seek(0)
        await self.mqtt.publish_result(self.topic, n + out.tell(), rid, result)

    async def send(self, msg):
        """List changes and resource updates go on the server's capability topic (spec §Capability
        List Changed, §Resource Update), which all clients read: a list change goes out once."""
        method = msg.get("method", "")
        listed = method.endswith("/list_changed")
        if not (listed or method == "notifications/resources/updated"):
            await super().send(msg)
            return
        if self.closed:
            raise OSError("connection closed")
        mqtt = self.mqtt
        if listed and mqtt.clients and mqtt.clients[0] is not self:
            return  # the first client's session publishes it for all
        out = buffers.stream()
        jsonrpc.dump(msg, out)
        await mqtt.publish(mqtt.capability, out, out.tell())
