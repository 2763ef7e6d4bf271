"""The supervisor's decisions with a fake clock and a fake world: no process is started.

Each test names the integration test whose decision it pins down (test_reload.py,
test_parallel.py, test_overlap.py, test_hygiene.py, test_warm.py, test_library.py,
test_error_page.py); those still check that the loop performs the actions for real.
"""

from __future__ import annotations

import math
import signal

import pytest
from machine_harness import QUIET, TERM, Harness, logs, of, starts

from reloadkit.supervisor.events import (
    Begin,
    DrainNow,
    Fail,
    Finish,
    KillTree,
    LookAhead,
    PagesDown,
    PagesReady,
    RestartAsked,
    RestoreTerminal,
    Shutdown,
    Signal,
    Start,
    StepDrain,
    Stop,
    SwitchTo,
)

pytestmark = pytest.mark.timeout(30)


# --- the first start, a change, a restart ----------------------------------------------------


def test_begin_starts_generation_0() -> None:
    h = Harness(cwd="/app")
    out = h.feed(Begin())
    assert starts(out) == [Start(0, (), restart=False, beside=None)]
    assert logs(out, "info") == [f"started pid {h.pids[0]} (generation 0)"]
    assert h.machine.deadline() is None  # nothing timed: no busy loop while idle


def test_ready_is_logged_once_per_generation_and_tells_the_pages() -> None:
    """test_overlap::test_ready_is_reported_on_each_restart_without_overlap"""
    h = Harness()
    pid = h.begin(ready=False)
    h.clock.now += 0.25
    out = h.ready(pid)
    assert logs(out) == [f"ready in 250 ms (accepting; pid {pid})"]
    assert of(PagesReady, out) == [PagesReady(0)]
    assert h.ready(pid) == []  # a second signal of readiness changes nothing


def test_a_change_stops_the_old_child_at_once_and_starts_the_new_one_after_the_quiet_window() -> None:
    """test_reload::test_change_serves_new_code_with_zero_failed_requests, test_parallel's slow shutdown"""
    h = Harness(cwd="/app")
    old = h.begin()
    out = h.change("version.py")
    assert of(Stop, out) == [Stop(old, TERM, drain=True)]  # the address moves, then a drain
    assert starts(out) == []
    assert h.machine.deadline() == h.clock.now  # the drain's first look is due
    out = h.at(h.clock.now)
    assert out == []  # the burst settles first and the old child is off the address: the look waits
    out = h.at(100.0 + QUIET)
    assert starts(out) == [Start(1, ("/app/version.py",), restart=True, beside=None)]
    assert of(StepDrain, out) == [StepDrain(old)]  # the next generation first, then the look
    assert out.index(starts(out)[0]) < out.index(StepDrain(old))
    assert f"restarting (version.py changed): started pid {h.pids[1]} (generation 1) while pid {old} stops" in logs(out)
    assert h.machine.stopping[0].kill_at == 100.0 + QUIET + 5.0  # counted from the signal


def test_a_burst_of_changes_gives_one_restart_with_every_path() -> None:
    """test_reload::test_burst_of_300_files_gives_one_restart"""
    h = Harness(cwd="/app")
    h.begin()
    for index in range(300):
        h.change(f"f{index}.py")
        h.clock.now += 0.001
    out = h.settle()
    (start,) = starts(out)
    assert len(start.changed) == 300
    assert "restarting (300 files changed)" in logs(out)[0]
    assert starts(h.later(5)) == []


def test_a_burst_asks_once_for_the_look_ahead_after_the_stop_and_the_next_burst_again() -> None:
    """The warm parents' files are checked while the burst settles (warm.py's look_ahead),
    not after it: once per burst, and after the old child was told to stop."""
    h = Harness(cwd="/app")
    old = h.begin()
    out = h.change("a.py")
    assert of(LookAhead, out) == [LookAhead()]
    assert out.index(LookAhead()) > out.index(Stop(old, TERM, drain=True))
    h.clock.now += 0.001
    assert of(LookAhead, h.change("b.py")) == []  # the same burst
    assert len(starts(h.settle())) == 1
    assert of(LookAhead, h.change("a.py")) == [LookAhead()]


def test_unread_changes_hold_the_batch_back() -> None:
    h = Harness()
    h.begin()
    h.change("a.py")
    h.world.unread = True
    assert starts(h.at(100 + QUIET)) == []
    h.world.unread = False
    assert len(starts(h.at(100 + QUIET))) == 1


def test_without_sockets_the_old_child_is_signalled_at_once_and_does_not_hold_the_start() -> None:
    h = Harness(drain=False)
    old = h.begin()
    out = h.change("a.py")
    assert of(Stop, out) == [Stop(old, TERM)]
    assert len(starts(h.settle())) == 1


def test_an_old_child_still_on_the_address_holds_the_start_until_it_exits() -> None:
    """Moving the address failed (the hand-over says so): the new one must not share it."""
    h = Harness()
    old = h.begin()
    h.world.stuck.add(old)
    h.change("a.py")
    assert starts(h.at(100 + QUIET)) == []
    h.clock.now = 100.5
    out = h.exit(old, 0)
    assert of(RestoreTerminal, out) == [RestoreTerminal()]
    assert starts(out) == [Start(1, ("/app/a.py",), restart=True, beside=None)]
    assert "stop took" in logs(out, "info")[-1]


def test_strict_order_starts_only_after_the_old_one_exited() -> None:
    """test_parallel::test_strict_order_starts_the_next_generation_only_after_the_old_one_exited"""
    h = Harness(strict_order=True)
    old = h.begin()
    h.change("a.py")
    out = h.at(100 + QUIET)
    assert starts(out) == []
    assert of(StepDrain, out) == [StepDrain(old)]  # with strict order the look does not wait
    assert starts(h.later(1)) == []
    assert len(starts(h.exit(old, 0))) == 1


def test_changes_during_a_strict_order_stop_are_folded_in_and_a_later_one_gives_one_follow_up() -> None:
    """test_reload::test_changes_during_a_restart_are_not_lost_and_do_not_cascade"""
    h = Harness(strict_order=True, cwd="/app")
    old = h.begin()
    h.change("version.py")
    h.at(100 + QUIET)
    for index in range(3):
        h.change(f"extra{index}.py")
    h.later(QUIET)
    out = h.exit(old, 0)
    (start,) = starts(out)
    assert sorted(start.changed) == ["/app/extra0.py", "/app/extra1.py", "/app/extra2.py", "/app/version.py"]
    h.ready(h.pids[1])
    h.change("version.py")  # after generation 1 started
    h.later(QUIET)
    assert len(starts(h.exit(h.pids[1], 0))) == 1
    assert len(starts(h.later(5))) == 0  # nothing cascades
    assert h.machine.generation == 2


def test_changes_while_the_old_generation_stops_give_one_follow_up() -> None:
    """test_parallel::test_changes_while_the_old_generation_stops_give_one_follow_up"""
    h = Harness(cwd="/app")
    first = h.begin()
    h.change("version.py")
    h.settle()  # generation 1 starts while the first one stops (it ignores SIGTERM)
    second = h.pids[1]
    h.change("extra.py")
    out = h.settle()
    assert of(Stop, h.actions)[-1] == Stop(second, TERM, drain=True)
    assert f"restarting (extra.py changed): started pid {h.pids[2]} (generation 2)" in logs(out)[0]
    assert {stop.gen.pid for stop in h.machine.stopping} == {first, second}
    assert starts(h.later(5)) == []


def test_sighup_restarts_at_once() -> None:
    """test_reload::test_sighup_forces_a_restart, test_hygiene::test_exit_path_sighup_restart"""
    h = Harness(drain=False)
    old = h.begin()
    out = h.feed(RestartAsked("SIGHUP"))
    assert of(Stop, out) == [Stop(old, TERM)]
    assert f"restarting (SIGHUP): started pid {h.pids[1]} (generation 1)" in logs(out)[-1]


def test_a_reload_asked_by_the_child_restarts_it() -> None:
    """test_library::test_trigger_reload_restarts_the_child"""
    h = Harness(drain=False)
    h.begin()
    out = h.feed(RestartAsked("reload requested by the child"))
    assert "restarting (reload requested by the child)" in logs(out)[-1]


# --- stopping ---------------------------------------------------------------------------------


def test_a_drain_looks_until_the_child_serves_no_request_then_the_kill_timer_runs() -> None:
    """test_reload::test_a_server_that_dies_on_sigterm_loses_no_request (the looks), ...ignores_sigterm"""
    h = Harness(strict_order=True)
    old = h.begin()
    h.drain_finishes = False
    h.change("a.py")
    out = h.at(100 + QUIET)
    assert of(StepDrain, out) == [StepDrain(old)]
    assert h.machine.stopping[0].drain_at == 100 + QUIET + 0.01
    assert h.machine.stopping[0].kill_at == math.inf
    h.drain_finishes = True
    out = h.at(100 + QUIET + 0.01)
    assert of(StepDrain, out) == [StepDrain(old)]
    assert h.machine.deadline() == 100 + QUIET + 0.01 + 5.0
    assert of(KillTree, h.later(4.9)) == []
    out = h.at(100 + QUIET + 0.01 + 5.0)
    assert of(KillTree, out) == [KillTree(old)]
    assert f"pid {old} did not stop within 5 s; killing its process tree" in logs(out, "warn")
    assert of(KillTree, h.later(10)) == []  # killed once; the reap is awaited


def test_stop_timeout_0_kills_at_once() -> None:
    h = Harness(drain=False, stop_timeout=0.0)
    old = h.begin()
    out = h.change("a.py")
    assert of(KillTree, out) == [KillTree(old)]


def test_sigint_from_the_terminal_is_not_sent_again_and_a_child_that_goes_on_is_nudged() -> None:
    """test_hygiene::test_second_ctrl_c_kills_a_child_that_ignores_it, pdb's Ctrl+C"""
    h = Harness()
    pid = h.begin()
    out = h.feed(Shutdown(signal.SIGINT, foreground=True))
    assert of(Stop, out) == [Stop(pid, None)]
    out = h.later(1.0)
    assert of(Signal, out) == [Signal(pid, TERM)]
    out = h.exit(pid, 0)
    assert of(Finish, out) == [Finish(0)]


def test_sigterm_stops_every_child_and_reports_the_current_ones_status() -> None:
    """test_reload::test_sigint_ends_everything_and_reports_the_status, test_hygiene's exit paths"""
    h = Harness()
    pid = h.begin()
    out = h.feed(Shutdown(signal.SIGTERM))
    assert of(Stop, out) == [Stop(pid, TERM)]  # no drain on the way out
    assert h.change("a.py") == []  # changes after a shutdown start nothing
    assert of(Finish, h.exit(pid, 143)) == [Finish(143)]


def test_a_shutdown_signals_a_draining_child_at_once() -> None:
    h = Harness(strict_order=True)
    old = h.begin()
    h.change("a.py")
    out = h.feed(Shutdown(signal.SIGTERM))
    assert of(DrainNow, out) == [DrainNow(old)]
    assert h.machine.stopping[0].kill_at == h.clock.now + 5.0
    assert starts(h.later(1)) == []
    assert of(Finish, h.exit(old, 0)) == [Finish(128 + signal.SIGTERM)]


def test_a_second_signal_kills_everything() -> None:
    """test_reload::test_second_sigint_kills_at_once"""
    h = Harness()
    pid = h.begin()
    h.feed(Shutdown(signal.SIGTERM))
    out = h.feed(Shutdown(signal.SIGINT))
    assert of(KillTree, out) == [KillTree(pid)]
    assert "second signal: killing everything now" in logs(out, "warn")
    assert of(Finish, h.exit(pid, 137)) == [Finish(137)]


# --- exits ------------------------------------------------------------------------------------


def test_a_crash_shows_the_error_page_and_waits_for_a_change() -> None:
    """test_reload::test_syntax_error_keeps_reloadkit_running_and_the_fix_recovers, test_error_page"""
    h = Harness(cwd="/app")
    pid = h.begin()
    h.clock.now += 10
    out = h.exit(pid, 1, ("SyntaxError",))
    assert of(PagesDown, out) == [PagesDown(1, ("SyntaxError",))]
    assert f"pid {pid} exited with status 1; waiting for a change" in logs(out, "warn")
    assert starts(h.later(60)) == []
    assert of(Stop, h.change("version.py")) == []
    assert starts(h.settle()) == [Start(1, ("/app/version.py",), restart=True, beside=None)]


def test_without_reload_the_childs_exit_ends_the_supervisor_with_its_status() -> None:
    """test_hygiene::test_exit_path_child_crash_without_reload"""
    h = Harness(reload=False)
    pid = h.begin()
    assert of(Finish, h.exit(pid, 1)) == [Finish(1)]


def test_a_restart_that_cannot_start_waits_for_a_change() -> None:
    """test_hygiene::test_exit_path_restart_that_cannot_start"""
    h = Harness(drain=False)
    h.begin()
    h.fail_starts.add(1)
    out = h.feed(RestartAsked("SIGHUP"))
    assert of(PagesDown, out) == [PagesDown(None, (), error="cannot run the command")]
    assert "cannot run the command; waiting for a change" in logs(out, "warn")
    assert h.machine.current is None
    h.fail_starts.clear()
    h.change("a.py")
    assert [start.generation for start in starts(h.settle())] == [2]


@pytest.mark.parametrize("rules", [{}, {"reload": False}])
def test_a_first_start_that_fails_or_any_without_reload_gives_up(rules: dict[str, bool]) -> None:
    """test_hygiene::test_exit_path_restart_that_cannot_start_without_reload"""
    h = Harness(drain=False, **rules)
    if rules:
        h.begin()
        h.fail_starts.add(1)
        assert of(Fail, h.feed(RestartAsked("SIGHUP"))) == [Fail()]
    else:
        h.fail_starts.add(0)
        assert of(Fail, h.feed(Begin())) == [Fail()]


def test_a_child_that_fails_while_the_old_one_stops_is_started_again_once_it_is_gone() -> None:
    """test_parallel::test_an_app_with_a_port_of_its_own_comes_back_after_each_reload"""
    h = Harness(cwd="/app")
    first = h.begin()
    h.change("version.py")
    h.settle()
    second = h.pids[1]
    out = h.exit(second, 1)
    assert of(PagesDown, out) == []
    assert f"pid {second} exited with status 1 while an older generation was stopping;" in logs(out)[0]
    assert starts(h.later(1)) == []
    out = h.exit(first, 0)
    assert starts(out) == [Start(1, ("/app/version.py",), restart=True, beside=None)]  # the same generation
    assert "restarting (version.py changed)" in logs(out)[-1]


def test_a_child_that_fails_after_the_old_one_is_gone_is_a_crash() -> None:
    h = Harness(cwd="/app")
    first = h.begin()
    h.change("version.py")
    h.settle()
    h.exit(first, 0)
    out = h.exit(h.pids[1], 1)
    assert "waiting for a change" in logs(out, "warn")[0]


# --- overlap ----------------------------------------------------------------------------------


def test_overlap_starts_beside_and_switches_when_the_new_one_is_ready() -> None:
    """test_overlap::test_twenty_reloads_without_a_failed_request"""
    h = Harness(overlap=True, cwd="/app")
    old = h.begin()
    out = h.change("a.py")
    assert of(Stop, out) == []
    out = h.settle()
    assert starts(out) == [Start(1, ("/app/a.py",), restart=True, beside=old)]
    assert f"started pid {h.pids[1]} (generation 1) beside pid {old}" in logs(out)[0]
    new = h.pids[1]
    out = h.ready(new)
    assert out.index(SwitchTo(new)) < out.index(Stop(old, TERM, drain=True))
    assert of(PagesReady, out) == []  # the old one still runs
    assert of(PagesReady, h.exit(old, 0)) == [PagesReady(1)]
    assert h.current == new


def test_overlap_keeps_the_old_child_when_the_new_one_fails() -> None:
    """test_overlap::test_overlap_keeps_the_old_child_when_the_new_one_fails"""
    h = Harness(overlap=True)
    old = h.begin()
    h.change("a.py")
    h.settle()
    new = h.pids[1]
    out = h.exit(new, 1, ("boom",))
    assert f"new pid {new} exited with status 1 before it was ready; pid {old} keeps serving\n  | boom" in logs(out, "warn")
    assert of(PagesReady, out) == [PagesReady(0)]
    assert of(PagesDown, out) == []
    assert h.current == old


def test_a_change_during_a_pending_start_replaces_the_pending_child() -> None:
    """test_overlap::test_a_change_during_a_pending_start_replaces_the_pending_child"""
    h = Harness(overlap=True)
    old = h.begin()
    h.change("a.py")
    h.settle()
    pending = h.pids[1]
    h.change("a.py")
    out = h.settle()
    assert f"replacing pid {pending}, which was not ready yet" in logs(out)
    assert of(Stop, out) == [Stop(pending, TERM)]  # no drain: it never served
    assert starts(out) == [Start(2, ("/app/a.py",), restart=True, beside=old)]


# --- the pages --------------------------------------------------------------------------------


def test_pages_are_told_ready_only_once_no_older_generation_runs() -> None:
    """test_error_page::test_the_channel_says_ready_only_after_the_new_generation_is"""
    h = Harness()
    old = h.begin()
    h.change("view.py")
    h.settle()
    assert of(PagesReady, h.ready(h.pids[1])) == []
    assert of(PagesReady, h.exit(old, 0)) == [PagesReady(1)]


def test_every_event_has_a_handler_and_every_action_a_performer() -> None:
    """A new event or action is wired on both sides, or this fails (no process is started)."""
    from reloadkit.config.settings import Config
    from reloadkit.supervisor import events
    from reloadkit.supervisor.loop import Supervisor

    every_event = {kind for name in events.__all__ if isinstance(kind := getattr(events, name), type)
                   and issubclass(kind, events.Event) and kind is not events.Event}
    every_action = {kind for name in events.__all__ if isinstance(kind := getattr(events, name), type)
                    and issubclass(kind, events.Action) and kind is not events.Action}
    assert set(Harness().machine._handlers) == every_event
    supervisor = Supervisor(Config(command=("true",)))
    try:
        assert set(supervisor._performers) == every_action
    finally:
        supervisor.selector.close()
