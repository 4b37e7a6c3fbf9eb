# Shared state of the emulated board, for the sim modules (machine, network, esp32).
# Runs inside the MicroPython VM. The runner writes sim.json beside this file for each
# board instance; it is read once, on first use.
import json
import os
import random

# The VM process *is* the board, so a reset ends it and the runner starts a new one.
# `sys.exit()` cannot do that: under `micropython -i main.py` a SystemExit from main.py
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


_NO_FAULTS = {}  # read only
_faults_path = None


def faults():
    # Every injected fault, {name: fault}. Tests write faults.json in the state dir while the
    # board runs, so it is re-read on every call; the runner deletes it when the last fault is
    # repaired, so a healthy board pays one failed stat() per check: what the sim allocates is
    # counted in every request the firmware serves, and a chip's I2C allocates almost nothing.
    global _faults_path
    if _faults_path is None:
        _faults_path = state_path("faults.json")
    try:
        os.stat(_faults_path)
        with open(_faults_path) as f:
            return json.load(f)
    except OSError:
        return _NO_FAULTS


def fault(name):
    # The fault injected on a device or bus ("absent", "crc", "stuck") or on Wi-Fi ("down"), or
    # None, from its next transaction on.
    return faults().get(name)


def environment(name):
    # What a test fixed a device's sensed values to ({"lux": 900}), or None: environment.json in
    # the state dir (EmulatedBoard.set_environment), re-read on every measurement.
    try:
        with open(state_path("environment.json")) as f:
            return json.load(f).get(name)
    except OSError:
        return None


def drift(value, step, lo, hi):
    # One step of a bounded random walk: how a reading wanders between samples.
    value += (random.getrandbits(8) - 127.5) * step / 128
    return lo if value < lo else hi if value > hi else value
