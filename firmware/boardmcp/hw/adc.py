"""Analog inputs, calibrated: read_uv() (eFuse-calibrated microvolts) averaged over samples,
then scaled for the divider in front of the pin.

    ch = Channel(1, "11db", scale=2.0, samples=8)   # battery through a 1:2 divider
    ch.read() -> 3.92 (volts at the battery)
"""

from machine import ADC, Pin

ATTEN = {"0db": ADC.ATTN_0DB, "2.5db": ADC.ATTN_2_5DB, "6db": ADC.ATTN_6DB, "11db": ADC.ATTN_11DB}


class Channel:
    """One ADC pin with its attenuation, averaging and scale."""

    def __init__(self, pin, atten="11db", scale=1.0, samples=8):
        self.adc = ADC(Pin(pin), atten=ATTEN[atten])
        self.scale = scale
        self.samples = samples

    def volts(self):
        """Volts at the pin: the mean of `samples` calibrated readings."""
        total = 0
        for _ in range(self.samples):
            total += self.adc.read_uv()
        return total / self.samples / 1000000

    def read(self):
        """The reading in the channel's unit: pin volts times scale."""
        return self.volts() * self.scale
