"""Wi-Fi setup in access-point mode: one small page to enter the network's name and password.

With no Wi-Fi configured (or when joining the configured network fails) the board opens an open
access point named after its hostname and serves this page at http://192.168.4.1/. Saving writes
the credentials and a fresh bearer token to config.json, shows the token and the MCP address once,
and resets the board, which then joins the network and serves MCP.

    portal.run(profile, cfg, name, timeout_ms=None)  # never returns: the board resets

This is its own tiny HTTP handler (GET / and POST /save only, one bounded read per request),
not the MCP transport: it runs only in setup mode, when nothing else is served. The password is
never printed.
"""

import asyncio
import binascii
import os

import machine
import network
from micropython import const

from . import config, net
from .auth import Guard

MAX_REQUEST = const(1536)
READ_TIMEOUT_MS = const(5000)
RESET_DELAY_MS = const(1500)  # let the browser receive the answer before the board resets

_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>%s setup</title>
<style>body{font-family:sans-serif;max-width:28em;margin:2em auto;padding:0 1em}
input,select,button{font-size:1em;width:100%%;margin:.3em 0 1em;padding:.4em;box-sizing:border-box}
code{word-break:break-all;background:#eee;padding:.1em .3em}.err{color:#b00}</style></head><body>
<h1>%s</h1>%s</body></html>"""

_FORM = """<p class="err">%s</p><form method="post" action="/save">
<label for="ssid">Wi-Fi network</label><input id="ssid" name="ssid" list="nets" maxlength="32" required>
<datalist id="nets">%s</datalist>
<label for="password">Password</label>
<input id="password" name="password" type="password" maxlength="63" autocomplete="off">
<button type="submit">Save and restart</button></form>"""

_DONE = """<p id="done">Saved. The board restarts and joins <b>%s</b>.</p>
<p>MCP endpoint: <code id="url">http://%s.local/mcp</code></p>
<p>Bearer token (shown once, keep it for your MCP clients): <code id="token">%s</code></p>"""


def _esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _unquote(value):
    # application/x-www-form-urlencoded value -> str
    raw = value.replace(b"+", b" ")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw):
            out.extend(binascii.unhexlify(raw[i + 1 : i + 3]))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out).decode()


def parse_form(body):
    """Decode an urlencoded body into a dict of str."""
    fields = {}
    for pair in body.split(b"&"):
        if pair:
            key, _, value = pair.partition(b"=")
            fields[_unquote(key)] = _unquote(value)
    return fields


def new_token():
    """A fresh bearer token: 18 random bytes, base64url without padding."""
    text = binascii.b2a_base64(os.urandom(18)).decode().strip()
    return text.replace("+", "-").replace("/", "_").rstrip("=")


def check(fields):
    """(ssid, password) from the form, or raise ValueError with what to fix."""
    ssid = fields.get("ssid", "").strip()
    password = fields.get("password", "")
    if not 1 <= len(ssid.encode()) <= 32:
        raise ValueError("Enter the network name (1 to 32 bytes).")
    if password and not 8 <= len(password) <= 63:
        raise ValueError("A WPA password has 8 to 63 characters (leave it empty for an open network).")
    return ssid, password


def networks():
    """Names of the networks in range, strongest first, without duplicates or hidden ones."""
    sta = net.station()
    sta.active(True)
    names = []
    for entry in sorted(sta.scan(), key=lambda e: -e[3]):
        try:
            name = entry[0].decode()
        except UnicodeError:
            continue
        if name and name not in names:
            names.append(name)
    return names


def access_point(name):
    """Open an access point named `name` (no password: it only serves the setup page); return its IP."""
    ap = network.WLAN(network.WLAN.IF_AP)
    ap.active(True)
    ap.config(ssid=name, security=network.WLAN.SEC_OPEN)
    return ap.ipconfig("addr4")[0]


class Portal:
    """The setup page's HTTP handler; `saved` is set once credentials are written."""

    def __init__(self, name, guard, networks):
        self.name = name
        self.guard = guard
        self.networks = networks
        self.saved = asyncio.Event()

    def page(self, error=""):
        """The setup form, with the networks in range offered as suggestions."""
        options = "".join('<option value="%s">' % _esc(n) for n in self.networks)
        return _PAGE % (self.name, self.name, _FORM % (_esc(error), options))

    def save(self, body):
        """Validate and store the form; return (status, page)."""
        try:
            ssid, password = check(parse_form(body))
        except (ValueError, UnicodeError) as e:
            return 400, self.page(str(e))
        token = new_token()
        config.update(wifi={"ssid": ssid, "password": password}, token=token)
        print("setup: saved Wi-Fi network %r and a new token; restarting" % ssid)
        self.saved.set()
        return 200, _PAGE % (self.name, self.name, _DONE % (_esc(ssid), self.name, token))

    async def handle(self, reader, writer):
        """Serve one request, then close the connection."""
        status, body = 400, "Bad request"
        try:
            buf = bytearray(MAX_REQUEST)
            mv = memoryview(buf)
            filled = 0
            head = ""
            end = -1
            need = -1
            while need < 0 or filled < need:
                if filled == MAX_REQUEST:
                    raise ValueError("too large")
                n = await asyncio.wait_for_ms(reader.readinto(mv[filled:]), READ_TIMEOUT_MS)
                if not n:
                    raise OSError(0)
                filled += n
                if end < 0:
                    end = buf.find(b"\r\n\r\n", 0, filled)
                    if end >= 0:
                        head = bytes(buf[:end]).decode()
                        need = end + 4 + _content_length(head)
            status, body = self.route(head, bytes(buf[end + 4 : need]))
        except (ValueError, UnicodeError):
            pass
        except (OSError, asyncio.TimeoutError):
            await _close(writer)
            return
        data = body.encode()
        head = "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
        head += "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        writer.write((head % (status, "OK" if status == 200 else "Error", len(data))).encode() + data)
        try:
            await writer.drain()
        except OSError:
            pass
        await _close(writer)

    def route(self, head, body):
        """(status, page) for a parsed request."""
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        headers = {}  # as auth.Guard reads them: lower-case bytes names, bytes values
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower().encode()] = v.strip().encode()
        refused = self.guard.check(headers.get)
        if refused:
            return refused[0], refused[1]
        if len(parts) != 3:
            return 400, "Bad request"
        if parts[1] == "/" and parts[0] == "GET":
            return 200, self.page()
        if parts[1] == "/save" and parts[0] == "POST":
            return self.save(body)
        return 404, "Not found: open / for the setup page"


def _content_length(head):
    for line in head.split("\r\n"):
        if line[:15].lower() == "content-length:":
            n = int(line[15:].strip())
            if n < 0 or n > MAX_REQUEST:
                raise ValueError("bad length")
            return n
    return 0


async def _close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except OSError:
        pass


def run(cfg, name, timeout_ms=None):
    """Open the access point and serve the setup page until saved (or `timeout_ms`), then reset."""
    found = networks()
    ap_ip = access_point(name)
    host, port = cfg["http"]["host"], cfg["http"]["port"]
    guard = Guard(None, (name, name + ".local", ap_ip), ())
    portal = Portal(name, guard, found)
    shown = ap_ip if host == "0.0.0.0" else host
    print("setup: join the Wi-Fi network %r and open http://%s:%d/" % (name, shown, port))
    asyncio.run(_serve(portal, host, port, timeout_ms))
    machine.reset()


async def _serve(portal, host, port, timeout_ms):
    server = await asyncio.start_server(portal.handle, host, port, backlog=2)
    try:
        if timeout_ms is None:
            await portal.saved.wait()
        else:
            await asyncio.wait_for_ms(portal.saved.wait(), timeout_ms)
        await asyncio.sleep_ms(RESET_DELAY_MS)
    except asyncio.TimeoutError:
        print("setup: nobody saved a network in time; restarting to try again")
    finally:
        server.close()
