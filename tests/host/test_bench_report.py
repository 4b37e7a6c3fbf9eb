"""docs/BENCHMARKS.md takes the fleet gateway's figures from the last `boardmcp bench --gateway` report, and
the soak's from the last `make soak` report; it tables where the counted calls' instructions go."""

from pathlib import Path

from host_tools.bench.callgrind import HEAP_WALKS, PARTS, RequestCost
from host_tools.bench.client import MODERN
from host_tools.bench.gateway import DISCOVERY_SECTION, LATENCY_SECTION, default_out
from host_tools.bench.report import cost_table, gateway_section, soak_section
from host_tools.bench.run import Results
from host_tools.bench.soak import default_out as soak_out
from host_tools.profiles import load_profile


def test_the_gateway_figures_come_from_the_gateway_report(tmp_path: Path) -> None:
    report = tmp_path / "GATEWAY-BENCH.md"
    report.write_text(
        f"# title\n\nintro\n\n## {DISCOVERY_SECTION}\n\n| d | 1.5 |\n\n## {LATENCY_SECTION}\n\n| l | 4.2 |\n\n"
        "## Heap on the board\n\n| h | 99 |\n"
    )
    text = "\n".join(gateway_section(report))
    assert f"### {DISCOVERY_SECTION}\n\n| d | 1.5 |" in text
    assert f"### {LATENCY_SECTION}\n\n| l | 4.2 |" in text
    assert "| h | 99 |" not in text and "GATEWAY-BENCH.md" in text


def test_the_committed_gateway_report_has_the_sections() -> None:
    text = "\n".join(gateway_section(default_out()))
    assert "through the gateway, 1 board present" in text and "through the gateway, 20 boards present" in text
    assert "until the gateway lists all 20 boards' tools" in text and "(missing" not in text


def test_without_a_gateway_report_the_section_says_so(tmp_path: Path) -> None:
    assert "No `boardmcp bench --gateway` report" in "\n".join(gateway_section(tmp_path / "GATEWAY-BENCH.md"))


def test_the_soak_summary_comes_from_the_soak_report(tmp_path: Path) -> None:
    report = tmp_path / "SOAK.md"
    report.write_text(
        "# Soak\n\n`make soak` (2026-01-01): 20,000 mixed requests.\n\n- **Result: passed** — 20,000 answered\n"
        "- **Live heap** (after a collection): 1 B\n\n| client | requests |\n| HTTP | 7 |\n"
    )
    text = "\n".join(soak_section(report))
    assert "`make soak` (2026-01-01)" in text and "- **Result: passed**" in text and "- **Live heap**" in text
    assert "| HTTP | 7 |" not in text and "SOAK.md" in text


def test_the_committed_soak_report_has_its_summary() -> None:
    text = "\n".join(soak_section(soak_out()))
    assert "- **Result:" in text and "- **Live heap**" in text


def test_without_a_soak_report_the_section_says_so(tmp_path: Path) -> None:
    assert "No `make soak` report" in "\n".join(soak_section(tmp_path / "SOAK.md"))


def test_the_cost_table_has_a_column_pair_for_each_call_counted() -> None:
    res = Results(load_profile("esp32s3"), "full", sensors={"board": {MODERN: "read_bme280"}})
    assert cost_table(res) == []  # nothing counted (no valgrind)
    res.instructions = RequestCost(2000, {label: 100 for label, _ in PARTS})
    text = "\n".join(cost_table(res))
    assert "| part | `system_info` | share |" in text and "read_bme280" not in text
    assert f"| {HEAP_WALKS} | 100 | 5.0% |" in text and "| all | 2,000 | 100% |" in text
    res.sensor_instructions = RequestCost(1000, {label: 50 for label, _ in PARTS})
    assert f"| {HEAP_WALKS} | 100 | 5.0% | 50 | 5.0% |" in "\n".join(cost_table(res))
