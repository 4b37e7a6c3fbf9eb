"""The simulated `machine`, `onewire` and `_onewire` against micropython-esp32-stubs: every method
and function the stubs declare for the parts the emulator offers exists in the sim, accepts every
call the stubs allow (positional count, keyword names, same defaults), and every constant the
stubs give a value has that value on the VM.

Signatures are compared on the source (the sim is MicroPython code that CPython can parse);
constants and presence are checked on the running VM, where the sim loads peripherals lazily.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from host_tools.emulator.runner import SIM_SOURCES

STUBS = Path(sys.prefix) / "mpy-typings"  # installed by the Makefile next to the venv's packages
# stub module -> (sim files that implement it, classes checked, module functions checked)
SURFACE = {
    "machine": (
        ("machine.py", "_machine_i2c.py", "_machine_adc.py", "_machine_pwm.py"),
        ("Pin", "Signal", "I2C", "SoftI2C", "ADC", "ADCBlock", "PWM", "WDT"),
        (
            "unique_id",
            "reset",
            "soft_reset",
            "freq",
            "reset_cause",
            "wake_reason",
            "idle",
            "lightsleep",
            "deepsleep",
            "disable_irq",
            "enable_irq",
        ),
    ),
    "onewire": (("onewire.py",), ("OneWire",), ()),
    "_onewire": (("_onewire.py",), (), ("reset", "readbit", "readbyte", "writebit", "writebyte", "crc8")),
}
_CALLABLE_DUNDERS = ("__init__", "__call__")


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _functions(body: list[ast.stmt]) -> dict[str, list[ast.FunctionDef]]:
    out: dict[str, list[ast.FunctionDef]] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef):
            out.setdefault(node.name, []).append(node)  # stubs list @overload variants
    return out


def _classes(trees: list[ast.Module]) -> dict[str, ast.ClassDef]:
    return {n.name: n for t in trees for n in t.body if isinstance(n, ast.ClassDef)}


def _methods(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> dict[str, list[ast.FunctionDef]]:
    # A sim class's methods, inherited ones included (SoftI2C is an I2C).
    out: dict[str, list[ast.FunctionDef]] = {}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            out.update(_methods(classes[base.id], classes))
    out.update(_functions(cls.body))
    return out


def _literal(node: ast.expr | None) -> object:
    try:
        value = ast.literal_eval(node) if node is not None else Ellipsis
    except ValueError:
        return Ellipsis
    return value


def _params(fn: ast.FunctionDef, method: bool) -> dict[str, object]:
    a = fn.args
    positional = a.posonlyargs + a.args
    if method:
        positional = positional[1:]
    pos_defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    posonly = len(a.posonlyargs) - (1 if method and a.posonlyargs else 0)
    by_name = {p.arg: d for p, d in zip(positional[posonly:], pos_defaults[posonly:], strict=True)}
    by_name.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)})
    return {
        "n_pos": len(positional),
        "required_pos": sum(1 for d in pos_defaults if d is None),
        "by_name": by_name,  # name -> default node (None: required)
        "required_kw": {p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None},
        "varargs": a.vararg is not None,
        "varkw": a.kwarg is not None,
    }


def _incompatible(stub: ast.FunctionDef, sim: ast.FunctionDef, method: bool) -> list[str]:
    """Why a call the stub allows would fail (or differ) on the sim; [] when it would not."""
    s, m = _params(stub, method), _params(sim, method)
    if s["varargs"] and s["varkw"] and not s["n_pos"] and not s["by_name"]:
        return []  # the stub knows nothing of the signature (`*args, **kwargs`)
    why = []
    if s["n_pos"] > m["n_pos"] and not m["varargs"]:
        why.append(f"takes {m['n_pos']} positional arguments, the stub {s['n_pos']}")
    if m["required_pos"] > s["required_pos"]:
        why.append(f"requires {m['required_pos']} positional arguments, the stub {s['required_pos']}")
    for name, default in s["by_name"].items():
        if name not in m["by_name"] and not m["varkw"]:
            why.append(f"has no keyword {name!r}")
        elif name in m["by_name"]:
            want, got = _literal(default), _literal(m["by_name"][name])
            if default is not None and want is not Ellipsis and want != got:
                why.append(f"{name}={got!r}, the stub's default is {want!r}")
    extra = m["required_kw"] - s["required_kw"]
    if extra:
        why.append(f"requires keywords the stub does not: {sorted(extra)}")
    return why


def _stub_and_sim(module: str) -> tuple[ast.Module, list[ast.Module]]:
    stub = STUBS / f"{module}.pyi"
    if not stub.is_file():
        pytest.fail(f"{stub} is missing: run `make lint` once to install micropython-esp32-stubs")
    return _parse(stub), [_parse(SIM_SOURCES / f) for f in SURFACE[module][0]]


def _checked(names: dict[str, list[ast.FunctionDef]]) -> list[str]:
    return sorted(n for n in names if not n.startswith("_") or n in _CALLABLE_DUNDERS)


@pytest.mark.parametrize("module", SURFACE)
def test_sim_signatures_match_the_esp32_stubs(module: str) -> None:
    stub, sim = _stub_and_sim(module)
    _, classes, functions = SURFACE[module]
    problems = []
    stub_funcs = _functions(stub.body)
    sim_funcs = {name: fns for t in sim for name, fns in _functions(t.body).items()}
    for name in functions:
        assert name in stub_funcs, f"{module}.{name} is not in the stubs any more"
        if name not in sim_funcs:
            problems.append(f"{module}.{name}: missing")
            continue
        for variant in stub_funcs[name]:
            problems += [f"{module}.{name}(): {w}" for w in _incompatible(variant, sim_funcs[name][0], False)]
    stub_classes, sim_classes = _classes([stub]), _classes(sim)
    for cls in classes:
        if cls not in sim_classes:
            problems.append(f"{module}.{cls}: missing")
            continue
        sim_methods = _methods(sim_classes[cls], sim_classes)
        stub_methods = _functions(stub_classes[cls].body)
        for name in _checked(stub_methods):
            if name not in sim_methods:
                problems.append(f"{module}.{cls}.{name}: missing")
                continue
            for variant in stub_methods[name]:
                problems += [f"{cls}.{name}(): {w}" for w in _incompatible(variant, sim_methods[name][0], True)]
    assert problems == []


def _stub_constants(module: str) -> dict[str, int]:
    # "Class.NAME" or "NAME" -> value, for every constant the stubs give a value (`X: Final[int] = 3`).
    stub, _ = _stub_and_sim(module)
    out = {}
    scopes: list[tuple[str, list[ast.stmt]]] = [("", stub.body)]
    scopes += [
        (n.name + ".", n.body) for n in stub.body if isinstance(n, ast.ClassDef) and n.name in SURFACE[module][1]
    ]
    for prefix, body in scopes:
        for node in body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                value = _literal(node.value)
                if isinstance(value, int) and node.target.id.isupper():
                    out[prefix + node.target.id] = value
    return out


def test_sim_constants_and_lazy_classes_on_the_vm(sim) -> None:
    expected = {}
    for module in ("machine", "onewire"):
        expected.update({f"{module}.{k}": v for k, v in _stub_constants(module).items()})
    # Values the stubs fix that the esp32 port really has (a few stub entries are other ports').
    assert expected["machine.Pin.OUT"] == 3 and expected["machine.ADC.ATTN_11DB"] == 3
    lookups = json.dumps(sorted(expected))
    out = sim.ok(
        f"""
        import json, machine, onewire
        got = {{}}
        for path in json.loads({lookups!r}):
            obj = {{"machine": machine, "onewire": onewire}}
            parts = path.split(".")
            o = obj[parts[0]]
            for p in parts[1:]:
                o = getattr(o, p, None)
            got[path] = o
        print(json.dumps(got))
        """
    )
    got = json.loads(out[0])
    wrong = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    missing = sorted(k for k, v in got.items() if v is None)
    # Constants the esp32 port does not have on every chip are not in the stubs' valued set, so
    # everything the stubs give a value for must be there.
    assert missing == [] and wrong == {}
