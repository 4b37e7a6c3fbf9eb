"""The official MCP conformance suites (npm @modelcontextprotocol/conformance, both pinned versions)
as one stage, against a board on this machine: host_tools.official_suite runs them, exactly as
tests/integration/test_official_suites.py does against the emulated conformance board.

The suites reach the server from this machine and send no bearer token, and their scenarios call
the fixture tools of the `conformance` profile; a target where any of that does not hold is skipped,
saying which and what to do instead.
"""

import pytest
from board_client import Client
from board_target import Target

from host_tools.official_suite import OfficialSuiteError, Runner, locate_suites, scenario_runs

FIXTURE = "test_simple_text"  # one of the conformance profile's fixture tools


def why_not(target: Target) -> str | None:
    """Why the official suites cannot run against this target, or None when they can."""
    if target.kind == "emulated":
        return (
            "an emulated target serves with a token, which the suites cannot send; `make test` runs them "
            "against an emulated conformance board (tests/integration/test_official_suites.py)"
        )
    if target.url is None:
        return "a serial target: the suites speak Streamable HTTP only"
    if not target.local:
        return "the target is not on localhost: the suites run from this machine against a local server only"
    if target.token:
        return "the suites cannot send a bearer token: serve the board without one (boardmcp emulate --no-token)"
    return None


@pytest.mark.check(
    spec="the official MCP conformance suites' server scenarios (npm @modelcontextprotocol/conformance)",
    hint="the scenario's failing check names the spec requirement; see docs/ARCHITECTURE.md (official suites)",
)
def test_official_suites(target: Target) -> None:
    reason = why_not(target)
    if reason:
        pytest.skip(reason)
    try:
        suites = locate_suites()
    except OfficialSuiteError as exc:
        pytest.skip(f"the suites are not installed ({exc}): make conformance-tools")
    with Client.open(target.link("http"), "http", "modern") as c:
        tools = c.request("tools/call", {"name": FIXTURE, "arguments": {}})
    if "error" in tools:
        pytest.skip(
            "the board lacks the conformance profile's fixtures: boardmcp emulate --board conformance --no-token"
        )
    runner = Runner(suites, str(target.url))
    results = [runner.result(run) for suite in suites for run in scenario_runs(suite)]
    failed = [r.summary() for r in results if not r.passed and not r.run.extension]
    assert not failed, f"{len(failed)} of {len(results)} scenario runs failed:\n" + "\n".join(failed)
