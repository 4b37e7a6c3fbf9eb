"""Run the official MCP conformance suites (npm `@modelcontextprotocol/conformance`) against a server.

`make conformance-tools` installs Node 22 and each pinned suite version side by side into
.venv/node (see conformance/package.json). This module finds them there, lists their server
scenarios, runs one scenario per CLI call and reads the checks it writes as JSON:

    for suite in locate_suites():
        for run in scenario_runs(suite):
            result = run_scenario(suite, "http://127.0.0.1:8080/mcp", run)
            print(run.label, "ok" if result.passed else result.report())

The suites cannot send an Authorization header, so the server under test must run without a token.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from host_tools.profiles import repo_root

# The versions conformance/package.json pins, each installed under the alias conformance-<version>.
SUITE_VERSIONS = ("0.1.16", "0.2.0-alpha.12")
# Per scenario; the longest passing one takes about 3 s on the emulated board.
SCENARIO_TIMEOUT_S = 15
# Per batch process (one suite version at one spec version), so a wedged server fails in bounded time.
BATCH_BUDGET_S = 100.0
# Scenarios the suite never scores: protocol extensions (tasks-*, sep-2640-skills-*).
EXTENSION = "extension"
_LIST_LINE = re.compile(r"^\s+- (\S+)(?: \[([^\]]*)\])?$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SCENARIO_MARK = re.compile(r"^=== Running scenario: (\S+) ===$", re.MULTILINE)
# -o writes <dir>/server-<scenario>-<ISO time with : and . as ->/checks.json per scenario.
_RESULT_DIR = re.compile(r"^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$")


class OfficialSuiteError(RuntimeError):
    """The suites are not installed, or a suite's CLI misbehaved."""


def node_dir() -> Path:
    """Where `make conformance-tools` installs Node, the suites and the WebAssembly MicroPython."""
    return repo_root() / ".venv" / "node"


def node_executable(root: Path | None = None) -> Path:
    """The Node that `make conformance-tools` installs (under `root`, default node_dir())."""
    return (root or node_dir()) / "node_modules" / ".bin" / "node"


@dataclass(frozen=True)
class Suite:
    """One installed version of the conformance CLI and the Node that runs it."""

    version: str
    node: Path
    entry: Path

    def command(self, *args: str) -> list[str]:
        """argv running the suite's CLI with `args`."""
        return [str(self.node), str(self.entry), *args]

    @cached_property
    def server_options(self) -> frozenset[str]:
        """The options `server` accepts, read from its --help (0.1.16 has no --timeout or --force)."""
        out = _check_output(self.command("server", "--help"))
        return frozenset(re.findall(r"(--[a-z-]+)", out))

    @property
    def per_scenario_spec_version(self) -> bool:
        """Whether `server --scenario X --spec-version V` runs X at V. 0.1.16 ignores --spec-version
        for a single scenario (its scenarios speak the TS SDK client's latest, 2025-11-25); --force
        arrived with per-scenario versions, to run a scenario outside its versions."""
        return "--force" in self.server_options


@dataclass(frozen=True)
class Scenario:
    """A server scenario and the spec versions the suite lists it for (["extension"] for extensions)."""

    name: str
    spec_versions: tuple[str, ...]

    @property
    def extension(self) -> bool:
        """An extension scenario: reported, never scored."""
        return EXTENSION in self.spec_versions


@dataclass(frozen=True)
class ScenarioRun:
    """One scenario at one spec version (None: the suite's own choice) in one suite version."""

    suite: str
    scenario: str
    spec_version: str | None
    extension: bool

    @property
    def label(self) -> str:
        """A stable id, e.g. `0.2.0-alpha.12/tools-list@2026-07-28`."""
        return f"{self.suite}/{self.scenario}@{self.spec_version or 'default'}"


@dataclass(frozen=True)
class Check:
    """One check a scenario reported (status: SUCCESS, FAILURE, WARNING, INFO or SKIPPED)."""

    id: str
    name: str
    status: str
    description: str
    error_message: str | None = None
    details: Any = None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Check:
        """A check from one entry of the suite's checks.json."""
        return cls(
            id=str(raw.get("id", "")),
            name=str(raw.get("name", "")),
            status=str(raw.get("status", "")),
            description=str(raw.get("description", "")),
            error_message=raw.get("errorMessage"),
            details=raw.get("details"),
        )

    def describe(self, detail_chars: int = 1500) -> str:
        """`[STATUS] id: description`, then the error message and (truncated) details."""
        lines = [f"[{self.status}] {self.id}: {self.description}"]
        if self.error_message:
            lines.append(f"    error: {self.error_message}")
        if self.details is not None:
            text = json.dumps(self.details, sort_keys=True)
            if len(text) > detail_chars:
                text = text[:detail_chars] + f"... ({len(text)} chars)"
            lines.append(f"    details: {text}")
        return "\n".join(lines)


@dataclass
class ScenarioResult:
    """What one run of a scenario reported. `checks` is empty when the CLI wrote none (a crash,
    or a scenario skipped as not applicable; `output` then says why). `seconds` is the wall time
    of the CLI process that ran it (a whole batch's, for batched runs)."""

    run: ScenarioRun
    checks: list[Check] = field(default_factory=list)
    exit_code: int = 0
    output: str = ""
    seconds: float = 0.0

    @property
    def failures(self) -> list[Check]:
        """The failed checks."""
        return [c for c in self.checks if c.status == "FAILURE"]

    @property
    def warnings(self) -> list[Check]:
        """The checks that warned (warnings do not fail a scenario)."""
        return [c for c in self.checks if c.status == "WARNING"]

    @property
    def passed(self) -> bool:
        """The scenario ran, reported checks, and none failed (the suite's own verdict)."""
        return bool(self.checks) and not self.failures

    def summary(self) -> str:
        """One line: verdict, counts, and the first failure's message."""
        ok = sum(c.status == "SUCCESS" for c in self.checks)
        head = f"{self.run.label}: {'PASS' if self.passed else 'FAIL'} ({ok} ok, {len(self.failures)} failed, "
        head += f"{len(self.warnings)} warnings)"
        if not self.checks:
            return f"{head}: no checks reported; {_last_line(self.output)}"
        if self.failures:
            first = self.failures[0]
            return f"{head}: {first.id}: {first.error_message or first.description}"
        return head

    def report(self) -> str:
        """The failing and warning checks with their details, or the CLI's output if it reported none."""
        lines = [self.summary()]
        if not self.checks:
            lines += [f"exit code {self.exit_code}; output:", self.output.strip()]
        lines += [c.describe() for c in self.failures + self.warnings]
        return "\n".join(lines)


def locate_suites(root: Path | None = None) -> list[Suite]:
    """The installed suites, in SUITE_VERSIONS order; raises OfficialSuiteError if any is missing."""
    base = root or node_dir()
    node = node_executable(base)
    if not node.is_file():
        raise OfficialSuiteError(f"Node is not installed in {base}: run `make conformance-tools`")
    suites = []
    for version in SUITE_VERSIONS:
        entry = base / "node_modules" / f"conformance-{version}" / "dist" / "index.js"
        if not entry.is_file():
            raise OfficialSuiteError(f"conformance {version} is not installed in {base}: run `make conformance-tools`")
        suites.append(Suite(version, node, entry))
    return suites


def list_server_scenarios(suite: Suite) -> list[Scenario]:
    """Every server scenario the suite has (active, pending and extension), as `list --server` prints them."""
    scenarios = []
    for line in _check_output(suite.command("list", "--server")).splitlines():
        m = _LIST_LINE.match(line)
        if m:
            versions = tuple(v.strip() for v in (m.group(2) or "").split(",") if v.strip())
            scenarios.append(Scenario(m.group(1), versions))
    if not scenarios:
        raise OfficialSuiteError(f"conformance {suite.version} listed no server scenarios")
    return scenarios


def scenario_runs(suite: Suite) -> list[ScenarioRun]:
    """What to run: each scenario at each spec version it lists, where the suite can choose the version;
    otherwise (0.1.16, and extension scenarios, which --spec-version would skip) once, at its default."""
    runs = []
    for sc in list_server_scenarios(suite):
        if sc.extension or not suite.per_scenario_spec_version:
            runs.append(ScenarioRun(suite.version, sc.name, None, sc.extension))
        else:
            runs += [ScenarioRun(suite.version, sc.name, v, False) for v in sc.spec_versions]
    return runs


def run_scenario(suite: Suite, url: str, run: ScenarioRun, *, timeout_s: int = SCENARIO_TIMEOUT_S) -> ScenarioResult:
    """Run one server scenario against the MCP endpoint `url` and return the checks it reported.

    `run.spec_version` None leaves the choice to the suite. `timeout_s` bounds the scenario (passed
    to the CLI where it takes --timeout; the process itself is killed a little after it regardless).
    """
    args = ["server", "--url", url, "--scenario", run.scenario]
    if run.spec_version is not None:
        args += ["--spec-version", run.spec_version]
    if "--timeout" in suite.server_options:
        args += ["--timeout", str(timeout_s * 1000)]
    with tempfile.TemporaryDirectory(prefix="mcp-conformance-") as out:
        start = time.monotonic()
        code, output = _run(suite.command(*args, "-o", out), timeout_s + 15)
        seconds = time.monotonic() - start
        checks = [Check.from_json(raw) for path in sorted(Path(out).glob("*/checks.json")) for raw in _load(path)]
    return ScenarioResult(run, checks, code, output, seconds)


@dataclass
class Batch:
    """One CLI process that ran a suite's scenarios at one spec version (see run_batch)."""

    results: dict[str, ScenarioResult]
    chunks: dict[str, str]
    exit_code: int
    output: str
    seconds: float


def run_batch(
    suite: Suite,
    url: str,
    spec_version: str | None,
    *,
    timeout_s: int = SCENARIO_TIMEOUT_S,
    budget_s: float = BATCH_BUDGET_S,
) -> Batch:
    """Run every non-extension server scenario (`--suite all`, pending ones included) in one CLI process,
    at `spec_version` (None: each at the suite's default). `results` holds one per scenario by name.

    One process saves Node's start-up per scenario, which dominates a run. Scenarios run one after
    another; `timeout_s` bounds each where the CLI takes --timeout, `budget_s` the whole process.
    A scenario the CLI wrote no checks for (it crashed, or the budget ran out first) is missing from
    `results`; `chunks` holds each started scenario's part of the output.
    """
    args = ["server", "--url", url, "--suite", "all"]
    if spec_version is not None:
        args += ["--spec-version", spec_version]
    if "--timeout" in suite.server_options:
        args += ["--timeout", str(timeout_s * 1000)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="mcp-conformance-") as out:
        start = time.monotonic()
        code, output = _run(suite.command(*args, "-o", out), budget_s)
        seconds = time.monotonic() - start
        chunks = _split_by_scenario(output)
        for path in sorted(Path(out).glob("server-*/checks.json")):
            m = _RESULT_DIR.match(path.parent.name)
            if m is None:
                raise OfficialSuiteError(f"conformance {suite.version} wrote an unexpected {path.parent.name}")
            name = m.group(1)
            run = ScenarioRun(suite.version, name, spec_version, extension=False)
            checks = [Check.from_json(raw) for raw in _load(path)]
            results[name] = ScenarioResult(run, checks, code, chunks.get(name, ""), seconds)
    return Batch(results, chunks, code, output, seconds)


class Runner:
    """Runs ScenarioRuns against one server on demand, batching: the first run asked for at a
    (suite, spec version) runs the whole suite at that version in one process (run_batch), later
    ones come from that batch; extension scenarios run one by one (run_scenario)."""

    def __init__(self, suites: Iterable[Suite], url: str, *, timeout_s: int = SCENARIO_TIMEOUT_S) -> None:
        self.suites = {s.version: s for s in suites}
        self.url = url
        self.timeout_s = timeout_s
        self._batches: dict[tuple[str, str | None], Batch] = {}

    def result(self, run: ScenarioRun) -> ScenarioResult:
        """The result of `run`; one without checks, carrying the batch's output, if its batch wrote none."""
        suite = self.suites[run.suite]
        if run.extension:
            return run_scenario(suite, self.url, run, timeout_s=self.timeout_s)
        key = (run.suite, run.spec_version)
        if key not in self._batches:
            self._batches[key] = run_batch(suite, self.url, run.spec_version, timeout_s=self.timeout_s)
        batch = self._batches[key]
        found = batch.results.get(run.scenario)
        if found is not None:
            return found
        output = batch.chunks.get(run.scenario) or f"not reached; the batch's output ends:\n{batch.output[-3000:]}"
        return ScenarioResult(run, [], batch.exit_code, output, batch.seconds)


def run_all(suites: Iterable[Suite], runs: Iterable[ScenarioRun], url: str) -> list[ScenarioResult]:
    """Run `runs` against `url` (batched, see Runner); results in the order of `runs`."""
    runner = Runner(suites, url)
    return [runner.result(r) for r in runs]


def _split_by_scenario(output: str) -> dict[str, str]:
    """A batch's output, cut at its `=== Running scenario: X ===` markers."""
    parts = _SCENARIO_MARK.split(output)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _load(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    if not isinstance(data, list):
        raise OfficialSuiteError(f"{path} is not a list of checks")
    return data


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _check_output(argv: list[str]) -> str:
    code, out = _run(argv, 60)
    if code != 0:
        raise OfficialSuiteError(f"{' '.join(argv)} exited with {code}:\n{out}")
    return out


def _run(argv: list[str], timeout_s: float) -> tuple[int, str]:
    """Run argv in its own process group (the CLI may spawn children); kill the group on timeout."""
    env = dict(os.environ, NO_COLOR="1", FORCE_COLOR="0")
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, start_new_session=True
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return -signal.SIGKILL, _ANSI.sub("", out) + f"\n(killed after {timeout_s:g} s)"
    return proc.returncode, _ANSI.sub("", out)
