# Shared state of the emulated board, for the sim modules (machine, network, esp32).
# Runs inside the MicroPython VM. The runner writes sim.json beside this file for each
# board instance; it is read once, on first use.
import json
import os
import random
import time

# The VM process *is* the board, so a reset ends it and the runner starts a new one.
# `sys.exit()` cannot do that: under `micropython -i` a SystemExit from main.py
# drops into the REPL, and a thread (the watchdog) cannot end the process at all. So the
# VM writes the reset cause to `reset_request` beside sim.json and kills itself with
# SIGUSR1, the one signal the runner reserves for "the board reset itself".
RESET_SIGNAL = 10  # SIGUSR1
# reset_request holds a machine.*_RESET constant; SOFT_RESET means a soft reboot.
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

# What each chip has: valid GPIOs, input-only GPIOs, CPU frequencies (MHz), temperature sensor.
CHIPS = {
    "esp32": {
        "gpio": tuple(range(0, 20)) + (21, 22, 23, 25, 26, 27) + tuple(range(32, 40)),
        "input_only": tuple(range(34, 40)),
        "freqs": (80, 160, 240),
        "temp": False,
    },
    "esp32s3": {
        "gpio": tuple(range(0, 22)) + tuple(range(26, 49)),
        "input_only": (),
        "freqs": (80, 160, 240),
        "temp": True,
    },
    "esp32c3": {
        "gpio": tuple(range(0, 22)),
        "input_only": (),
        "freqs": (80, 160),
        "temp": True,
    },
}

_config = None


def config():
    # The sim.json the runner wrote for this board instance.
    global _config
    if _config is None:
        with open(sim_path("sim.json")) as f:
            _config = json.load(f)
    return _config


def model(part):
    # The register-level model (_dev_<type>.py) of a part sim.json wires to a bus or a pin.
    return __import__("_dev_" + part["type"]).Device(part)


def chip():
    return CHIPS[config()["chip"]]


def sim_path(name):
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    return here + "/" + name


def state_path(name):
    # A file in the board's persistent state dir (survives resets, like flash).
    return config()["state_dir"] + "/" + name


def reset_board(cause, message=None):
    # Ends the VM at once, from any thread, like a chip resetting; the runner restarts it.
    if message:
        print(message)
    with open(sim_path("reset_request"), "w") as f:
        f.write(str(cause))
    os.system("kill -%d $PPID" % RESET_SIGNAL)
    while True:  # the signal lands while system() returns
        pass


# What each chip's ADC units reach, in channel order: ADC1 pins (usable with Wi-Fi) and ADC2 pins
# (Wi-Fi owns them).
ADC_PINS = {
    "esp32": ((36, 37, 38, 39, 32, 33, 34, 35), (4, 0, 2, 15, 13, 12, 14, 27, 25, 26)),
    "esp32s3": (tuple(range(1, 11)), tuple(range(11, 21))),
    "esp32c3": ((0, 1, 2, 3, 4), (5,)),
}


# Tests change what the hardware does while the board runs, through JSON files in the state dir
# (EmulatedBoard.inject_fault, set_environment). A file is looked at again at most every POLL_MS:
# looking costs heap (a missing file's stat() raises, about 300 B with its traceback), and what
# the sim allocates is counted in every request the firmware serves, where a chip's C modules
# allocate nothing to check their hardware. So a change takes effect within POLL_MS, and whoever
# writes one waits longer than that before relying on it (the runner waits STATE_SETTLE_S).
POLL_MS = 20
_state = {}  # file name -> [when last read (ticks_ms), its contents or None (no file)]


def _read_state(name):
    # A state file's contents (parsed JSON), or None when there is none; at most POLL_MS old.
    entry = _state.get(name)
    if entry is None or time.ticks_diff(time.ticks_ms(), entry[0]) >= POLL_MS:
        entry = _state[name] = [time.ticks_ms(), _load_state(name)]
    return entry[1]


def _load_state(name):
    # Apart from _read_state(), whose frame then fits the C stack (the VM puts a frame of more than
    # 11 words, a try's included, on the heap): looking up the cached entry allocates nothing.
    try:
        with open(state_path(name)) as f:
            return json.load(f)
    except OSError:
        return None


_NO_FAULTS = {}  # read only


def faults():
    # Every injected fault, {name: fault}; the runner deletes faults.json once the last fault is
    # repaired.
    return _read_state("faults.json") or _NO_FAULTS


def fault(name):
    # The fault injected on a device or bus ("absent", "crc", "stuck") or on Wi-Fi ("down"), or
    # None, from its next transaction on.
    return faults().get(name)


def environment(name):
    # What a test fixed a device's sensed values to ({"lux": 900}), or None: environment.json in
    # the state dir (EmulatedBoard.set_environment).
    env = _read_state("environment.json")
    return None if env is None else env.get(name)


def drift(value, step, lo, hi):
    # One step of a bounded random walk: how a reading wanders between samples. An integer (a raw
    # ADC count) walks in integers: a float is a heap object on the VM, a chip's counter is not.
    if isinstance(step, int):
        value += ((random.getrandbits(8) - 128) * step + 64) >> 7
    else:
        value += (random.getrandbits(8) - 127.5) * step / 128
    return lo if value < lo else hi if value > hi else value
