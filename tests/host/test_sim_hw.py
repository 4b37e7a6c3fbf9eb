"""The emulator's simulated peripherals on the real MicroPython VM: I2C buses with register-level
parts, faults injected while the board runs, ADC, PWM and 1-Wire."""

from __future__ import annotations

import json
from pathlib import Path

from host_tools.emulator.runner import SIM_HEAP_BYTES, EmulatedBoard, sim_hardware
from host_tools.profiles import load_profile

BUS = {
    "name": "i2c0",
    "sda": 8,
    "scl": 9,
    "devices": [{"type": "bme280", "address": 0x76, "name": "env"}, {"type": "sht4x", "address": 0x44, "name": "rh"}],
}


def test_wired_parts_are_there_from_power_on(sim) -> None:
    """`import machine` is power-on: the parts sim.json wires are loaded then, as a chip's exist
    from the start, and not at the first request that uses them, in a heap the firmware has
    fragmented; the peripheral classes of a board with no parts still load on first use."""
    check = """
        import sys
        import machine
        print(sorted(m for m in ("_machine_i2c", "_dev_bme280", "_dev_sht4x", "_onewire", "_dev_ds18b20")
                     if m in sys.modules))
        """
    wire = {"name": "probe", "pin": 4, "devices": [{"type": "ds18b20", "name": "probe"}]}
    sim.configure(i2c=[BUS], onewire=[wire])
    assert sim.ok(check) == ["['_dev_bme280', '_dev_ds18b20', '_dev_sht4x', '_machine_i2c', '_onewire']"]
    sim.configure(i2c=[dict(BUS, devices=[])])
    assert sim.ok(check) == ["[]"]


def test_i2c_default_pins_scan_and_register_reads(sim) -> None:
    sim.configure(i2c=[BUS])
    out = sim.ok(
        """
        from machine import I2C, SoftI2C, Pin
        i2c = I2C(0)  # esp32s3: SCL 9, SDA 8 by default
        print(i2c.scan(), i2c.readfrom_mem(0x76, 0xD0, 1))
        buf = bytearray(2); i2c.readfrom_mem_into(0x76, 0x88, buf); print(bytes(buf))
        print(SoftI2C(Pin(9), Pin(8)).scan(), I2C(1, scl=Pin(4), sda=Pin(5)).scan())
        for bad in (2, -2):
            try:
                I2C(bad)
            except ValueError as e:
                print(e)
        """
    )
    assert out == [
        "[68, 118] b'`'",
        "b'pk'",  # dig_T1 = 27504, little-endian
        "[68, 118] []",
        "I2C(2) doesn't exist",
        "I2C(-2) doesn't exist",
    ]


def test_i2c_primitive_operations(sim) -> None:
    sim.configure(i2c=[BUS])
    out = sim.ok(
        """
        from machine import SoftI2C, Pin
        i2c = SoftI2C(scl=Pin(9), sda=Pin(8))
        i2c.start(); print(i2c.write(bytes((0x76 << 1, 0xD0)))); i2c.stop()
        i2c.start(); i2c.write(bytes((0x76 << 1 | 1,))); buf = bytearray(1); i2c.readinto(buf); i2c.stop()
        print(bytes(buf))
        i2c.start(); print(i2c.write(bytes((0x50 << 1, 0)))); i2c.stop()  # nobody: no ACK
        print(i2c.writevto(0x76, (b"\\xf2", b"\\x03")), i2c.readfrom_mem(0x76, 0xF2, 1))
        """
    )
    assert out == ["2", "b'`'", "0", "2 b'\\x03'"]


def test_faults_apply_from_the_next_transaction_and_clear(sim) -> None:
    sim.configure(i2c=[BUS])
    faults = sim.state / "faults.json"
    proc = sim.run(
        f"""
        import time
        import _boardsim
        from machine import I2C
        i2c = I2C(0)
        def attempt(what):
            try:
                r = what()
                print("ok", r)
            except OSError as e:
                print("OSError", e.errno)
        def fault(d):
            with open({str(faults)!r}, "w") as f:
                f.write(d)
            time.sleep_ms(_boardsim.POLL_MS + 5)  # the sim looks again within POLL_MS
        fault('{{"env": "absent"}}'); attempt(i2c.scan); attempt(lambda: i2c.readfrom_mem(0x76, 0xD0, 1))
        fault('{{"i2c0": "stuck"}}'); attempt(i2c.scan); attempt(lambda: i2c.readfrom_mem(0x44, 0, 1))
        fault('{{"rh": "crc"}}'); i2c.writeto(0x44, b"\\xfd"); d = i2c.readfrom(0x44, 6)
        from _i2creg import crc8
        print(crc8(d[0:2]) == d[2], crc8(d[3:5]) == d[5])
        fault("{{}}"); attempt(i2c.scan)
        """
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "ok [68]",
        "OSError 19",
        "OSError 116",
        "OSError 116",
        "True False",
        "ok [68, 118]",
    ]


def test_inject_fault_writes_what_the_sim_reads(tmp_path: Path, sim) -> None:
    board = EmulatedBoard(load_profile("esp32s3"), workdir=tmp_path / "board")
    board.inject_fault("bme280", "absent")
    board.inject_fault("i2c0", "stuck")
    board.inject_fault("i2c0", None)
    state = tmp_path / "board" / "state"
    assert json.loads((state / "faults.json").read_text()) == {"bme280": "absent"}
    sim.configure(state_dir=str(state), **sim_hardware(load_profile("esp32s3")))
    assert sim.ok("from machine import I2C\nprint(I2C(0).scan())") == ["[35]"]  # the BH1750 only


def test_adc_units_channels_and_attenuation(sim) -> None:
    sim.configure(analog={"1": 1.2, "11": 0.5})
    out = sim.ok(
        """
        from machine import ADC, ADCBlock, Pin
        a = ADC(Pin(1), atten=ADC.ATTN_11DB)
        print(1190000 <= a.read_uv() <= 1210000, a.block()._id, ADC(11).block()._id)
        print(ADC(Pin(1), atten=ADC.ATTN_0DB).read_uv(), ADC(Pin(1)).read_u16())
        print(ADCBlock(1).connect(0)._pin, ADCBlock(2).connect(Pin(12))._pin, ADCBlock(1).connect(9, Pin(10))._pin)
        for bad in (lambda: ADC(Pin(40)), lambda: ADCBlock(1).connect(10), lambda: ADCBlock(1).connect(0, Pin(2)),
                    lambda: a.atten(7), lambda: a.width(12)):
            try:
                bad()
            except ValueError as e:
                print(e)
        """
    )
    assert out[0] == "True 1 2"
    assert out[1] == "950000 65535"  # 0 dB tops out at 0.95 V
    assert out[2:] == ["1 12 10", "invalid pin", "invalid channel", "invalid source", "invalid attn", "invalid bits"]


def test_adc_on_the_esp32(sim) -> None:
    sim.configure(chip="esp32", analog={"35": 1.0})
    out = sim.ok(
        """
        from machine import ADC, ADCBlock, Pin
        a = ADCBlock(1).connect(7, atten=ADC.ATTN_11DB)  # channel 7 of ADC1 is GPIO35
        a.width(ADC.WIDTH_9BIT)
        print(a._pin, 0 < a.read() < 512)
        """
    )
    assert out == ["35 True"]


def test_pwm(sim) -> None:
    out = sim.ok(
        """
        from machine import PWM, Pin
        p = PWM(Pin(5), freq=1000, duty_u16=16384)
        print(p.freq(), p.duty_u16(), p.duty(), p.duty_ns(), Pin(5).mode() == Pin.OUT)
        p.init(freq=2000, duty_ns=250000); print(p.freq(), p.duty_u16())
        p.deinit(); print(p.duty_u16())
        try:
            p.freq(0)
        except ValueError as e:
            print(e)
        """
    )
    assert out == ["1000 16384 256 250003 True", "2000 32767", "0", "frequency must be from 1Hz to 40MHz"]


def test_onewire_search_finds_each_part(sim) -> None:
    sim.configure(onewire=[{"name": "w", "pin": 4, "devices": [{"type": "ds18b20", "name": n} for n in "ab"]}])
    out = sim.ok(
        """
        import onewire
        from machine import Pin
        ow = onewire.OneWire(Pin(4))
        roms = ow.scan()
        print(len(roms), len(set(bytes(r) for r in roms)), [r[0] for r in roms], [ow.crc8(r) for r in roms])
        print(onewire.OneWire(Pin(5)).scan(), onewire.OneWire(Pin(5)).reset())
        try:
            onewire.OneWire(Pin(5)).reset(True)
        except onewire.OneWireError:
            print("no presence pulse")
        """
    )
    assert out == ["2 2 [40, 40] [0, 0]", "[] False", "no presence pulse"]


def test_sim_with_the_default_boards_parts_fits_its_heap_allowance(sim) -> None:
    """With the esp32s3 profile's I2C parts and ADC in use, the sim still fits SIM_HEAP_BYTES."""
    sim.configure(**sim_hardware(load_profile("esp32s3")))
    out = sim.ok(
        """
        import gc
        gc.collect(); before = gc.mem_alloc()
        import machine, network, esp32, _boardsim
        from machine import I2C, ADC, Pin
        i2c = I2C(0); i2c.scan(); adc = ADC(Pin(1))
        gc.collect(); print(gc.mem_alloc() - before)
        """
    )
    assert 0 < int(out[0]) <= SIM_HEAP_BYTES
