"""Wi-Fi station bring-up and the board's network identity (hostname).

name = net.hostname(profile)           # e.g. "boardmcp-1a2b"
ip = net.connect(ssid, password, name)  # None if it did not join in time
"""

import time

import machine
import network
from micropython import const

CONNECT_TIMEOUT_MS = const(15000)


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


def state():
    """Wi-Fi state for system_info: connected, ssid, ip, rssi_dbm, hostname."""
    sta = station()
    up = sta.active() and sta.isconnected()
    info = {"connected": up, "hostname": network.hostname()}
    if up:
        info["ssid"] = sta.config("ssid")
        info["ip"] = sta.ipconfig("addr4")[0]
        info["rssi_dbm"] = sta.status("rssi")
    return info
