"""Boot sequence: configuration and profile -> Wi-Fi -> MCP server -> transports.

app.main() runs start() once and then unloads this module: none of it is needed to serve, so its
code does not stay in the heap the requests need.

    http, ip, serial, mqtt, wifi, watchdog_ms = boot.start()
"""

import gc

from micropython import const

from . import NAME, VERSION, config, net, ratelimit
from .auth import Guard
from .registry import Registry
from .server import Server
from .transport.http import HTTPServer

CATALOG = "catalog"  # the folder, on the board's filesystem, the tool definitions are written to
WATCHDOG_MS = const(30000)  # config.json "watchdog_ms"; a loop stuck this long resets the board


def build_server(profile):
    """The MCP server with every tool the profile calls for (published to the catalog; each
    tools module is loaded when a request needs it)."""
    reg = Registry(CATALOG)
    reg.publish("system")
    reg.publish("gpio")
    for name in ("adc", "i2c", "sensors"):  # profile sections, and the tools module of each
        if profile.get(name):
            reg.publish(name)
    for name in profile.get("fixtures", ()):
        # Test fixtures (the conformance suites', faults), only on profiles that ask for them.
        reg.publish(name)
    reg.seal()
    _settle()
    return Server(reg, profile["name"])


def _settle():
    # Collect between boot steps: a step's temporaries are freed before the next step's
    # long-lived objects are placed, so these fill the holes low in the heap instead of
    # scattering across it. Big requests need large free blocks, not just free bytes.
    gc.collect()


def start():
    """Bring the board up: join Wi-Fi (or run the setup portal, which never returns), announce it
    over mDNS and build the MCP server and its transports. Returns what serving needs:
    (http, ip, serial, mqtt, wifi, watchdog_ms); nothing is listening yet."""
    profile, cfg = config.load()
    _settle()
    print("%s %s on %s" % (NAME, VERSION, profile["name"]))
    name = net.hostname(profile)
    wifi = cfg["wifi"]
    ip = None
    if wifi.get("ssid"):
        ip = net.connect(wifi["ssid"], wifi.get("password", ""), name)
        if ip:
            print("wifi: joined %r as %s (%s)" % (wifi["ssid"], name, ip))
    if ip is None:
        # Setup mode: an access point with a page to enter Wi-Fi (never returns; the board resets).
        # A configured board that cannot join retries after 3 minutes.
        if not wifi.get("ssid"):
            print("wifi: not configured; provision it with `boardmcp provision --ssid ...` or the setup page")
        from . import portal

        portal.run(cfg, name, 180000 if wifi.get("ssid") else None)
    if cfg.get("mdns", True):  # announce _mcp._tcp (costs ~4.5 KB of heap; config.json "mdns": false)
        from . import mdns

        mdns.start(name, ip, cfg["http"]["port"], "bearer" if cfg["token"] else "none")
    _settle()
    guard = Guard(cfg["token"], (name, name + ".local", ip), cfg["http"]["allowed_origins"])
    opts = cfg["http"]
    http = HTTPServer(
        build_server(profile),
        guard,
        opts["host"],
        opts["port"],
        request_timeout_ms=opts["request_timeout_ms"],
        idle_timeout_ms=opts["idle_timeout_ms"],
    )
    profile = None  # the tools modules read their own
    rate = opts["rate"]
    if rate:
        ratelimit.configure(rate["per_s"], rate["burst"])
    mqtt = None
    if cfg.get("mqtt"):  # MCP over MQTT: only boards configured for a broker load it
        _settle()
        try:
            from .transport.mqtt import MQTT
        except ImportError:  # deploy puts it only on boards configured for it: not this one then
            print("mqtt: configured, but its transport is not on the board; run `boardmcp deploy` to add it")
        else:
            mqtt = MQTT(http.server, cfg["mqtt"], name)
    return http, ip, cfg.get("serial", True), mqtt, wifi, cfg.get("watchdog_ms", WATCHDOG_MS)
