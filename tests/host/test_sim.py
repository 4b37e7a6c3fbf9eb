"""The simulated machine/network/esp32 modules, run on the real MicroPython VM."""

from __future__ import annotations

import signal

from host_tools.emulator.runner import SIM_HEAP_BYTES, board_mac


def test_pin_basics(sim) -> None:
    out = sim.ok(
        """
        from machine import Pin
        import machine
        p = Pin(21, Pin.OUT, value=1)
        print(p.value(), p(), p.mode())
        p.off(); print(p.value()); p.toggle(); print(p.value())
        print(Pin(4, Pin.IN, Pin.PULL_UP).value(), Pin(5, Pin.IN, Pin.PULL_DOWN).value(), Pin(4).pull())
        for bad in (22, 49, -1, "X"):
            try:
                Pin(bad)
            except ValueError as e:
                print("bad", bad, e)
        hits = []
        b = Pin(4, Pin.IN, Pin.PULL_UP)
        b.irq(hits.append, Pin.IRQ_FALLING)
        machine._drive(4, 0); machine._drive(4, 1)
        print(hits, b.irq().flags())
        s = machine.Signal(Pin(6, Pin.OUT), invert=True)
        s.on(); print(Pin(6).value(), s.value())
        """
    )
    assert out == [
        "1 1 3",
        "0",
        "1",
        "1 0 2",
        "bad 22 invalid pin",
        "bad 49 invalid pin",
        "bad -1 invalid pin",
        "bad X invalid pin",
        "[Pin(4)] 2",
        "0 1",
    ]


def test_input_only_pins_on_esp32(sim) -> None:
    sim.configure(chip="esp32")
    out = sim.ok(
        """
        from machine import Pin
        print(Pin(36, Pin.IN).value())
        try:
            Pin(36, Pin.OUT)
        except ValueError as e:
            print(e)
        """
    )
    assert out == ["0", "pin can only be input"]


def test_machine_identity_and_clock(sim) -> None:
    out = sim.ok(
        """
        import machine, binascii
        print(binascii.hexlify(machine.unique_id(), ":").decode())
        print(machine.freq()); machine.freq(240000000); print(machine.freq())
        try:
            machine.freq(123)
        except ValueError:
            print("rejected")
        print(machine.reset_cause() == machine.PWRON_RESET)
        """
    )
    assert out == [board_mac("test"), "160000000", "240000000", "rejected", "True"]


def test_wlan_connect_status_ipconfig(sim) -> None:
    out = sim.ok(
        """
        import network, time
        w = network.WLAN(network.WLAN.IF_STA)
        try:
            w.connect("lab", "secret")
        except OSError as e:
            print("inactive", e)
        w.active(True)
        print(w.scan()[0][0], w.ipconfig("addr4"))
        w.connect("lab", "secret")
        print(w.status() == network.STAT_CONNECTING, w.isconnected())
        time.sleep_ms(400)
        print(w.status() == network.STAT_GOT_IP, w.isconnected(), w.ipconfig("addr4"), w.ifconfig()[0])
        print(-54 <= w.status("rssi") <= -46, w.config("mac") == network.WLAN(network.STA_IF).config("mac"))
        w.connect("lab", "wrong"); time.sleep_ms(400); print(w.status() == network.STAT_WRONG_PASSWORD)
        w.connect("elsewhere", "secret"); time.sleep_ms(400); print(w.status() == network.STAT_NO_AP_FOUND)
        network.hostname("boardmcp-x"); print(network.hostname(), w.config("hostname"))
        ap = network.WLAN(network.AP_IF); ap.active(True)
        print(ap.ipconfig("addr4"), ap.isconnected())
        """
    )
    assert out == [
        "inactive Wifi Not Started",
        "b'lab' ('0.0.0.0', '0.0.0.0')",
        "True False",
        "True True ('127.0.0.1', '255.255.255.0') 127.0.0.1",
        "True True",
        "True",
        "True",
        "boardmcp-x boardmcp-x",
        "('192.168.4.1', '255.255.255.0') False",
    ]


def test_nvs_persists_only_committed_changes(sim) -> None:
    out = sim.ok(
        """
        import esp32
        n = esp32.NVS("boardmcp")
        n.set_i32("boots", 7); n.set_blob("ssid", b"lab")
        n.commit()
        n.set_i32("lost", 1)
        buf = bytearray(8)
        print(n.get_i32("lost"), n.get_blob("ssid", buf), bytes(buf[:3]))
        """
    )
    assert out == ["1 3 b'lab'"]
    out = sim.ok(
        """
        import esp32
        n = esp32.NVS("boardmcp")
        print(n.get_i32("boots"))
        for key in ("lost", "ssid"):
            try:
                n.get_i32(key)
            except OSError as e:
                print(key, e.args[0])
        try:
            n.get_blob("ssid", bytearray(2))
        except OSError as e:
            print("short", e.args[0])
        n.erase_key("boots"); n.commit()
        print(esp32.NVS("boardmcp")._entry("boots"), esp32.NVS("other")._entry("ssid"))
        """
    )
    assert out == ["7", "lost -4354", "ssid -4354", "short -4364", "None None"]


def test_esp32_temperature_and_heap(sim) -> None:
    out = sim.ok(
        """
        import esp32
        print(30 < esp32.mcu_temperature() < 60, len(esp32.idf_heap_info(esp32.HEAP_DATA)[0]))
        """
    )
    assert out == ["True 4"]


def test_machine_reset_ends_the_vm_with_the_reset_signal(sim) -> None:
    proc = sim.run("import machine\nprint('before')\nmachine.reset()\nprint('after')")
    assert proc.returncode == -signal.SIGUSR1
    assert proc.stdout == "before\n"
    assert (sim.dir / "reset_request").read_text() == "2"


def test_watchdog_resets_when_not_fed(sim) -> None:
    proc = sim.run(
        """
        import machine, time
        wdt = machine.WDT(timeout=300)
        for _ in range(5):
            time.sleep_ms(100); wdt.feed()
        print("fed")
        time.sleep(3)
        print("not reached")
        """
    )
    assert proc.returncode == -signal.SIGUSR1
    assert proc.stdout.startswith("fed\n")
    assert "task_wdt: Task watchdog got triggered" in proc.stdout
    assert (sim.dir / "reset_request").read_text() == "3"


def test_sim_fits_its_heap_allowance(sim) -> None:
    """The emulator adds SIM_HEAP_BYTES to the profile's heap for the simulated modules, which
    cost nothing on a chip; they must fit in it, or the firmware would see less than the chip's."""
    out = sim.ok(
        """
        import gc
        gc.collect(); before = gc.mem_alloc()
        import machine, network, esp32, _boardsim
        gc.collect(); print(gc.mem_alloc() - before)
        """
    )
    assert 0 < int(out[0]) <= SIM_HEAP_BYTES
