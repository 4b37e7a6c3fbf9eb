# TI INA219 current/power monitor: a pointer byte then 16-bit big-endian registers (config,
# shunt voltage 10 uV/LSB, bus voltage 4 mV/LSB in bits 15..3, power, current, calibration).
# The model powers a 5 V load drawing about 120 mA through a 0.1 ohm shunt.
import _boardsim

_CONFIG_RESET = 0x399F


class Device:
    def __init__(self, spec):
        self.name = spec["name"]
        self.regs = [_CONFIG_RESET, 0, 0, 0, 0, 0]
        self.ptr = 0
        self.amps = 0.12
        self.volts = 5.02

    def write(self, data):
        self.ptr = data[0]
        if len(data) >= 3 and self.ptr in (0, 5):
            value = (data[1] << 8) | data[2]
            if self.ptr == 0 and value & 0x8000:
                self.__init__({"name": self.name})
                return
            self.regs[self.ptr] = value

    def read(self, n):
        if self.ptr > 5:
            return bytes(n)
        if self.ptr in (1, 2, 3, 4):
            self.measure()
        value = self.regs[self.ptr]
        return bytes(((value >> 8) & 0xFF, value & 0xFF))[:n]

    def measure(self):
        self.amps = _boardsim.drift(self.amps, 0.002, 0.08, 0.16)
        self.volts = _boardsim.drift(self.volts, 0.004, 4.95, 5.08)
        shunt = int(self.amps * 0.1 / 10e-6)  # 10 uV per LSB
        bus = int(self.volts / 0.004)
        cal = self.regs[5]
        current = shunt * cal // 4096
        self.regs[1] = shunt & 0xFFFF
        self.regs[2] = (bus << 3) | 2  # CNVR: conversion ready
        self.regs[3] = (current * bus // 5000) & 0xFFFF
        self.regs[4] = current & 0xFFFF
