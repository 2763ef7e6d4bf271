"""The second line of defence of warm starts, decided by the state machine with a fake clock.

A warm generation that exits before it is ready where the last cold one served starts again
cold at once; once that cold start serves, the warm parent is told (WarmFailed), and the
second time warm is off. A failure that fails cold too is the code's: nothing is held against
warm. tests/integration/test_warm.py checks the same with real processes.
"""

from __future__ import annotations

import pytest
from machine_harness import Harness, logs, of, starts

from reloadkit.supervisor.events import Action, PagesDown, Start, WarmFailed

pytestmark = pytest.mark.timeout(30)


def _warm_generation_fails(h: Harness, generation: int, code: int = 1) -> list[Action]:
    h.change("app.py")
    h.settle()
    for stop in list(h.machine.stopping):  # the old one is gone
        h.exit(stop.gen.pid, 0)
    return h.exit(h.pids[generation], code)


def test_a_warm_generation_that_fails_where_cold_served_starts_again_cold_at_once() -> None:
    """test_warm::test_a_warm_generation_that_fails_where_cold_served_is_retried_cold"""
    h = Harness()
    h.warm_from = 1
    h.begin()  # generation 0, cold, serves
    out = _warm_generation_fails(h, 1, 3)  # gunicorn's boot error: 3, not a restart request here
    assert starts(out) == [Start(1, ("/app/app.py",), restart=True, beside=None, cold=True)]  # the same one, at once
    assert any("started warm) exited with status 3 before it was ready" in text for text in logs(out, "warn"))
    assert not of(PagesDown, out) and not of(WarmFailed, out)  # the parent is told once cold serves
    assert h.machine.restart_at is None  # no back-off
    assert of(WarmFailed, h.ready(h.pids[1])) == [WarmFailed(1)]  # warm's fault, once: rebuild, stay on
    out = _warm_generation_fails(h, 2)
    assert starts(out) == [Start(2, ("/app/app.py",), restart=True, beside=None, cold=True)]
    out = h.ready(h.pids[2])
    assert [action.off is not None for action in of(WarmFailed, out)] == [True]  # the second time: off
    out = _warm_generation_fails(h, 3)  # off: a failure of a (cold) generation is the code's
    assert not starts(out)


def test_a_warm_failure_that_fails_cold_too_is_the_codes() -> None:
    h = Harness()
    h.warm_from = 1
    h.begin()
    _warm_generation_fails(h, 1)
    out = h.exit(h.pids[1], 1)  # the cold retry fails too: the user's bug
    assert of(PagesDown, out)
    assert not of(WarmFailed, out) and not starts(out)
    out = _warm_generation_fails(h, 2)  # the last cold one failed: no retry now
    assert not starts(out) and not of(WarmFailed, out)
    assert of(PagesDown, out)
    assert h.machine.warm_blame.confirmed == 0


def test_a_warm_failure_is_not_retried_before_a_cold_generation_served() -> None:
    h = Harness()
    h.warm_from = 1
    h.begin(ready=False)
    h.exit(h.pids[0], 1)  # generation 0 (cold) never served
    out = _warm_generation_fails(h, 1)
    assert not of(WarmFailed, out) and not starts(out)


def test_a_warm_failure_while_the_old_generation_stops_waits_for_it_not_for_a_cold_start() -> None:
    """test_parallel::test_an_app_with_a_port_of_its_own_comes_back_after_each_reload, warm: the
    old one holds the app's second port; a cold start at once would fail the same way."""
    h = Harness()
    h.warm_from = 1
    first = h.begin()
    h.change("app.py")
    h.settle()
    out = h.exit(h.pids[1], 1)  # the old one still stops
    assert "while an older generation was stopping" in logs(out)[0]
    assert not starts(out)
    (start,) = starts(h.exit(first, 0))
    assert start == Start(1, ("/app/app.py",), restart=True, beside=None)  # warm again, once the old one is gone


def test_the_cold_retry_starts_with_the_changes_that_started_the_warm_one() -> None:
    """test_error_page::test_a_crashed_app_gets_a_503_page_with_the_escaped_stderr_tail, warm:
    the page lists the changed files, and RELOADKIT_CHANGED names them, on the cold retry too."""
    h = Harness()
    h.warm_from = 1
    first = h.begin()
    h.change("view.py")
    h.settle()
    h.exit(first, 0)
    (start,) = starts(h.exit(h.pids[1], 1))
    assert start == Start(1, ("/app/view.py",), restart=True, beside=None, cold=True)
