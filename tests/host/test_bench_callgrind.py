"""The bench reads where a request's instructions go from callgrind's output, as valgrind writes it:
names compressed to "(id)" after their first use, positions relative, recursion suffixed "'2"."""

from pathlib import Path

import pytest

from host_tools.bench.callgrind import HEAP_WALKS, PARTS, read_counts
from host_tools.bench.client import BenchClientError

OUT = """\
version: 1
creator: callgrind-3.19.0
positions: line
events: Ir
summary: 5000

ob=(1) /venv/micropython_run.so
fl=(1) py/vm.c
fn=(1) mp_execute_bytecode
10 100
cfn=(2) gc_info
calls=2 5
+2 300
cfn=(3) mod_json_load
calls=1 5
* 200

fl=(2) py/qstr.c
fn=(3)
5 50
cfn=(4) qstr_find_strn
calls=3 7
-1 120

fn=(5) mp_execute_bytecode'2
10 10
cfn=(2)
calls=1 5
10 100
cfn=(6) str_finder
calls=1 5
10 40

fn=(6)
cfn=(7) str_count
calls=1 5
10 25
cfn=(6)
calls=1 5
10 15

fn=(4)
7 120
"""


def test_each_part_counts_the_calls_into_it_with_what_they_call(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    out.write_text(OUT)
    total, parts = read_counts(out)
    assert total == 5000
    assert set(parts) == {label for label, _ in PARTS}
    assert parts[HEAP_WALKS] == 400  # two call sites, one of them in a recursion level ("'2")
    assert parts["parsing JSON (`json.loads`)"] == 200
    assert parts["looking up each new `str` among the interned strings"] == 120  # nested in the parse
    # Calls within a part (str_finder -> str_count, str_finder -> itself) are inside the call into it.
    assert parts["byte-string searches (`find`, `count`)"] == 40
    assert parts["garbage collection"] == 0


def test_an_output_without_totals_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    out.write_text("version: 1\nevents: Ir\n")
    with pytest.raises(BenchClientError, match="no totals"):
        read_counts(out)
