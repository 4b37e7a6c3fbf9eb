"""The firmware's per-request functions keep their frames on the C stack.

A frame over 11 words (host_tools/mpy_frames.py) is allocated from the heap on every call, and
a multi-block allocation is the costliest kind in a fragmented heap; on a tight board every
allocation also brings the next collection closer. These functions run for every request (a
modern-era keep-alive tools/call over HTTP); each fits today, and this keeps it so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from host_tools.emulator.runner import find_micropython
from host_tools.mpy_frames import C_STACK_WORDS, module_frames
from host_tools.profiles import repo_root
from host_tools.stage import find_mpy_cross

PER_REQUEST = {
    "jsonrpc.py": (
        "decode",
        "_loads",
        "classify",
        "valid_id",
        "is_large",
        "dump_result",
        "_holds_raw",
        "dump",
        "_structured",
        "_with_text",
        "_escape",
    ),
    "auth.py": ("check", "_known", "_is", "_hostname", "_bearer", "_digest", "_origin_ok", "_token_ok"),
    "transport/http.py": (
        "_find",
        "get",
        "raw",
        "equals",
        "which",
        "_only",
        "_which",
        "_end",
        "_skip",
        "has",
        "starts",
        "__contains__",
        "number",
        "_digits",
        "_body_length",
        "_decoded",
        "read",
        "clear",
        "_parse_head",
        "_request_line",
        "_check_utf8",
        "check_fields",
        "_lower",
        "_cased",
        "_folded",
        "_method",
        "_lend",
        "_release",
        "_pass",
        "_route",
        "_admit",
        "_post",
        "_message",
        "_request",
        "_answer",
        "_path",
        "_refused",
        "begin",
        "done",
        "expire",
        "_context",
        "finish",
        "_json",
        "_accepts",
    ),
    "transport/buffers.py": ("stream", "copy_out", "send", "put", "put_int", "_fill", "release"),
    "server.py": (
        "is_modern",
        "decode_header_value",
        "_check_envelope",
        "_check_routing_headers",
        "_names",
        "_check_param_headers",
        "context",
        "handle",
        "_method",
        "_tools_call",
        "_complete",
        "turn",
        "done",
    ),
    "context.py": ("begin", "end"),
    # The default board's sensor tool, down to its driver's formulas.
    "tools/sensors.py": ("tool_handler", "read", "_fault"),
    "hw/i2c.py": ("read_into", "write"),
    "hw/sensors/bme280.py": ("read", "_measure", "compensate", "_t_fine", "_pressure", "_humidity"),
    "registry.py": ("structured", "is_coroutine", "_served", "trim", "_unloadable"),
    "ratelimit.py": ("wait_s", "_key", "_slot", "_age", "_refilled"),
    # A tool's arguments as an object without members (most tools): no heap frame. Members, items
    # and a list's length take one each (_check_members, _check_member, _check_list).
    "schema.py": (
        "check",
        "_check_any",
        "_types_ok",
        "_type_ok",
        "_where",
        "_check_number",
        "_check_length",
        "_missing",
        "_join",
    ),
}


@pytest.mark.parametrize("module", sorted(PER_REQUEST))
def test_per_request_functions_keep_their_frames_on_the_c_stack(module: str) -> None:
    found: dict[str, list[int]] = {}
    for frame in module_frames(find_mpy_cross(), repo_root() / "firmware" / "boardmcp" / module):
        found.setdefault(frame.name, []).append(frame.words)
    for name in PER_REQUEST[module]:
        assert name in found, f"{module} has no function {name}: renamed? update PER_REQUEST"
        worst = max(found[name])
        assert worst <= C_STACK_WORDS, (
            f"{module}:{name} needs a {worst}-word frame, so every call allocates it from the heap "
            f"(at most {C_STACK_WORDS}: fewer locals, shallower expressions, a try moved to a helper)"
        )


def test_the_decoder_reads_state_handlers_generators_and_static_names(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "def small(a):\n    return a\n\n"
        "def guarded(a):\n    try:\n        return a\n    except ValueError:\n        return None\n\n"
        "def gen():\n    yield 1\n\n"
        "def read():\n    pass\n"  # `read` is one of MicroPython's static qstrs
    )
    frames = {f.name: f for f in module_frames(find_mpy_cross(), src)}
    assert frames["small"].n_exc_stack == 0 and not frames["small"].on_heap
    assert frames["guarded"].n_exc_stack == 1
    assert frames["guarded"].words == frames["guarded"].n_state + 3
    assert frames["gen"].generator and frames["gen"].on_heap
    assert "read" in frames


def test_the_limit_is_where_the_vm_starts_allocating(tmp_path: Path) -> None:
    # Functions of n arguments, whose frames grow a word per argument: the one at the limit
    # allocates nothing per call on the real VM, the one a word over does.
    src = tmp_path / "m.py"
    src.write_text(
        "".join(f"def f{n}({', '.join(f'a{i}' for i in range(n))}):\n    return a0\n\n" for n in range(1, 16))
    )
    words = {f.name: f.words for f in module_frames(find_mpy_cross(), src) if f.name.startswith("f")}
    at = next(name for name, w in words.items() if w == C_STACK_WORDS)
    over = next(name for name, w in words.items() if w == C_STACK_WORDS + 1)
    args = {name: ", ".join(["0"] * int(name[1:])) for name in (at, over)}
    src.write_text(
        src.read_text()
        + "import micropython\n"
        + "".join(
            f"{name}({args[name]})\nm = micropython.mem_total()\n"
            f"for _ in range(100):\n    {name}({args[name]})\n"
            f"print('{name}', micropython.mem_total() - m)\n"
            for name in (at, over)
        )
    )
    out = subprocess.run([str(find_micropython()), str(src)], capture_output=True, text=True, timeout=30, check=True)
    allocated = {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines()}
    assert allocated[at] == 0, out.stdout
    assert allocated[over] >= 100 * 8 * (C_STACK_WORDS + 1), out.stdout
