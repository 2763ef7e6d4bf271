"""Exit status 3 and the crash back-off, decided by the state machine with a fake clock.

Status 3 is a restart request only from a child that speaks the protocol (it served first,
or runs under run_with_reloader or Django's RUN_MAIN=true); the back-off slows only a child
that asks right after starting, resets once one served, and a save ends its wait.
tests/integration/test_restart_requests.py checks the same with real processes.
"""

from __future__ import annotations

import pytest
from machine_harness import QUIET, Harness, logs, of, starts

from reloadkit.supervisor.events import PagesDown, Ready, RestartAsked, Start
from reloadkit.supervisor.policy import speaks_restart_protocol

pytestmark = pytest.mark.timeout(30)


def test_exit_status_3_from_a_child_that_served_restarts_at_once() -> None:
    """test_reload::test_exit_status_3_restarts_at_once, test_hygiene::...asks_for_a_restart_with_status_3,
    test_servers' flask debug reloader"""
    h = Harness()
    pid = h.begin()  # ready: it served
    h.clock.now += 0.5  # right after starting: no matter, it served
    out = h.exit(pid, 3)
    assert logs(out, "warn") == [] and of(PagesDown, out) == []
    out = h.at(h.clock.now)
    assert f"restarting (pid {pid} exited with status 3): started pid {h.pids[1]} (generation 1)" in logs(out)


def test_exit_status_3_during_start_up_is_a_crash() -> None:
    """gunicorn exits 3 when a worker fails to boot (a syntax error in the app): not a restart
    request. test_restart_requests::test_gunicorn_boot_error_shows_the_error_page_and_waits_for_a_change"""
    h = Harness(cwd="/app")
    pid = h.begin(ready=False)
    out = h.exit(pid, 3, ("SyntaxError: '[' was never closed",))
    assert f"pid {pid} exited with status 3; waiting for a change" in logs(out, "warn")
    assert of(PagesDown, out) == [PagesDown(3, ("SyntaxError: '[' was never closed",))]
    assert h.machine.deadline() is None
    assert starts(h.later(60)) == []  # no restart loop
    h.change("app.py")
    assert starts(h.settle()) == [Start(1, ("/app/app.py",), restart=True, beside=None)]


def test_exit_status_3_while_the_old_generation_stops_is_retried_like_any_start_up_failure() -> None:
    h = Harness(cwd="/app")
    first = h.begin()
    h.change("app.py")
    h.settle()
    out = h.exit(h.pids[1], 3)
    assert "while an older generation was stopping" in logs(out)[0]
    assert [start.generation for start in starts(h.exit(first, 0))] == [1]


def _speaking_loop(h: Harness, count: int) -> list[str]:
    """``count`` generations that ask for a restart right after starting; the waits announced."""
    waits = []
    for _ in range(count):
        pid = h.machine.current.pid if h.machine.current else h.begin(ready=False)
        h.clock.now += 0.125
        waits += [text for text in logs(h.exit(pid, 3), "warn") if "right after starting" in text]
        h.settle()
    return waits


def test_a_child_of_the_protocol_that_asks_right_after_starting_is_slowed_down() -> None:
    """test_reload::test_a_crash_loop_is_slowed_down (RUN_MAIN=true: Django's reloader child)"""
    h = Harness()
    h.speaks_restart = True
    waits = _speaking_loop(h, 7)
    assert [text.rsplit(" ", 2)[1] for text in waits] == ["0.25", "0.5", "1", "2", "4", "8", "8"]


def test_the_back_off_resets_after_a_generation_that_served() -> None:
    """test_restart_requests::test_a_child_that_served_restarts_at_once_however_often_it_asks"""
    h = Harness()
    h.speaks_restart = True
    assert len(_speaking_loop(h, 4)) == 4  # 0.25 .. 2 s
    h.ready(h.current)
    for _ in range(5):  # served, then asked within a second, five times: never a wait
        h.clock.now += 0.125
        pid = h.current
        assert logs(h.exit(pid, 3), "warn") == []
        assert len(starts(h.at(h.clock.now))) == 1
        h.ready(h.current)
    h.clock.now += 0.125
    out = h.exit(h.current, 3)
    assert logs(out, "warn") == []
    h.at(h.clock.now)
    waits = _speaking_loop(h, 1)  # a start-up loop again starts from the first delay
    assert waits[0].endswith("waiting 0.25 s")


def test_a_change_ends_the_back_off_wait() -> None:
    """test_restart_requests::test_a_fix_during_the_back_off_starts_at_once"""
    h = Harness(cwd="/app")
    h.speaks_restart = True
    waits = _speaking_loop(h, 6)
    assert waits[-1].endswith("waiting 8 s")
    h.speaks_restart = False
    h.clock.now += 0.125
    h.exit(h.current, 3)  # asks once more: the restart timer is 8 s away
    assert h.machine.restart_at == h.clock.now + 8
    h.clock.now += 1
    saved = h.clock.now
    h.change("app.py")
    (start,) = starts(h.at(saved + QUIET))  # once the save settled, not 7 s later
    assert start.changed == ("/app/app.py",)
    assert h.machine.restart_at is None


@pytest.mark.parametrize(("env", "library", "speaks"), [
    ({}, False, False),
    ({"WERKZEUG_RUN_MAIN": "true"}, False, False),  # reloadkit sets it for gunicorn too
    ({"RUN_MAIN": "true"}, False, True),  # Django's reloader child
    ({"RUN_MAIN": "false"}, False, False),
    ({}, True, True),  # run_with_reloader's children
])
def test_who_speaks_the_restart_protocol(env: dict[str, str], library: bool, speaks: bool) -> None:
    assert speaks_restart_protocol(env, library=library) is speaks


def test_ready_by_the_timer_alone_does_not_end_the_back_off() -> None:
    """Where no probe works, a server that fails to boot after the ready timer still gets slower."""
    h = Harness()
    pid = h.begin(ready=False)
    for expected in ("0.25", "0.5", "1"):
        h.clock.now += 1.5
        h.feed(Ready(pid, "timer"))
        out = h.exit(pid, 3)
        assert logs(out, "warn")[0].endswith(f"waiting {expected} s")
        h.settle()
        pid = h.current


def test_sighup_during_the_back_off_starts_at_once() -> None:
    h = Harness()
    h.speaks_restart = True
    _speaking_loop(h, 3)  # the next wait is 2 s
    h.clock.now += 0.125
    pid = h.current
    assert logs(h.exit(pid, 3), "warn")[0].endswith("waiting 2 s")
    out = h.feed(RestartAsked("SIGHUP"))
    assert starts(out) == []  # the timer is due now: the next Tick starts it
    assert h.machine.deadline() == h.clock.now
    (start,) = starts(h.at(h.clock.now))
    assert start.generation == 4
