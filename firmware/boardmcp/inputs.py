"""Asking the client for input (`ctx.ask`), in both eras. Loaded on the first ask.

Handshake era: a request of the server's own goes to the client on the stream of the request
that asks, and the answer comes back in a message of its own.

Revision 2026-07-28's `input_required`: a tool that needs client input returns the requests,
the client retries with `inputResponses`, and `requestState` carries what was gathered in
earlier rounds. The state is the client's to hold, so it is signed (HMAC-SHA256 under a
per-boot key) and bound to the tool and an expiry; the board keeps nothing between rounds.
"""

import asyncio
import binascii
import hashlib
import json
import os
import time

from micropython import const

from . import kept
from .context import Cancelled, InputRequired
from .jsonrpc import INVALID_PARAMS, Error

MISSING_CAPABILITY = const(-32021)
ASK_TIMEOUT_MS = const(120000)  # a person may be answering an elicitation
STATE_TTL_S = const(600)  # how long a requestState stays valid

# Which client capability each server-to-client request needs.
_NEEDS = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}


async def ask(ctx, requests):
    """`ctx.ask(requests)`: the client's answers, `{key: result}`, to `{key: (method, params)}`
    (see Context.ask). A client that lacks a needed capability gets -32021."""
    needed = {}
    for key in requests:
        cap = _NEEDS.get(requests[key][0])
        if cap is not None and not ctx.supports(cap):
            needed[cap] = {}
    if needed:
        raise Error(MISSING_CAPABILITY, "Missing required client capability", {"requiredCapabilities": needed})
    if ctx.modern:
        return answers(ctx, requests)
    out = {}
    for key in requests:
        method, params = requests[key]
        out[key] = await _request(ctx, method, params)
    return out


async def _request(ctx, method, params):
    # Handshake era: one request of ours on the asking request's stream, and the client's answer.
    session = ctx.session
    if session is None or ctx.out is None:
        raise Error(INVALID_PARAMS, "This transport cannot carry requests to the client")
    rid = session.next_id()
    slot = [asyncio.Event(), None]
    session.pending[rid] = slot
    ctx._wake = slot[0]  # cancel() wakes this wait too
    try:
        if ctx.cancelled:
            raise Cancelled()
        try:
            await ctx.out.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        except OSError:
            ctx.cancelled = True  # the client went away mid-stream
            raise Cancelled()
        try:
            await asyncio.wait_for_ms(slot[0].wait(), ASK_TIMEOUT_MS)
        except asyncio.TimeoutError:
            raise Error(INVALID_PARAMS, "The client did not answer %s in time" % method)
    finally:
        ctx._wake = None
        session.pending.pop(rid, None)
    if ctx.cancelled or session.ended or slot[1] is None:
        raise Cancelled()
    reply = slot[1]
    if "error" in reply:
        err = reply["error"] if isinstance(reply["error"], dict) else {}
        raise Error(INVALID_PARAMS, "The client refused %s: %s" % (method, err.get("message", "error")))
    return reply.get("result")


def answers(ctx, requests):
    """Revision 2026-07-28: `{key: the client's answer}` for every request, or raise
    InputRequired for those missing.

    Answers come from this retry's inputResponses or, for earlier rounds, from our
    signed requestState; everything gathered so far is sealed into the next state.
    """
    if ctx.gathered is None:
        ctx.gathered = _open_state(ctx.state, ctx.target) if ctx.state is not None else {}
    gathered = ctx.gathered
    fresh = ctx.responses if isinstance(ctx.responses, dict) else {}
    missing = {}
    out = {}
    for key in requests:
        method, params = requests[key]
        value = fresh.get(key)
        if _valid_answer(method, value):
            gathered[key] = value
        else:
            value = gathered.get(key)
        if value is None:
            missing[key] = {"method": method, "params": params}
        else:
            out[key] = value
    if missing:
        raise InputRequired(missing, _seal_state(ctx.target, gathered))
    return out


def _valid_answer(method, value):
    if not isinstance(value, dict):
        return False
    if method == "elicitation/create":
        return value.get("action") in ("accept", "decline", "cancel")
    if method == "sampling/createMessage":
        return isinstance(value.get("content"), (dict, list))
    if method == "roots/list":
        return isinstance(value.get("roots"), list)
    return True


def _mac(payload):
    # HMAC-SHA256 (RFC 2104) over the state payload, keyed by this boot's secret (kept in the
    # package: this module is unloaded when the heap runs short, and a new key would void states).
    secret = kept("inputs.secret", _new_secret)
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in secret) + bytes(32))
    inner.update(payload)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in secret) + bytes(32))
    outer.update(inner.digest())
    return binascii.hexlify(outer.digest())


def _new_secret():
    return os.urandom(32)


def _seal_state(target, answers):
    # The answers gathered so far travel with the client, signed, so the board keeps nothing.
    state = {"n": target, "a": answers, "x": time.time() + STATE_TTL_S}
    payload = binascii.b2a_base64(json.dumps(state).encode()).strip()
    return (payload + b"." + _mac(payload)).decode()


def _open_state(state, target):
    if not isinstance(state, str):
        raise Error(INVALID_PARAMS, "requestState must be the string the server sent")
    dot = state.rfind(".")
    payload = state[: max(dot, 0)].encode()
    mac = _mac(payload)
    got = state[dot + 1 :].encode()
    diff = len(mac) ^ len(got)
    for i in range(min(len(mac), len(got))):
        diff |= mac[i] ^ got[i]
    if dot < 0 or diff:
        raise Error(INVALID_PARAMS, "requestState was altered or is not ours; call again without it")
    state = json.loads(binascii.a2b_base64(payload))
    if state["n"] != target:
        raise Error(INVALID_PARAMS, "requestState belongs to another request; call again without it")
    if state["x"] < time.time():
        raise Error(INVALID_PARAMS, "requestState has expired; call again without it")
    return state["a"]
