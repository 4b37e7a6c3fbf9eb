# Bosch BME280 at the register level: chip id, calibration NVM, forced/normal mode, data registers.
# The calibration words for T and P are the datasheet's worked example, so the known-answer values
# hold; the raw ADC values drift around a room (about 22 degC, 45 %RH, 1007 hPa).
import struct

import _boardsim
from _i2creg import Registers

_CALIB_TP = (27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
_CALIB_H = (75, 370, 0, 313, 50, 30)  # dig_H1..dig_H6


class Device(Registers):
    def __init__(self, spec):
        super().__init__(spec, 256)
        self.raw = [510000, 415148, 28500]  # adc_T, adc_P, adc_H (integers walk in integers)
        self.reset()

    def reset(self):
        r = self.regs
        r[:] = bytes(256)
        r[0xD0] = 0x60
        r[0x88:0xA0] = struct.pack("<HhhHhhhhhhhh", *_CALIB_TP)
        h1, h2, h3, h4, h5, h6 = _CALIB_H
        r[0xA1] = h1
        r[0xE1:0xE4] = struct.pack("<hB", h2, h3)
        r[0xE4] = h4 >> 4
        r[0xE5] = (h4 & 0x0F) | ((h5 & 0x0F) << 4)
        r[0xE6] = h5 >> 4
        r[0xE7] = h6 & 0xFF
        r[0xF7:0xFF] = b"\x80\x00\x00\x80\x00\x00\x80\x00"  # data registers before a measurement

    def store(self, reg, value):
        if reg == 0xE0:
            if value == 0xB6:
                self.reset()
            return
        if reg in (0xF2, 0xF4, 0xF5):
            self.regs[reg] = value
        if reg == 0xF4 and value & 3 in (1, 2):  # forced mode: one measurement, then sleep
            self.measure()
            self.regs[0xF4] = value & 0xFC

    def refresh(self, reg, n):
        if self.regs[0xF4] & 3 == 3 and reg <= 0xFD and reg + n > 0xF7:  # normal mode
            self.measure()

    def measure(self):
        raw = self.raw
        raw[0] = _boardsim.drift(raw[0], 40, 500500, 519500)
        raw[1] = _boardsim.drift(raw[1], 30, 410000, 420000)
        raw[2] = _boardsim.drift(raw[2], 30, 26000, 31000)
        self._put20(0xF7, raw[1])
        self._put20(0xFA, raw[0])
        r = self.regs
        r[0xFD] = raw[2] >> 8
        r[0xFE] = raw[2] & 0xFF

    def _put20(self, reg, v):
        # A 20-bit ADC value as the part lays it out: msb, lsb, xlsb (bits 7..4).
        r = self.regs
        r[reg] = (v >> 12) & 0xFF
        r[reg + 1] = (v >> 4) & 0xFF
        r[reg + 2] = (v & 0x0F) << 4
