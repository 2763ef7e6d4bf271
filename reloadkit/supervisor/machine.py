"""The generations as a pure state machine: events and the time in, actions out.

Which generation starts, when, after what exit, with which retry; which one is stopped, how
(drained, signalled, nudged, killed); when pages are told "ready" or "down"; when the
supervisor exits. No processes, sockets or files here: :class:`Machine` is handed an event
and a clock, changes its own records and returns :class:`Action` objects that the loop
(:mod:`reloadkit.supervisor.loop`) performs, in order. Unit tests drive it with a fake clock
(tests/unit/test_machine.py).

The records (:class:`Rules`, :class:`Gen`, :class:`Restart`, :class:`Stopping`) are in
:mod:`reloadkit.supervisor.state`. Two facts only the world knows are asked through
:class:`Facts`: whether a generation still holds a socket new connections go to (the
hand-over may have failed to move an address), and whether the watcher has changes not read
yet.

Adding a decision
-----------------
1. Name what happened as an event (a frozen dataclass in :mod:`~reloadkit.supervisor.events`) or reuse
   one; give facts the decision needs as fields (the loop knows them, the machine must not
   ask the system).
2. Handle it: a method ``_on_<event>`` registered in ``Machine._handlers``, or a few lines
   in an existing handler. State lives in :class:`Gen` (per generation, in ``state.py``) or
   on the machine.
3. If the world must do something new, add an action dataclass (in ``events.py``) and its
   performer in ``loop.py`` (the ``Supervisor._performers`` table); an action says *what*,
   the loop knows *how*.
4. Add a unit test (tests/unit/test_machine*.py, with machine_harness.py's fake world) that
   feeds events and checks the actions.

For example, "exit status 3 is a restart request only from a child that speaks the
protocol" is :attr:`Gen.speaks_restart` (set from :class:`Spawned`) plus one condition in
:meth:`Machine._asks_restart`.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Callable

from reloadkit.supervisor.events import (
    Action,
    AppBroken,
    Begin,
    Changed,
    Drained,
    DrainNow,
    Event,
    Exited,
    Fail,
    Finish,
    KillTree,
    Log,
    LookAhead,
    PagesDown,
    PagesReady,
    Ready,
    RestartAsked,
    RestoreTerminal,
    Shutdown,
    Signal,
    Spawned,
    SpawnFailed,
    Start,
    StepDrain,
    Stop,
    SwitchTo,
    Tick,
    WarmFailed,
)
from reloadkit.supervisor.policy import CrashBackoff, WarmBlame, describe_changes
from reloadkit.supervisor.state import Facts, Gen, Restart, Rules, Stopping
from reloadkit.watch.debounce import DEFAULT_QUICK, Debouncer

__all__ = ["RESTART_STATUS", "Facts", "Gen", "Machine", "Restart", "Rules", "Stopping"]

RESTART_STATUS = 3
BROKEN_GRACE = 0.5  # a server whose app cannot load is stopped if it still runs this long after saying so
DEBOUNCE_CAP = 1.0
CTRL_C_GRACE = 1.0
_KILLED_WAIT = 3600.0  # after SIGKILL: only the reap is awaited


# --- the machine --------------------------------------------------------------------------


class Machine:
    """The generations: which runs, which is pending, which are stopping, what comes next."""

    def __init__(self, rules: Rules, facts: Facts, clock: Callable[[], float]) -> None:
        self.rules = rules
        self.facts = facts
        self.clock = clock
        self.generation = -1
        self.current: Gen | None = None
        self.pending: Gen | None = None  # started beside current (overlap), not ready yet
        self.stopping: list[Stopping] = []
        self.restart: Restart | None = None
        self.restart_at: float | None = None
        self.shutdown_signal: int | None = None
        self.exit_code: int | None = None
        self.last_status: int | None = None
        self.last_stop_ms: float | None = None
        self.backoff = CrashBackoff()
        self.warm_blame = WarmBlame()
        self.debouncer = Debouncer(rules.debounce, max(DEBOUNCE_CAP, rules.debounce), quick=DEFAULT_QUICK)
        self._out: list[Action] = []
        self._now = 0.0
        self._starting: tuple[Gen, Restart | None] = (Gen(-1), None)  # the Start awaiting its answer
        self._handlers: dict[type[Event], Callable[..., None]] = {
            Begin: self._on_begin,
            Changed: self._on_changed,
            RestartAsked: self._on_restart_asked,
            Spawned: self._on_spawned,
            SpawnFailed: self._on_spawn_failed,
            Ready: self._on_ready,
            Exited: self._on_exited,
            Drained: self._on_drained,
            AppBroken: self._on_app_broken,
            Shutdown: self._on_shutdown,
            Tick: self._on_tick,
        }

    # --- the interface ----------------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        """Apply ``event`` at the clock's time; the actions to perform, in order."""
        self._now = self.clock()
        self._out = []
        self._handlers[type(event)](event)
        out, self._out = self._out, []
        return out

    def deadline(self) -> float | None:
        """When a :class:`Tick` has something to do (None: nothing is timed)."""
        times = [at for stop in self.stopping for at in (stop.kill_at, stop.nudge_at, stop.drain_at) if at is not None]
        broken = self.current.broken_at if self.current is not None else None
        for at in (self.debouncer.deadline(), self.restart_at, broken):
            if at is not None:
                times.append(at)
        finite = [at for at in times if not math.isinf(at)]
        return min(finite) if finite else None

    def find(self, pid: int) -> Gen | None:
        for gen in (self.current, self.pending, *[stop.gen for stop in self.stopping]):
            if gen is not None and gen.pid == pid and pid:
                return gen
        return None

    def live(self) -> list[Gen]:
        """Every generation still running: stopping ones first, then current, then pending."""
        gens = [stop.gen for stop in self.stopping]
        for gen in (self.current, self.pending):
            if gen is not None and gen not in gens:
                gens.append(gen)
        return [gen for gen in gens if gen.alive]

    def candidates(self) -> list[Gen]:
        """Who may send a notify message: the pending generation, then the current one."""
        return [gen for gen in (self.pending, self.current) if gen is not None and gen.alive and gen.pid]

    # --- output -----------------------------------------------------------------------------

    def _emit(self, action: Action) -> None:
        self._out.append(action)

    def _info(self, text: str) -> None:
        self._emit(Log("info", text))

    def _debug(self, text: str) -> None:
        self._emit(Log("debug", text))

    def _warn(self, text: str) -> None:
        self._emit(Log("warn", text))

    # --- events -----------------------------------------------------------------------------

    def _on_begin(self, _event: Begin) -> None:
        self._start(None)

    def _on_changed(self, event: Changed) -> None:
        changed = event.paths
        if not changed or self.shutdown_signal is not None:
            return
        self._debug(f"changed: {', '.join(sorted(changed)[:5])}{' ...' if len(changed) > 5 else ''}")
        writing = bool(event.writing & (changed | self.debouncer.pending))
        began = not self.debouncer
        self.debouncer.add(changed, self._now, writing=writing)
        if not self.rules.overlap and self.restart is None and self.current is not None and self.current.alive:
            # Every change that passed the filters restarts: stop the old child now, while
            # the burst settles, instead of after the quiet window. The new child starts
            # once both are done; the batch gives the reason.
            self.restart = Restart("")
            self._begin_stop(self.current, self.rules.stop_signal, drain=self.rules.drain)
            self.current = None
        if began:
            self._emit(LookAhead())

    def _on_app_broken(self, event: AppBroken) -> None:
        """A server that runs but cannot load the app answers a bare 500, or nothing, until
        the code is fixed: stop it and show the error page instead, until the next change."""
        gen = self.find(event.pid)
        if gen is None or gen is not self.current or not gen.alive or gen.broken or not self.rules.reload:
            return
        gen.broken = event.reason
        if gen.ready_at is not None:  # else once it is: one that fails while it starts is left to its exit
            gen.broken_at = self._now + BROKEN_GRACE  # (a crash, a cold retry); the first request can beat the probe

    def _stop_broken(self, gen: Gen) -> None:
        gen.broken_at = None
        if self.shutdown_signal is not None or self.restart is not None or self.debouncer:
            return  # on its way out already, or replaced by a change anyway
        self._warn(f"pid {gen.pid} cannot load the app: {gen.broken}; showing the error page until a change")
        self.current = None
        self._begin_stop(gen, self.rules.stop_signal)

    def _on_restart_asked(self, event: RestartAsked) -> None:
        self._request_restart(event.reason, set(), now=True)

    def _on_tick(self, event: Tick) -> None:
        now = self._now
        # The next generation first: a drain's look at the old one can take 10-20 ms.
        if self.debouncer.due(now) and not self.facts.changes_unread():
            batch = self.debouncer.pop()
            if batch:
                self._request_restart(describe_changes(batch, self.rules.cwd), set(batch))
        if self.restart_at is not None and now >= self.restart_at:
            self.restart_at = None
            restart, self.restart = self.restart, None
            self._start(restart)
        for pid, how in event.ready:
            self._on_ready(Ready(pid, how))
        gen = self.current
        if gen is not None and gen.broken_at is not None and now >= gen.broken_at:
            self._stop_broken(gen)
        for stop in list(self.stopping):
            self._tick_stop(stop, now)

    def _tick_stop(self, stop: Stopping, now: float) -> None:
        gen = stop.gen
        if stop.draining and stop.drain_at is not None and now >= stop.drain_at:
            if self._start_is_near(stop):
                stop.drain_at = self.debouncer.deadline()
            else:
                stop.drain_at = None  # until Drained says when to look again
                self._emit(StepDrain(gen.pid))
        if stop.nudge_at is not None and now >= stop.nudge_at:
            # A child that caught the terminal's Ctrl+C (pdb does) and went on.
            stop.nudge_at = None
            self._debug(f"pid {gen.pid} is still running after Ctrl+C; sending {signal.Signals(self.rules.stop_signal).name}")
            self._emit(Signal(gen.pid, self.rules.stop_signal))
        if now >= stop.kill_at and gen.alive:
            self._warn(f"pid {gen.pid} did not stop within {self.rules.stop_timeout:g} s; killing its process tree")
            self._emit(KillTree(gen.pid))
            stop.kill_at = now + _KILLED_WAIT

    def _start_is_near(self, stop: Stopping) -> bool:
        """A burst is settling and the next generation need not wait for ``stop``'s: its
        start comes first, the look at the old one after."""
        return bool(self.debouncer) and not self.rules.strict_order and not self.facts.on_the_address(stop.gen.pid)

    def _on_drained(self, event: Drained) -> None:
        stop = next((stop for stop in self.stopping if stop.gen.pid == event.pid), None)
        if stop is None or not stop.draining:
            return
        if not event.done:
            stop.drain_at = event.next_at
            return
        if event.waited >= 0.005:
            self._debug(f"waited {event.waited * 1000:.0f} ms for pid {event.pid} to finish the requests in flight")
        stop.draining = False
        stop.drain_at = None
        stop.kill_at = self._now + self.rules.stop_timeout
        self._signalled(stop)

    def _on_ready(self, event: Ready) -> None:
        gen = self.find(event.pid)
        if gen is None or not gen.alive or gen.ready_at is not None:
            return
        gen.ready_at, gen.ready_how = self._now, event.how
        self._info(f"ready in {(gen.ready_at - gen.started) * 1000:.0f} ms ({event.how}; pid {gen.pid})")
        if self.warm_blame.ready(gen.number, warm=gen.warm):  # it failed warm, and serves cold
            off = f"warm generations failed {self.warm_blame.limit} times where cold ones of the same code served"
            self._emit(WarmFailed(gen.number, off=off if self.warm_blame.off else None))
        if gen.served:
            self.backoff.reset()  # a request to restart that follows is not a start-up loop
        if gen.broken and gen is self.current:
            gen.broken_at = self._now + BROKEN_GRACE
        if gen is self.pending:
            old = self.current
            self.current, self.pending = gen, None
            self._emit(SwitchTo(gen.pid))
            if old is not None and old.alive:
                self._begin_stop(old, self.rules.stop_signal, drain=self.rules.drain)
        if gen is self.current:
            self._tell_pages_ready()  # after the switch: a reload must reach the new one

    def _on_shutdown(self, event: Shutdown) -> None:
        if self.shutdown_signal is not None:
            self._warn("second signal: killing everything now")
            for gen in self.live():
                self._emit(KillTree(gen.pid))
            return
        self.shutdown_signal = event.number
        self.restart = None
        self.restart_at = None
        # From the terminal, Ctrl+C already reached a child in our process group.
        send = not (event.number == signal.SIGINT and event.foreground)
        for stop in self.stopping:
            if stop.draining:  # a shutdown waits for no request
                self._emit(DrainNow(stop.gen.pid))
                stop.draining = False
                stop.drain_at = None
                stop.kill_at = self._now + self.rules.stop_timeout
        stopping = [stop.gen for stop in self.stopping]
        for gen in self.live():
            if gen not in stopping:
                self._begin_stop(gen, event.number, send=send)
        self._maybe_finish()

    # --- starting -----------------------------------------------------------------------------

    def _request_restart(self, reason: str, changed: set[str], *, now: bool = False) -> None:
        if self.shutdown_signal is not None:
            return
        if self.restart is not None:  # a restart is under way: fold this change into it
            self.restart.changed |= changed
            self.restart.reason = self.restart.reason or reason
            if self.restart_at is not None and (now or changed):
                # A change, or an explicit request, ends a crash back-off's wait: the back-off
                # slows a child that keeps asking, not the fix the user just saved.
                self.restart_at = self._now
            self._start_when_settled()
            return
        restart = Restart(reason, set(changed))
        if self.rules.overlap and self.current is not None and self.current.alive:
            if self.pending is not None:
                self._info(f"replacing pid {self.pending.pid}, which was not ready yet")
                self._begin_stop(self.pending, self.rules.stop_signal)
                self.pending = None
            self._start(restart)
            return
        self.restart = restart
        if self.current is not None and self.current.alive:
            self._begin_stop(self.current, self.rules.stop_signal, drain=self.rules.drain)
            self.current = None
        self._start_when_settled()

    def _start_when_settled(self) -> None:
        """Start the pending restart once no burst is settling and no older generation is
        in the way: one still on the address (it was not moved) or, with strict order or
        for a retry, any that has not exited."""
        restart = self.restart
        if (
            restart is not None
            and self.restart_at is None
            and not self.debouncer
            and not (self.current is not None and self.current.alive)
            and not any(
                self.rules.strict_order or restart.after_older or self.facts.on_the_address(stop.gen.pid)
                for stop in self.stopping
            )
        ):
            self.restart = None
            self._start(restart)

    def _start(self, restart: Restart | None) -> None:
        if self.shutdown_signal is not None:
            return
        if restart is None or restart.again != self.generation:
            self.generation += 1
        beside = self.current if self.rules.overlap and self.current is not None and self.current.alive else None
        gen = Gen(self.generation, beside=beside.pid if beside is not None else None, started=self._now,
                  changed=frozenset(restart.changed) if restart else frozenset())
        if self.stopping and beside is None:
            gen.while_stopping = restart or Restart("")
        self._starting = (gen, restart)
        if beside is not None:
            self.pending = gen
        else:
            self.current = gen
        self._emit(Start(gen.number, tuple(sorted(restart.changed)) if restart else (), restart is not None, gen.beside,
                         cold=restart is not None and restart.cold))

    def _on_spawned(self, event: Spawned) -> None:
        gen, restart = self._starting
        assert gen.number == event.generation
        gen.pid, gen.started, gen.speaks_restart, gen.warm = event.pid, event.started, event.speaks_restart, event.warm
        if restart is None:
            self._info(f"started pid {gen.pid} (generation {gen.number})")
        else:
            detail = f", stop took {self.last_stop_ms:.0f} ms" if self.last_stop_ms is not None and gen.beside is None else ""
            if gen.while_stopping is not None:
                detail = f" while pid {', '.join(str(stop.gen.pid) for stop in self.stopping)} stops"
            where = f" beside pid {gen.beside}" if gen.beside is not None else ""
            self._info(f"restarting ({restart.reason}): started pid {gen.pid} (generation {gen.number}){where}{detail}")
        self.last_stop_ms = None

    def _on_spawn_failed(self, event: SpawnFailed) -> None:
        gen, _restart = self._starting
        assert gen.number == event.generation
        if self.pending is gen:
            self.pending = None
        if self.current is gen:
            self.current = None
        if gen.number == 0 or not self.rules.reload:
            self._emit(Fail())  # with --no-reload no change will come: exit
            return
        self._warn(f"{event.error}; waiting for a change")
        self._emit(PagesDown(None, (), error=event.error))

    # --- stopping -----------------------------------------------------------------------------

    def _begin_stop(self, gen: Gen, number: int, *, send: bool = True, drain: bool = False) -> None:
        """Stop ``gen``; with ``drain``, its addresses move to new sockets first and the signal
        waits until it serves no request (looks driven by Tick, see drain.py)."""
        gen.stop_sent_at = self._now
        self._debug(f"stopping pid {gen.pid}" + (f" with {signal.Signals(number).name}" if send else ""))
        nudge = None if send else self._now + min(CTRL_C_GRACE, self.rules.stop_timeout)
        stop = Stopping(gen, self._now + self.rules.stop_timeout, nudge)
        self.stopping.append(stop)
        if send and drain and gen.alive:
            self._emit(Stop(gen.pid, number, drain=True))
            stop.draining, stop.drain_at = True, self._now
            stop.kill_at = math.inf  # counted from the signal
        elif send:
            self._emit(Stop(gen.pid, number))
            self._signalled(stop)
        else:
            self._emit(Stop(gen.pid, None))

    def _signalled(self, stop: Stopping) -> None:
        if self.rules.stop_timeout == 0:
            self._emit(KillTree(stop.gen.pid))

    def _maybe_finish(self) -> None:
        if self.shutdown_signal is None or self.live():
            return
        if self.current is not None and self.current.returncode is not None:
            self.exit_code = self.current.returncode
        elif self.last_status is not None and not self.rules.reload:
            self.exit_code = self.last_status
        else:
            self.exit_code = 128 + self.shutdown_signal
        self._emit(Finish(self.exit_code))

    # --- exits --------------------------------------------------------------------------------

    def _on_exited(self, event: Exited) -> None:
        gen = self.find(event.pid)
        if gen is None:
            return
        gen.returncode = event.code
        try:
            self._after_exit(gen, event.code, event.tail)
        finally:
            gen.while_stopping = None

    def _after_exit(self, gen: Gen, code: int, tail: tuple[str, ...]) -> None:
        stop = next((stop for stop in self.stopping if stop.gen is gen), None)
        if not self.live():
            self._emit(RestoreTerminal())
        if stop is not None:
            self._after_stop(stop, code)
            if gen.broken and self.shutdown_signal is None and self.restart is None and not self.debouncer:
                self._emit(PagesDown(None, tail, error=f"cannot load the app: {gen.broken}"))
            return
        if self.shutdown_signal is not None:
            self._maybe_finish()
            return
        self.last_status = code
        # An older generation still stopping explains a failure first (it holds what the new
        # one needs); only a warm start that fails on its own is retried cold.
        if gen is self.current and self._retry_beside_stopping(gen, code):
            return
        if self._retry_cold(gen, code):
            return
        if gen is self.pending:
            self._pending_failed(gen, code, tail)
        elif gen is self.current:
            self._current_exited(gen, code, tail)

    def _current_exited(self, gen: Gen, code: int, tail: tuple[str, ...]) -> None:
        """The serving generation exited on its own (no retry applies)."""
        if not self.rules.reload:
            self.shutdown_signal = 0
            self.exit_code = code
            if not self.live():
                self._emit(Finish(code))
            return
        if self._asks_restart(gen, code):
            self._restart_on_request(gen)
            return
        self._warn(f"pid {gen.pid} exited with status {code}; waiting for a change")
        self.current = None
        self._emit(PagesDown(code, tail))  # a stopping child, if any, holds other sockets (the hand-over)

    def _after_stop(self, stop: Stopping, code: int) -> None:
        gen = stop.gen
        self.stopping.remove(stop)
        assert gen.stop_sent_at is not None
        self.last_stop_ms = (self._now - gen.stop_sent_at) * 1000
        self._debug(f"pid {gen.pid} stopped with status {code} in {self.last_stop_ms:.0f} ms")
        if self.current is not None and gen.number < self.current.number:
            self._tell_pages_ready()
        if self.shutdown_signal is not None:
            self._maybe_finish()
        else:
            self._start_when_settled()

    def _asks_restart(self, gen: Gen, code: int) -> bool:
        """Exit status 3 is werkzeug's and Django's "restart me", from a child that speaks
        that protocol: one that served before it asked, or one started under it
        (:attr:`Gen.speaks_restart`). A server that exits 3 during start-up (gunicorn when a
        worker fails to boot) crashed: restarting it would loop until the code is fixed."""
        return code == RESTART_STATUS and (gen.ready_at is not None or gen.speaks_restart)

    def _restart_on_request(self, gen: Gen) -> None:
        # One that served asked for its restart (a file changed): at once. One that asks
        # right after starting, again and again, is slowed down.
        # (Ready by the timer alone is no proof: where no probe works, a server that fails to
        # boot after a second would otherwise loop with no delay.)
        delay = 0.0 if gen.served else self.backoff.next_delay(self._now - gen.started)
        self.restart = Restart(f"pid {gen.pid} exited with status 3")
        self.current = None
        if delay:
            self._warn(f"pid {gen.pid} asked for a restart right after starting; waiting {delay:g} s")
        self.restart_at = self._now + delay

    def _pending_failed(self, gen: Gen, code: int, tail: tuple[str, ...]) -> None:
        self.pending = None
        shown = "\n".join(f"  | {line}" for line in tail[-20:])
        current = self.current
        serving = f"; pid {current.pid} keeps serving" if current is not None and current.alive else ""
        self._warn(f"new pid {gen.pid} exited with status {code} before it was ready{serving}" + (f"\n{shown}" if shown else ""))
        if current is not None and current.alive:
            self._emit(PagesReady(current.number))  # pages stay with the one that serves

    def _retry_cold(self, gen: Gen, code: int) -> bool:
        """A warm start that failed before it was ready where the last cold one served is
        started again cold at once (:class:`~reloadkit.supervisor.policy.WarmBlame`)."""
        if gen.ready_at is not None or code == 0 or gen not in (self.current, self.pending):
            return False
        if not self.warm_blame.failed_early(gen.number, warm=gen.warm):
            return False
        self._warn(f"pid {gen.pid} (generation {gen.number}, started warm) exited with status {code} before it was"
                   " ready, where the last cold start served; starting it again cold")
        restart = Restart(f"generation {gen.number} failed warm", set(gen.changed), again=gen.number, cold=True)
        if gen is self.pending:
            self.pending = None
            self._start(restart)
            return True
        self.current, self.restart = None, restart
        self._start_when_settled()
        return True

    def _retry_beside_stopping(self, gen: Gen, code: int) -> bool:
        """A child that failed before it was ready while an older generation was stopping
        (an app that cannot run twice: a port of its own, a lock file) gets one more start
        once that one is gone, without a crash report or a backoff."""
        why = gen.while_stopping
        if why is None or code == 0 or self._asks_restart(gen, code) or gen.ready_at is not None:
            return False
        if not any(stop.gen.number < gen.number for stop in self.stopping):
            return False  # the older ones are gone: a failure of its own
        self._info(f"pid {gen.pid} exited with status {code} while an older generation was stopping;"
                   " starting it again once that one is gone")
        self.current = None
        self.restart = Restart(why.reason, set(why.changed), after_older=True, again=gen.number)
        self._start_when_settled()
        return True

    def _tell_pages_ready(self) -> None:
        """Pages reload once the current generation is ready and no older one still runs: a
        browser's kept-alive connection could reach one that is stopping (and answer old code)."""
        gen = self.current
        if gen is None or not gen.alive or gen.ready_at is None:
            return
        if not any(stop.gen.number < gen.number for stop in self.stopping):
            self._emit(PagesReady(gen.number))

