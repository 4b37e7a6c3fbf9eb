"""The frame each function in a compiled module (.mpy version 6) needs when it is called.

MicroPython runs a call with its frame on the C stack when the frame is at most
`C_STACK_WORDS` words (`n_state`, the locals and the expression stack, plus 3 words per
exception handler), and allocates it on the heap, on every call, when it is larger
(`VM_MAX_STATE_ON_STACK` in py/objfun.c). A generator's frame is always on the heap. The
firmware keeps its per-request functions within the limit; tests/host/test_frames.py checks
that they stay there.

    for f in module_frames(find_mpy_cross(), Path("firmware/boardmcp/jsonrpc.py")):
        print(f.name, f.words, "heap" if f.on_heap else "C stack")
"""

from __future__ import annotations

import ast
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

C_STACK_WORDS = 11
_EXC_HANDLER_WORDS = 3  # mp_exc_stack_t: handler, value stack pointer, previous exception


@dataclass(frozen=True)
class Frame:
    """One function's frame, as its bytecode prelude declares it."""

    name: str
    n_state: int
    n_exc_stack: int
    generator: bool

    @property
    def words(self) -> int:
        """The frame's size in machine words."""
        return self.n_state + _EXC_HANDLER_WORDS * self.n_exc_stack

    @property
    def on_heap(self) -> bool:
        """Whether every call allocates the frame from the heap."""
        return self.generator or self.words > C_STACK_WORDS


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uint(self) -> int:
        value = 0
        while True:
            b = self.byte()
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                return value

    def skip(self, n: int) -> None:
        self.pos += n


def _skip_obj(r: _Reader) -> None:
    # A constant: 0-4 none/false/true/ellipsis/fun-table, 5 str, 6 bytes, 7 int, 8 float,
    # 9 complex, 10 tuple.
    kind = r.byte()
    if kind <= 4:
        return
    n = r.uint()
    if kind == 10:
        for _ in range(n):
            _skip_obj(r)
        return
    r.skip(n + (1 if kind in (5, 6) else 0))  # str and bytes end in a NUL


def _prelude(code: bytes) -> tuple[int, int, bool, int]:
    # n_state, n_exc_stack, generator, simple-name qstr index (py/bc.h's signature encoding:
    # xSSSSEAA, then xFSSKAED bytes while the top bit is set).
    i = 0
    z = code[i]
    i += 1
    state, exc, flags, n = (z >> 3) & 0xF, (z >> 2) & 1, 0, 0
    while z & 0x80:
        z = code[i]
        i += 1
        state |= ((z >> 4) & 3) << (4 + 2 * n)
        exc |= ((z >> 1) & 1) << (1 + n)
        flags |= ((z >> 6) & 1) << n
        n += 1
    while code[i] & 0x80:  # the size of the prelude's info and cells
        i += 1
    i += 1
    name = 0
    while True:
        b = code[i]
        i += 1
        name = (name << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    return state + 1, exc, bool(flags & 1), name


def frames(mpy: bytes, static_names: dict[int, str] | None = None) -> list[Frame]:
    """Every bytecode function in a .mpy, in the order they are stored. A name MicroPython keeps
    as a static qstr is looked up in static_names (see module_frames), else shown as #index."""
    r = _Reader(mpy)
    if mpy[:2] != b"M\x06":
        raise ValueError("not a version 6 .mpy")
    r.skip(4)
    n_qstr, n_obj = r.uint(), r.uint()
    names: list[str] = []
    for _ in range(n_qstr):
        n = r.uint()
        if n & 1:
            names.append((static_names or {}).get(n >> 1, f"#{n >> 1}"))
            continue
        n >>= 1
        names.append(mpy[r.pos : r.pos + n].decode())
        r.skip(n + 1)
    for _ in range(n_obj):
        _skip_obj(r)
    out: list[Frame] = []
    _raw_code(r, names, out)
    return out


def _raw_code(r: _Reader, names: list[str], out: list[Frame]) -> None:
    kind_len = r.uint()
    code = r.data[r.pos : r.pos + (kind_len >> 3)]
    r.skip(kind_len >> 3)
    if kind_len & 3 == 0:  # bytecode (native code has no such prelude)
        state, exc, generator, name = _prelude(code)
        out.append(Frame(names[name] if name < len(names) else f"#{name}", state, exc, generator))
    if kind_len & 4:
        for _ in range(r.uint()):
            _raw_code(r, names, out)


def module_frames(mpy_cross: Path, source: Path) -> list[Frame]:
    """Compile `source` and return its functions' frames, names resolved."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.mpy"
        compiled = _compile(mpy_cross, source, out)
        found = frames(compiled)
        if not any(f.name.startswith("#") for f in found):
            return found
        # Some names are static qstrs, stored as an index into MicroPython's own table: a probe
        # module defining a function of each name in the source tells which index is which.
        tree = ast.parse(source.read_text())
        defined = sorted({n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))})
        probe = Path(tmp) / "probe.py"
        probe.write_text("".join(f"def {name}():\n    pass\n" for name in defined))
        statics = {}
        for name, frame in zip(defined, frames(_compile(mpy_cross, probe, out))[1:], strict=True):
            if frame.name.startswith("#"):
                statics[int(frame.name[1:])] = name
        return frames(compiled, statics)


def _compile(mpy_cross: Path, source: Path, out: Path) -> bytes:
    subprocess.run([str(mpy_cross), "-o", str(out), str(source)], check=True, capture_output=True)
    return out.read_bytes()
