"""Wi-Fi station bring-up and the board's network identity (hostname).

name = net.hostname(profile)           # e.g. "boardmcp-1a2b"
ip = net.connect(ssid, password, name)  # None if it did not join in time
asyncio.create_task(net.keep_connected(ssid, password, guard.add_host))  # rejoin after drops
"""

import asyncio
import time

import machine
import network
from micropython import const

CONNECT_TIMEOUT_MS = const(15000)
CHECK_MS = const(2000)  # how often the serving board looks at its link
REJOIN_WAIT_MS = const(10000)  # one rejoin attempt: association + DHCP
BACKOFF_MIN_MS = const(1000)  # between failed rejoins: doubling from this ...
BACKOFF_MAX_MS = const(60000)  # ... up to this


def hostname(profile):
    """The board's hostname: the profile's pattern with {id} = last 2 bytes of the chip id."""
    uid = machine.unique_id()
    short = "%02x%02x" % (uid[-2], uid[-1])
    return profile.get("hostname", "boardmcp-{id}").replace("{id}", short)


def station():
    """The station interface (the board as a Wi-Fi client)."""
    return network.WLAN(network.WLAN.IF_STA)


def connect(ssid, password, name, timeout_ms=CONNECT_TIMEOUT_MS):
    """Join the network; return the IPv4 address, or None on failure or timeout."""
    network.hostname(name)  # must precede activation to reach DHCP and mDNS
    sta = station()
    sta.active(True)
    if sta.isconnected() and sta.config("ssid") != ssid:
        sta.disconnect()  # a soft reset keeps the link; the configured network may have changed
    if not sta.isconnected():
        sta.connect(ssid, password)
        start = time.ticks_ms()
        while not sta.isconnected():
            status = sta.status()
            if status in (network.STAT_WRONG_PASSWORD, network.STAT_NO_AP_FOUND):
                print("wifi: cannot join %r (status %d)" % (ssid, status))
                return None
            if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
                print("wifi: timed out joining %r" % ssid)
                return None
            time.sleep_ms(50)
    return sta.ipconfig("addr4")[0]


async def keep_connected(ssid, password, on_join):
    """Watch the station link while serving; when it drops, rejoin with exponential backoff
    (1 s doubling to 60 s) and call on_join(ip) once back. Runs forever.

    The driver's own reconnects (esp32 `reconnects`) are not counted on: their default and
    behaviour vary by port version, and a rejoin after a wrong password or a vanished AP
    needs a fresh connect() anyway."""
    sta = station()
    while True:
        await asyncio.sleep_ms(CHECK_MS)
        try:
            if not sta.isconnected():
                await _recover(sta, ssid, password, on_join)
        except MemoryError:
            pass  # a full heap for a moment must not end the watch: look again next round


async def _recover(sta, ssid, password, on_join):
    print("wifi: lost %r (status %d); rejoining" % (ssid, sta.status()))
    backoff = BACKOFF_MIN_MS
    while True:
        ip = await _rejoin(sta, ssid, password)
        if ip:
            print("wifi: rejoined %r as %s" % (ssid, ip))
            on_join(ip)
            return
        print("wifi: rejoin failed (status %d); next try in %d ms" % (sta.status(), backoff))
        await asyncio.sleep_ms(backoff)
        backoff = min(2 * backoff, BACKOFF_MAX_MS)


async def _rejoin(sta, ssid, password):
    # One attempt: the address once joined, or None.
    try:
        sta.disconnect()  # a connect() while the driver is still trying fails on some versions
        sta.connect(ssid, password)
    except OSError as e:
        print("wifi: connect: %r" % e)
        return None
    start = time.ticks_ms()
    while not sta.isconnected():
        if sta.status() in (network.STAT_WRONG_PASSWORD, network.STAT_NO_AP_FOUND):
            return None
        if time.ticks_diff(time.ticks_ms(), start) > REJOIN_WAIT_MS:
            return None
        await asyncio.sleep_ms(100)
    return sta.ipconfig("addr4")[0]


def state():
    """Wi-Fi state for system_info: connected, ssid, ip, rssi_dbm, hostname."""
    sta = station()
    if not (sta.active() and sta.isconnected()):
        return {"connected": False, "hostname": network.hostname()}
    # One literal: a dict grown key by key reallocates its table on the way (twice as much heap).
    return {
        "connected": True,
        "hostname": network.hostname(),
        "ssid": sta.config("ssid"),
        "ip": sta.ipconfig("addr4")[0],
        "rssi_dbm": sta.status("rssi"),
    }
