# Emulated `network` for the esp32 port (the unix VM has none), run inside the MicroPython VM.
# The access point the board can join (ssid, password, rssi) comes from sim.json. The emulated
# station's address is sim.json's "ip" (127.0.0.1: the emulator's network is loopback).
# A test takes the access point away with the fault "wifi": "down" (EmulatedBoard.inject_fault):
# a joined station loses its link (status beacon timeout), joins fail with "no AP found", and the
# station stays down until the firmware calls connect() again once the AP is back (the driver's
# own reconnects are not emulated). Sockets are loopback and keep working.
import random
import time

import _boardsim

STA_IF = 0
AP_IF = 1

STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_CONNECT_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204
STAT_NO_AP_FOUND_W_COMPATIBLE_SECURITY = 210
STAT_NO_AP_FOUND_IN_AUTHMODE_THRESHOLD = 211
STAT_NO_AP_FOUND_IN_RSSI_THRESHOLD = 212

AUTH_OPEN = 0
AUTH_WEP = 1
AUTH_WPA_PSK = 2
AUTH_WPA2_PSK = 3
AUTH_WPA_WPA2_PSK = 4
AUTH_WPA2_ENTERPRISE = 5
AUTH_WPA3_PSK = 6
AUTH_WPA2_WPA3_PSK = 7
AUTH_MAX = 17

MODE_11B = 1
MODE_11G = 2
MODE_11N = 4
MODE_LR = 8

_CONNECT_MS = 300  # association + DHCP on a quiet network
_AP_IP = ("192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0")

_HIDDEN = ("active", "status", "since", "rssi")  # an interface's state that config() does not show
_NO_ADDR = ("0.0.0.0",) * 4

_hostname = None
_country = "01"


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname or "mpy-" + _boardsim.config()["chip"]
    if len(name) > 32:
        raise ValueError("hostname too long")
    _hostname = name


def country(code=None):
    global _country
    if code is None:
        return _country
    _country = code


_sta_addr = None


def _sta_ip():
    # The joined station's (address, mask, gateway, DNS): sim.json's "ip" for all but the mask.
    global _sta_addr
    if _sta_addr is None:
        ip = _boardsim.config().get("ip", "127.0.0.1")
        _sta_addr = (ip, "255.255.255.0", ip, ip)
    return _sta_addr


def _mac(offset):
    mac = bytearray(int(b, 16) for b in _boardsim.config()["mac"].split(":"))
    mac[5] = (mac[5] + offset) & 0xFF  # ESP-IDF: AP MAC = base MAC + 1
    return bytes(mac)


class WLAN:
    IF_STA = 0
    IF_AP = 1
    PM_NONE = 0
    PM_PERFORMANCE = 1
    PM_POWERSAVE = 2
    SEC_OPEN = 0
    SEC_WEP = 1
    SEC_WPA = 2
    SEC_WPA2 = 3
    SEC_WPA_WPA2 = 4
    SEC_WPA2_ENT = 5
    SEC_WPA3 = 6
    SEC_WPA2_WPA3 = 7
    PROTOCOL_DEFAULT = 7
    PROTOCOL_LR = 8

    # One state per interface, shared by every WLAN(...) object for it, as on the chip.
    _ifs = {}

    def __init__(self, interface_id=0):
        if interface_id not in (0, 1):
            raise ValueError("invalid WLAN interface identifier")
        self._if = interface_id
        if interface_id not in WLAN._ifs:
            ap = interface_id == 1
            WLAN._ifs[interface_id] = {
                "active": False,
                "status": STAT_IDLE,
                "since": 0,
                "ssid": ("mpy-" + _boardsim.config()["chip"]) if ap else "",
                "key": "",
                "channel": 1,
                "hidden": False,
                "security": AUTH_OPEN if ap else AUTH_WPA2_PSK,
                "reconnects": -1,
                "txpower": 20,
                "pm": WLAN.PM_PERFORMANCE,
                "protocol": WLAN.PROTOCOL_DEFAULT,
                "max_clients": 10,
                "rssi": _boardsim.config()["wifi"].get("rssi", -55) * 4,  # quarter dB (_rssi)
            }
        self._s = WLAN._ifs[interface_id]

    def active(self, is_active=None):
        if is_active is None:
            return self._s["active"]
        self._s["active"] = bool(is_active)
        if not is_active:
            self._s["status"] = STAT_IDLE

    def _require_active(self):
        if not self._s["active"]:
            raise OSError("Wifi Not Started")

    def connect(self, ssid=None, key=None, *, bssid=None):
        if self._if != STA_IF:
            raise OSError("STA required")
        self._require_active()
        if ssid is not None:
            self._s["ssid"] = ssid
            self._s["key"] = key or ""
        self._s["status"] = STAT_CONNECTING
        self._s["since"] = time.ticks_ms()

    def disconnect(self):
        self._s["status"] = STAT_IDLE

    def _status(self):
        s = self._s
        if s["status"] == STAT_GOT_IP and _boardsim.fault("wifi") == "down":
            s["status"] = STAT_BEACON_TIMEOUT  # the AP went silent: the link is lost
        elif s["status"] == STAT_CONNECTING and time.ticks_diff(time.ticks_ms(), s["since"]) >= _CONNECT_MS:
            ap = _boardsim.config()["wifi"]
            if s["ssid"] != ap["ssid"] or _boardsim.fault("wifi") == "down":
                s["status"] = STAT_NO_AP_FOUND
            elif s["key"] != ap.get("password", ""):
                s["status"] = STAT_WRONG_PASSWORD
            else:
                s["status"] = STAT_GOT_IP
        return s["status"]

    def isconnected(self):
        if self._if == AP_IF:
            return False  # no station ever joins the emulated soft AP
        return self._s["active"] and self._status() == STAT_GOT_IP

    def status(self, param=None):
        if param is None:
            return self._status() if self._if == STA_IF else STAT_IDLE
        if param == "rssi":
            if not self.isconnected():
                raise OSError("STA not connected")
            return self._rssi()
        if param == "stations":
            return []
        raise ValueError("unknown status param")

    def _rssi(self):
        # A slow random walk around the configured level, as a real link wanders: in quarter dB,
        # integers only (a float is a heap object on the VM, and the port's C allocates nothing).
        base = _boardsim.config()["wifi"].get("rssi", -55) * 4
        q = self._s["rssi"] + random.getrandbits(2) * 2 - 3  # -0.75 .. +0.75 dB
        q = min(base + 16, max(base - 16, q))  # within 4 dB of the configured level
        self._s["rssi"] = q
        return q >> 2

    def scan(self):
        if self._if != STA_IF:
            raise OSError("STA required")
        self._require_active()
        ap = _boardsim.config()["wifi"]
        security = AUTH_WPA2_PSK if ap.get("password") else AUTH_OPEN
        bssid = bytes(b ^ 0x5A for b in _mac(0))
        return [(ap["ssid"].encode(), bssid, 6, ap.get("rssi", -55), security, False)]

    def _addr(self):
        if self._if == AP_IF:
            return _AP_IP if self._s["active"] else _NO_ADDR
        if self.isconnected():
            return _sta_ip()
        return _NO_ADDR

    def ifconfig(self, config=None):
        if config is None:
            return self._addr()
        raise OSError("static IP is not emulated")

    # The query paths (ipconfig("addr4"), config("ssid"), status("rssi")) are what a serving
    # board calls on every system_info: kept apart from the setters and with small frames, so
    # they allocate about what the port's C does (the result), not a heap frame per call.
    def ipconfig(self, *args, **kwargs):
        if kwargs:
            return None  # accepted (dhcp4, ...) but the emulated address is fixed
        if len(args) != 1:
            raise TypeError("can query only one param")
        return self._ipconfig(args[0])

    def _ipconfig(self, key):
        if key == "addr4":
            addr = self._addr()
            return (addr[0], addr[1])
        if key == "gw4":
            return self._addr()[2]
        if key == "dhcp4":
            return self._if == STA_IF
        if key == "has_dhcp4":
            return self.isconnected()
        raise ValueError("unexpected key")

    def config(self, *args, **kwargs):
        if args and kwargs:
            raise TypeError("either pos or kw args are allowed")
        if kwargs:
            return self._configure(kwargs)
        if len(args) != 1:
            raise TypeError("can query only one param")
        return self._config(args[0])

    def _configure(self, kwargs):
        for k, v in kwargs.items():
            if k in ("hostname", "dhcp_hostname"):
                hostname(v)
            elif k == "essid":
                self._s["ssid"] = v
            elif k == "password":
                self._s["key"] = v
            elif k == "authmode":
                self._s["security"] = v
            elif k in self._s and k not in _HIDDEN:
                self._s[k] = v
            elif k == "mac":
                raise ValueError("setting the MAC is not emulated")
            else:
                raise ValueError("unknown config param")

    def _config(self, k):
        if k == "mac":
            return _mac(self._if)
        if k in ("hostname", "dhcp_hostname"):
            return hostname()
        if k == "essid":
            k = "ssid"
        elif k == "authmode":
            k = "security"
        if k == "key" and self._if == STA_IF:
            raise ValueError("unknown config param")
        if k in self._s and k not in _HIDDEN:
            return self._s[k]
        raise ValueError("unknown config param")
