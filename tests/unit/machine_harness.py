"""A fake world for the supervisor's state machine: a fake clock, the hand-over as the loop
performs it, and a harness that answers Start and StepDrain as the loop does."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from reloadkit.supervisor.events import (
    Action,
    Begin,
    Changed,
    Drained,
    Event,
    Exited,
    Log,
    Ready,
    Spawned,
    SpawnFailed,
    Start,
    StepDrain,
    Stop,
    SwitchTo,
    Tick,
)
from reloadkit.supervisor.machine import Machine, Rules

QUIET = 0.0625  # binary fractions keep the float arithmetic exact
TERM = signal.SIGTERM


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """The hand-over as the loop performs it: who is on the address; unread changes."""

    listeners: bool = True
    addressed: set[int] = field(default_factory=set)
    unread: bool = False
    stuck: set[int] = field(default_factory=set)  # pids whose address cannot be moved

    def on_the_address(self, pid: int) -> bool:
        return self.listeners and pid in self.addressed

    def changes_unread(self) -> bool:
        return self.unread


class Harness:
    """Feeds events, answers Start/StepDrain the way the loop does, records every action."""

    def __init__(self, **rules: object) -> None:
        self.clock = Clock()
        self.world = World(listeners=bool(rules.get("drain", True)))
        rules.setdefault("drain", True)
        rules.setdefault("debounce", QUIET)
        self.machine = Machine(Rules(**rules), self.world, self.clock)  # type: ignore[arg-type]
        self.actions: list[Action] = []
        self.next_pid = 1000
        self.fail_starts: set[int] = set()  # generations whose spawn fails
        self.drain_finishes = True  # a StepDrain sends the signal at once
        self.speaks_restart = False
        self.warm_from: int | None = None  # generations from this one on spawn warm (unless Start.cold)
        self.pids: dict[int, int] = {}  # generation -> pid

    def feed(self, event: Event) -> list[Action]:
        out: list[Action] = []
        for action in self.machine.handle(event):
            out.append(action)
            out += self._answer(action)
        self.actions += out
        return out

    def _answer(self, action: Action) -> list[Action]:
        if isinstance(action, Start):
            if action.generation in self.fail_starts:
                return self._inner(SpawnFailed(action.generation, "cannot run the command"))
            self.next_pid += 1
            pid = self.next_pid
            self.pids[action.generation] = pid
            if action.beside is None:
                self.world.addressed.add(pid)
            warm = self.warm_from is not None and action.generation >= self.warm_from and not action.cold
            return self._inner(Spawned(action.generation, pid, self.clock.now, speaks_restart=self.speaks_restart, warm=warm))
        if isinstance(action, SwitchTo):
            self.world.addressed = {action.pid}
        if isinstance(action, Stop) and action.drain and action.pid not in self.world.stuck:
            self.world.addressed.discard(action.pid)
        if isinstance(action, StepDrain):
            done = self.drain_finishes
            return self._inner(Drained(action.pid, done, None if done else self.clock.now + 0.01, 0.0))
        return []

    def _inner(self, event: Event) -> list[Action]:
        out: list[Action] = []
        for action in self.machine.handle(event):
            out.append(action)
            out += self._answer(action)
        return out

    # --- conveniences ---------------------------------------------------------------------

    def at(self, when: float) -> list[Action]:
        self.clock.now = when
        return self.feed(Tick())

    def later(self, seconds: float) -> list[Action]:
        return self.at(self.clock.now + seconds)

    def settle(self) -> list[Action]:
        """Run the timers, deadline by deadline, until no batch and no restart timer is pending."""
        out: list[Action] = []
        while self.machine.debouncer or self.machine.restart_at is not None:
            deadline = self.machine.deadline()
            assert deadline is not None
            out += self.at(max(deadline, self.clock.now))
        return out

    def begin(self, ready: bool = True) -> int:
        self.feed(Begin())
        pid = self.pids[0]
        if ready:
            self.feed(Ready(pid, "accepting"))
        return pid

    def change(self, *paths: str) -> list[Action]:
        return self.feed(Changed(frozenset(f"/app/{path}" for path in paths)))

    def exit(self, pid: int, code: int, tail: tuple[str, ...] = ()) -> list[Action]:
        self.world.addressed.discard(pid)
        return self.feed(Exited(pid, code, tail))

    def ready(self, pid: int) -> list[Action]:
        return self.feed(Ready(pid, "accepting"))

    @property
    def current(self) -> int:
        assert self.machine.current is not None
        return self.machine.current.pid


def logs(actions: list[Action], level: str | None = None) -> list[str]:
    return [a.text for a in actions if isinstance(a, Log) and (level is None or a.level == level)]


def starts(actions: list[Action]) -> list[Start]:
    return [a for a in actions if isinstance(a, Start)]


def of(kind: type[Action], actions: list[Action]) -> list[Action]:
    return [a for a in actions if isinstance(a, kind)]
