"""Conformance checks that run unchanged against any board: `--target emulated` (the default; starts
an emulated board of `--board`, or of every profile when no board is named), `--target
http://HOST[:PORT]` (a board on the LAN, `--token`), `--target serial:/dev/tty...`.

Every check carries `@pytest.mark.check(spec=..., hint=...)`: the spec section or datasheet limit it
checks and what to do when it fails. Both go into the JUnit XML as properties and, with
`--conformance-report`, into a report for a person at the end of the run (`boardmcp test`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from board_client import ERAS, Client
from board_target import Target

from host_tools.emulator.runner import EmulatedBoard
from host_tools.profiles import list_profiles, load_profile


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("boardmcp conformance")
    group.addoption("--target", default="emulated", help="emulated, http://HOST[:PORT] or serial:/dev/tty...")
    group.addoption("--board", default=None, help="the board's profile (default: every profile when emulated)")
    group.addoption("--token", default=os.environ.get("BOARDMCP_TOKEN"), help="the board's bearer token")
    group.addoption("--destructive", action="store_true", help="also run checks that drive outputs")
    group.addoption("--conformance-report", action="store_true", help="print the report for a person")


def _option(config: pytest.Config, name: str) -> object:
    # This conftest may load after option parsing (a plain `pytest` from the root): then defaults.
    defaults = {"--target": "emulated", "--board": None, "--token": None, "--destructive": False}
    try:
        return config.getoption(name)
    except ValueError:
        return defaults.get(name)


def target_kind(config: pytest.Config) -> str:
    """emulated, http or serial, from --target."""
    spec = str(_option(config, "--target"))
    return "emulated" if spec == "emulated" else "serial" if spec.startswith("serial:") else "http"


def destructive(config: pytest.Config) -> bool:
    """Whether checks that drive a real board's outputs may run (--destructive or DESTRUCTIVE=1)."""
    return bool(_option(config, "--destructive")) or os.environ.get("DESTRUCTIVE") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "check(spec, hint): the spec section a conformance check checks, and a hint")
    config.pluginmanager.register(Report(config), "boardmcp-conformance-report")


# The report's order, which is how a person diagnoses a board: can a client talk to it (protocol),
# is its HTTP right, then is its hardware right.
ORDER = ("test_protocol.py", "test_http.py", "test_hardware.py", "test_official.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    boards: dict[str, int] = {}

    def rank(item: pytest.Item) -> tuple[int, int]:
        # One board at a time (each is started once), and on it the files in ORDER.
        params = getattr(item, "callspec", None)
        board = boards.setdefault(str(params.params.get("board_name")) if params else "", len(boards))
        name = item.path.name
        return board, ORDER.index(name) if name in ORDER else len(ORDER)

    items.sort(key=rank)  # stable: within a file, pytest's order (one transport and era at a time) stays


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    kind = target_kind(config)
    if "board_name" in metafunc.fixturenames:
        board = _option(config, "--board")
        names = [str(board)] if board else list_profiles() if kind == "emulated" else ["esp32s3"]
        metafunc.parametrize("board_name", names, scope="session")
    if "transport" in metafunc.fixturenames:
        transports = {"emulated": ["http", "ws", "serial"], "http": ["http", "ws"], "serial": ["serial"]}[kind]
        metafunc.parametrize("transport", transports, scope="session")
    given = {n.strip() for m in metafunc.definition.iter_markers("parametrize") for n in _names(m.args[0])}
    if "era" in metafunc.fixturenames and "era" not in given:
        metafunc.parametrize("era", ERAS, scope="session")


def _names(argnames: str | list[str] | tuple[str, ...]) -> list[str]:
    return argnames.split(",") if isinstance(argnames, str) else list(argnames)


@pytest.fixture(scope="session")
def target(
    request: pytest.FixtureRequest, board_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """The board under test; an emulated one (token on) is started here and stopped after."""
    profile = load_profile(board_name)
    spec = str(_option(request.config, "--target"))
    if spec != "emulated":
        token = _option(request.config, "--token")
        yield Target.parse(spec, profile, str(token) if token else None, destructive(request.config))
        return
    with EmulatedBoard(profile, workdir=tmp_path_factory.mktemp(f"conformance-{profile.name}"), token="") as board:
        # An emulated board's outputs drive nothing, so the checks that drive outputs always run.
        yield Target("emulated", profile, board.url, board.console, board.token, destructive=True)
        close_shared()  # its client goes with the board (the next board's checks open their own)


@pytest.fixture
def http_target(target: Target) -> Target:
    """The target, when it serves HTTP."""
    if target.url is None:
        pytest.skip("the target offers no HTTP endpoint (a serial target)")
    return target


# The one client the checks share (at most one). pytest runs the checks of one (transport, era)
# together; opening the next pair's client closes this one, so one client at a time is open, as
# one MCP client would be (a client left open holds the board's connections and heap).
_OPEN: list[Client] = []


def close_shared() -> None:
    """Close the shared client, if one is open."""
    while _OPEN:
        _OPEN.pop().close()


@pytest.fixture(scope="session", autouse=True)
def _close_at_end() -> Iterator[None]:
    yield
    close_shared()


@pytest.fixture
def client(target: Target, transport: str, era: str) -> Client:
    """A connected client over each transport the target offers, in each protocol era: one session
    shared by consecutive checks, opened anew when a check left it broken."""
    if not _OPEN or _OPEN[0].broken or (_OPEN[0].transport, _OPEN[0].era) != (transport, era):
        close_shared()
        _OPEN.append(target.client(transport, era))
    return _OPEN[0]


# -- the report --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One check's result as the report shows it."""

    nodeid: str
    outcome: str  # PASS, FAIL, SKIP, XFAIL (a known issue), XPASS
    spec: str
    hint: str
    detail: str


class Report:
    """Collects each check's outcome with its spec section and hint; prints them at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.outcomes: dict[str, Outcome] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        mark = item.get_closest_marker("check")
        if mark is not None and not any(k == "spec" for k, _ in item.user_properties):
            item.user_properties += [("spec", mark.kwargs.get("spec", "")), ("hint", mark.kwargs.get("hint", ""))]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "tests/conformance/" not in report.nodeid.replace("\\", "/"):
            return
        props = dict(report.user_properties)
        if hasattr(report, "wasxfail"):
            outcome, detail = "XFAIL" if report.skipped else "XPASS", str(report.wasxfail)
        elif report.failed:
            outcome, detail = "FAIL", _first_line(report.longreprtext)
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            outcome, detail = "SKIP", reason.removeprefix("Skipped: ")
        elif report.when == "call":
            outcome, detail = "PASS", ""
        else:
            return
        if report.nodeid in self.outcomes and self.outcomes[report.nodeid].outcome == "FAIL":
            return  # a failed call stays failed whatever teardown says
        self.outcomes[report.nodeid] = Outcome(
            report.nodeid, outcome, str(props.get("spec", "")), str(props.get("hint", "")), detail
        )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not _option(self.config, "--conformance-report") or not self.outcomes:
            return
        write = terminalreporter.write_line
        terminalreporter.section("boardmcp conformance report")
        for o in self.outcomes.values():
            name = o.nodeid.split("tests/conformance/", 1)[-1]
            write(f"{o.outcome:5} {name}")
            if o.spec:
                write(f"      checks: {o.spec}")
            if o.outcome == "FAIL":
                write(f"      failed: {o.detail}")
                if o.hint:
                    write(f"      to do:  {o.hint}")
            elif o.outcome in ("SKIP", "XFAIL"):
                write(f"      skipped: {o.detail}")
        counts = {k: sum(o.outcome == k for o in self.outcomes.values()) for k in ("PASS", "FAIL", "SKIP", "XFAIL")}
        summary = f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped"
        write(f"{summary}, {counts['XFAIL']} known issues (XFAIL)")


def _first_line(text: str) -> str:
    # The assertion's message: pytest's `E   ` lines, else the last line of the traceback.
    lines = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
    if lines:
        return " ".join(lines)[:400]
    rest = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return rest[-1][:400] if rest else "failed"
