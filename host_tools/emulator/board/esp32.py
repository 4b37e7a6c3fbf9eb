# Emulated `esp32` module, run inside the MicroPython VM: NVS, temperature, heap info.
import binascii
import json
import os
import random

import _boardsim

HEAP_DATA = 4
HEAP_EXEC = 1
WAKEUP_ALL_LOW = False
WAKEUP_ANY_HIGH = True

_ERR_NOT_FOUND = -4354  # ESP_ERR_NVS_NOT_FOUND
_ERR_INVALID_LENGTH = -4364  # ESP_ERR_NVS_INVALID_LENGTH
_ERR_KEY_TOO_LONG = -4362  # ESP_ERR_NVS_KEY_TOO_LONG

# ESP-IDF heap regions the chips report with Wi-Fi up: (total, free, largest free, min free).
_HEAPS = {
    HEAP_DATA: [(155648, 84000, 65536, 80000), (32768, 30000, 28672, 29000)],
    HEAP_EXEC: [(32768, 30000, 28672, 29000)],
}


def idf_heap_info(capabilities):
    return [h for caps, heaps in _HEAPS.items() if caps & capabilities for h in heaps]


def _temperature():
    return 41.0 + random.getrandbits(4) / 8


def mcu_temperature():
    # The chips with an internal sensor (S2, S3, C3, ...) report degrees Celsius.
    if not _boardsim.chip()["temp"]:
        raise AttributeError("'module' object has no attribute 'mcu_temperature'")
    return _temperature()


def raw_temperature():
    # The original ESP32's sensor: raw Fahrenheit-ish reading.
    return int(_temperature() * 9 / 5 + 32)


def wake_on_touch(wake):
    pass


def wake_on_ulp(wake):
    pass


def wake_on_ext0(pin, level):
    pass


def wake_on_ext1(pins, level):
    pass


def wake_on_gpio(pins, level):
    pass


def _nvs_load():
    try:
        with open(_boardsim.state_path("nvs.json")) as f:
            return json.load(f)
    except OSError:
        return {}


class NVS:
    # Values live in the board's state dir (its flash). Like the chip, set_*/erase_key are
    # visible through this object at once but reach flash only on commit().

    def __init__(self, namespace):
        self._ns = namespace
        self._pending = {}  # key -> ["i32"|"blob", value] or None (erased)

    def _check_key(self, key):
        if len(key) > 15:
            raise OSError(_ERR_KEY_TOO_LONG, "ESP_ERR_NVS_KEY_TOO_LONG")

    def _entry(self, key):
        if key in self._pending:
            return self._pending[key]
        return _nvs_load().get(self._ns, {}).get(key)

    def _get(self, key, kind):
        entry = self._entry(key)
        if entry is None or entry[0] != kind:
            raise OSError(_ERR_NOT_FOUND, "ESP_ERR_NVS_NOT_FOUND")
        return entry[1]

    def set_i32(self, key, value):
        self._check_key(key)
        if not -0x80000000 <= value <= 0x7FFFFFFF:
            raise OverflowError("overflow converting long int to machine word")
        self._pending[key] = ["i32", value]

    def get_i32(self, key):
        return self._get(key, "i32")

    def set_blob(self, key, value):
        self._check_key(key)
        self._pending[key] = ["blob", binascii.hexlify(bytes(value)).decode()]

    def get_blob(self, key, buffer):
        data = binascii.unhexlify(self._get(key, "blob"))
        if len(data) > len(buffer):
            raise OSError(_ERR_INVALID_LENGTH, "ESP_ERR_NVS_INVALID_LENGTH")
        buffer[: len(data)] = data
        return len(data)

    def erase_key(self, key):
        if self._entry(key) is None:
            raise OSError(_ERR_NOT_FOUND, "ESP_ERR_NVS_NOT_FOUND")
        self._pending[key] = None

    def commit(self):
        data = _nvs_load()
        ns = data.setdefault(self._ns, {})
        for key, entry in self._pending.items():
            if entry is None:
                ns.pop(key, None)
            else:
                ns[key] = entry
        self._pending = {}
        path = _boardsim.state_path("nvs.json")
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.rename(path + ".tmp", path)
