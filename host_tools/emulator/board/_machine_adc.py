# machine.ADC of the emulated board (loaded by machine on first use).
import _boardsim
from machine import Pin, _pin_id

# The volts on each pin come from sim.json "analog" {"<pin>": volts}, with a little noise.
_ADC_FULL_SCALE = (0.95, 1.25, 1.75, 3.1)  # volts at ATTN_0DB, 2_5DB, 6DB, 11DB (calibrated range)


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_9BIT = 9
    WIDTH_10BIT = 10
    WIDTH_11BIT = 11
    WIDTH_12BIT = 12
    WIDTH_13BIT = 13

    def __init__(self, id, *, sample_ns=None, atten=0):
        pin = _pin_id(id)
        adc1, adc2 = _boardsim.ADC_PINS[_boardsim.config()["chip"]]
        if pin not in adc1 and pin not in adc2:
            raise ValueError("invalid pin")
        self._pin = pin
        self._block = 1 if pin in adc1 else 2
        self._atten = 0
        self._bits = 12
        self.init(atten=atten)

    def init(self, *, sample_ns=None, atten=None):
        if atten is not None:
            self.atten(atten)

    def deinit(self, *args, **kwargs):
        pass

    def atten(self, atten):
        if atten not in (0, 1, 2, 3):
            raise ValueError("invalid attn")
        self._atten = atten

    def block(self):
        return ADCBlock(self._block)

    def width(self, bits):
        if _boardsim.config()["chip"] != "esp32" or bits not in (9, 10, 11, 12):
            raise ValueError("invalid bits")
        self._bits = bits

    def _volts(self):
        level = _boardsim.config().get("analog", {}).get(str(self._pin), 0.0)
        v = _boardsim.drift(level, 0.004, 0.0, 3.6)
        fs = _ADC_FULL_SCALE[self._atten]
        return fs if v > fs else v

    def read_uv(self):
        return int(self._volts() * 1000 + 0.5) * 1000  # calibrated, 1 mV resolution

    def read_u16(self):
        return min(65535, int(self._volts() / _ADC_FULL_SCALE[self._atten] * 65536))

    def read(self):
        return self.read_u16() >> (16 - self._bits)


class ADCBlock:
    # One ADC unit (1 or 2): connect(channel), connect(pin) or connect(channel, pin) -> ADC.
    def __init__(self, id, *, bits=None):
        if id not in (1, 2) or not _boardsim.ADC_PINS[_boardsim.config()["chip"]][id - 1]:
            raise ValueError("invalid block id")
        self._id = id
        self.init(bits=bits)

    def init(self, *, bits=None):
        if bits is not None and bits not in (9, 10, 11, 12, 13):
            raise ValueError("invalid bits")

    def connect(self, channel, source=None, **kwargs):
        pins = _boardsim.ADC_PINS[_boardsim.config()["chip"]][self._id - 1]
        if isinstance(channel, Pin) and source is None:
            channel, source = None, channel
        if channel is not None and not 0 <= channel < len(pins):
            raise ValueError("invalid channel")
        pin = pins[channel] if source is None else _pin_id(source)
        if pin not in pins or (channel is not None and pins[channel] != pin):
            raise ValueError("invalid source")
        return ADC(pin, **kwargs)
