"""Per-client rate limiting: a token bucket per client address, in a small fixed table.

Each client may make `burst` requests at once and `per_s` a second after that; beyond it the
transport answers 429 with Retry-After. Levels are kept in thousandths of a request and time in
ms (small ints), so a check allocates nothing. The table holds SLOTS clients; a new client takes
the slot of the one heard from least recently (which then starts afresh if it returns).

    ratelimit.configure(20, 40)            # from config.json "http": {"rate": {"per_s": 20, "burst": 40}}
    wait_s = ratelimit.wait_s(peer)        # 0: go ahead; else refuse, Retry-After: wait_s
"""

import time

from micropython import const

SLOTS = const(8)
_UNIT = const(1000)  # one request, in thousandths

_per_s = 0  # 0: no limit
_cap = 0
_keys = [None] * SLOTS  # type: list
_level = [0] * SLOTS
_last = [0] * SLOTS  # type: list


def configure(per_s, burst):
    """Allow `burst` requests at once, refilled at `per_s` a second; per_s 0 turns limiting off."""
    global _per_s, _cap
    _per_s = max(0, int(per_s))
    _cap = max(1, int(burst)) * _UNIT
    for i in range(SLOTS):
        _keys[i] = None


def _key(peer):
    # The client's address: the esp32 port gives ("ip", port), the unix port a raw sockaddr
    # (family, port, then the IPv4 address in bytes 4-7). An int or the str, never a new object.
    if isinstance(peer, tuple):
        return peer[0]
    if isinstance(peer, (bytes, bytearray)) and len(peer) >= 8:
        return (peer[4] << 24) | (peer[5] << 16) | (peer[6] << 8) | peer[7]
    return peer


def wait_s(peer):
    """Take one request from this client's bucket: 0 when it may proceed, else the seconds
    until it may try again (for Retry-After)."""
    if not _per_s:
        return 0
    now = time.ticks_ms()
    slot = _slot(_key(peer), now)
    level = _refilled(slot, now)
    _last[slot] = now
    if level >= _UNIT:
        _level[slot] = level - _UNIT
        return 0
    _level[slot] = level
    return ((_UNIT - level) // _per_s + 999) // 1000 or 1


# Apart from wait_s(), so that each frame fits the C stack (one of more than 11 words, locals plus
# expression stack, is heap allocated on every call).
def _slot(key, now):
    # The client's slot: its own, else the one heard from least recently, given to it full.
    slot = -1
    oldest = 0
    for i in range(SLOTS):
        if _keys[i] == key:
            return i
        age = _age(i, now)
        if age >= oldest:
            oldest = age
            slot = i
    _keys[slot] = key
    _level[slot] = _cap
    _last[slot] = now
    return slot


def _age(i, now):
    # How long ago slot i's client was heard from (ms); an empty slot is the oldest of all.
    return time.ticks_diff(now, _last[i]) if _keys[i] is not None else 0x3FFFFFFF


def _refilled(slot, now):
    # The slot's level now. Elapsed ms times requests per second is exactly thousandths of a
    # request. A negative elapsed time is a ticks wrap-around (away for days): a full bucket.
    elapsed = time.ticks_diff(now, _last[slot])
    return _cap if elapsed < 0 else min(_cap, _level[slot] + min(elapsed, _cap) * _per_s)
