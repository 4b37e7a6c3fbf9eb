"""The heap the emulator adds to a profile's for its 64-bit words stays within what they cost the
firmware, measured against a 32-bit MicroPython (the sim's allowance: test_sim.py, test_sim_hw.py)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path
from typing import Any

from host_tools.emulator.runner import WORD_HEAP_BYTES, EmulatedBoard
from host_tools.official_suite import node_dir, node_executable
from host_tools.profiles import load_profile

VM32 = Path(__file__).parent / "vm32.mjs"

# Imports the resident firmware and prints the bytes it took. What a chip holds in flash (its
# built-in and frozen modules) and the sim are loaded first, so only the firmware is counted.
FIRMWARE_IMPORT = textwrap.dedent(
    """
    import gc, sys
    if sys.maxsize < 1 << 32:  # the WebAssembly VM: the staged files are where vm32.mjs put them
        import os
        sys.path[:0] = ["/sim", "/fs"]
        os.chdir("/fs")
    import _boardsim, esp32, machine, network
    import asyncio, json
    for name in ("asyncio.event", "asyncio.funcs", "asyncio.lock", "binascii", "io", "os", "time", "socket"):
        __import__(name)
    gc.collect()
    before = gc.mem_alloc()
    import boardmcp.app, boardmcp.auth, boardmcp.server, boardmcp.transport.http, boardmcp.transport.serial
    gc.collect()
    print(gc.mem_alloc() - before)
    """
)


def test_word_allowance_is_what_64_bit_words_cost_the_firmware(tmp_path: Path) -> None:
    """The emulator's VM is 64-bit, a chip 32-bit: the firmware's code takes more heap on the VM
    (8-byte pointers, 32-byte GC blocks). WORD_HEAP_BYTES gives that back, and must not exceed
    it: the same staged files imported on MicroPython's 32-bit WebAssembly port take at least
    that much less. Runtime objects (about 1.7 times their chip size on the VM) are not given
    back, so the emulated board stays the stricter of the two."""
    port = node_dir() / "node_modules" / "micropython-webassembly" / "micropython.mjs"
    assert port.is_file(), "MicroPython's WebAssembly port is not installed: run `make conformance-tools`"
    board = EmulatedBoard(load_profile("esp32"), workdir=tmp_path / "board")
    fs = board.stage()
    argv, env = board.vm_command(run_main=False)
    script = tmp_path / "import.py"
    script.write_text(FIRMWARE_IMPORT)
    on_vm = _bytes_printed([*argv, str(script)], env=env, cwd=fs)
    stubs = tmp_path / "stubs"  # the WebAssembly port has no sockets; importing needs only the name
    stubs.mkdir()
    (stubs / "socket.py").write_text("def __getattr__(name):\n    return 0\n")
    mounts = [f"{board.workdir / 'sim'}:/sim", f"{stubs}:/sim", f"{fs}:/fs"]
    on_32_bit = _bytes_printed([str(node_executable()), str(VM32), str(port), str(script), *mounts])
    print(f"firmware import: {on_vm:,} B on the VM, {on_32_bit:,} B on 32-bit; allowance {WORD_HEAP_BYTES:,} B")
    assert 0 < WORD_HEAP_BYTES <= on_vm - on_32_bit


def _bytes_printed(argv: list[str], **how: Any) -> int:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, **how)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return int(proc.stdout.split()[-1])
