"""The bench's "free heap needed": scanned from the top, so that a request that fails with more free
heap than it succeeds with (the ballast leaves the free heap in other pieces) is reported at the
amount above which it always succeeded, not wherever a bisection happened to look."""

from typing import Any

import pytest

from host_tools.bench import measure


class _Board:
    def stats(self, cmd: str) -> None:
        pass


def _needs(monkeypatch: pytest.MonkeyPatch, served: Any, **kw: int) -> int:
    monkeypatch.setattr(measure, "_served_with", lambda board, request, leave: served(leave))
    return measure.free_heap_needed(_Board(), {"k": b""}, lambda _msg: None, **kw)["k"]  # type: ignore[arg-type]


def test_a_failure_above_a_success_sets_the_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    # Served with 2 KB free or more, except around 20 KB: a bisection (32, 16, 8, 4 KB...) never
    # looks there and answers 2 KB; the scan finds the failure.
    def served(leave: int) -> bool:
        return leave >= 2048 and not 19456 <= leave <= 20480

    assert _needs(monkeypatch, served, step=512) == 20480 + 512


def test_the_worst_of_several_scans_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    scans = iter([6144, 9216, 7168])
    limit = {"now": 0}

    def served(leave: int) -> bool:
        if leave == 32 * 1024:
            limit["now"] = next(scans)  # each scan starts at the top
        return leave >= limit["now"]

    assert _needs(monkeypatch, served, step=1024, rounds=3) == 9216


def test_a_request_that_fails_at_the_top_is_over_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _needs(monkeypatch, lambda leave: False) == -1


def test_a_request_that_needs_nothing_above_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _needs(monkeypatch, lambda leave: True, step=4096) == 0
