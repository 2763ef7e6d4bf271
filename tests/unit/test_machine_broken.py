"""A server that runs but cannot load its app (a worker that fails to boot and is retried, a
URLconf that does not compile at the first request): the machine stops it and shows the error
page until the next change; one that exits by itself is the usual crash."""

from __future__ import annotations

import pytest
from machine_harness import Harness, logs, of, starts

from reloadkit.supervisor.events import AppBroken, PagesDown, Start, Stop
from reloadkit.supervisor.machine import BROKEN_GRACE

pytestmark = pytest.mark.timeout(30)
REASON = "SyntaxError: invalid syntax (djsite/urls.py, line 24)"


def test_a_running_server_whose_app_cannot_load_is_stopped_and_the_page_shown() -> None:
    h = Harness(cwd="/app")
    pid = h.begin()
    h.feed(AppBroken(pid, REASON))
    assert of(Stop, h.later(BROKEN_GRACE / 2)) == []  # it may still exit by itself
    deadline = h.machine.deadline()
    assert deadline is not None and deadline <= h.clock.now + BROKEN_GRACE
    out = h.at(deadline)
    assert f"pid {pid} cannot load the app: {REASON}; showing the error page until a change" in logs(out, "warn")
    assert [stop.pid for stop in of(Stop, out)] == [pid]
    out = h.exit(pid, 0, ("Traceback (most recent call last):", "SyntaxError: invalid syntax"))
    assert of(PagesDown, out) == [PagesDown(None, ("Traceback (most recent call last):", "SyntaxError: invalid syntax"),
                                            error=f"cannot load the app: {REASON}")]
    assert starts(h.later(60)) == []  # no restart until a change
    h.change("djsite/urls.py")
    assert starts(h.settle()) == [Start(1, ("/app/djsite/urls.py",), restart=True, beside=None)]


@pytest.mark.parametrize("ready", [True, False], ids=["served", "starting"])
def test_one_that_exits_by_itself_is_the_usual_crash(ready: bool) -> None:
    """Also one that says so while it starts (gunicorn's worker that fails to boot: gunicorn
    exits 3 a moment later) is left to its exit, and a warm one to its cold retry."""
    h = Harness(cwd="/app")
    pid = h.begin(ready=ready)
    h.feed(AppBroken(pid, REASON))
    if not ready:
        assert h.machine.deadline() is None and of(Stop, h.later(5.0)) == []
    out = h.exit(pid, 1, ("SyntaxError: invalid syntax",))
    assert f"pid {pid} exited with status 1; waiting for a change" in logs(out, "warn")
    assert of(PagesDown, out) == [PagesDown(1, ("SyntaxError: invalid syntax",))]
    assert of(Stop, h.later(1.0)) == []


def test_a_change_meanwhile_restarts_it_as_any_change_does() -> None:
    h = Harness(cwd="/app")
    pid = h.begin()
    h.feed(AppBroken(pid, REASON))
    h.change("djsite/urls.py")  # the fix, saved at once: the usual restart, no page
    out = h.settle()
    assert of(PagesDown, out) == [] and [start.generation for start in starts(out + h.exit(pid, 0))] == [1]


def test_one_that_says_so_before_its_probe_was_seen_taken_is_stopped_once_ready() -> None:
    """The first request can reach the server right behind the probe, and its traceback the
    supervisor before the probe's answer."""
    h = Harness(cwd="/app")
    pid = h.begin(ready=False)
    h.feed(AppBroken(pid, REASON))
    assert h.machine.deadline() is None
    h.ready(pid)
    deadline = h.machine.deadline()
    assert deadline is not None
    assert [stop.pid for stop in of(Stop, h.at(deadline))] == [pid]
