"""The Debouncer with a fake clock: bursts become one batch, the cap bounds the wait."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from reloadkit.watch.debounce import DEFAULT_CAP, DEFAULT_QUICK, DEFAULT_QUIET, Debouncer

pytestmark = pytest.mark.timeout(30)

# Binary fractions keep the float arithmetic exact, so "due at exactly t" is testable.
Q = 0.0625
CAP = 0.5


def test_defaults() -> None:
    deb = Debouncer()
    assert deb.quiet == DEFAULT_QUIET == 0.05
    assert deb.cap == DEFAULT_CAP == 1.0


def test_empty() -> None:
    deb = Debouncer(Q, CAP)
    assert deb.deadline() is None
    assert deb.timeout(5.0) is None
    assert not deb.due(1e9)
    assert deb.take(1e9) is None
    assert deb.pop() == frozenset()
    assert not deb and len(deb) == 0


def test_single_change() -> None:
    deb = Debouncer(Q, CAP)
    deb.add(["a.py"], now=10.0)
    assert deb.deadline() == 10.0 + Q
    assert deb.timeout(10.0) == Q
    assert not deb.due(10.0 + Q / 2)
    assert deb.take(10.0 + Q / 2) is None
    assert deb.due(10.0 + Q)
    assert deb.take(10.0 + Q) == frozenset({"a.py"})
    assert deb.deadline() is None
    assert deb.take(11.0) is None


def test_empty_add_starts_nothing() -> None:
    deb = Debouncer(Q, CAP)
    deb.add([], now=1.0)
    deb.add(set(), now=1.0)
    assert deb.deadline() is None
    deb.add(["a"], now=2.0)
    deb.add([], now=2.03)  # no paths: no activity, the window is not extended
    assert deb.deadline() == 2.0 + Q


def test_add_accepts_any_iterable() -> None:
    deb = Debouncer(Q, CAP)
    deb.add((p for p in ["a", "b", "a"]), now=0.0)
    assert deb.pending == frozenset({"a", "b"})
    assert len(deb) == 2


Burst = Sequence[tuple[float, Sequence[str]]]


def run(deb: Debouncer, events: Burst, until: float, step: float = 1 / 1024) -> list[tuple[float, frozenset[str]]]:
    """Drive the debouncer like the supervisor's loop: add events in time order, take batches."""
    batches: list[tuple[float, frozenset[str]]] = []
    queue = sorted(events, key=lambda e: e[0])
    now = 0.0
    i = 0
    while now <= until:
        while i < len(queue) and queue[i][0] <= now:
            deb.add(queue[i][1], now)
            i += 1
        batch = deb.take(now)
        if batch is not None:
            batches.append((now, batch))
        now += step
    return batches


@pytest.mark.parametrize(
    ("name", "events", "expected"),
    [
        (
            "one save, several events for the same file",
            [(0.0, ["a.py"]), (0.001, ["a.py"]), (0.002, ["a.py"])],
            [(0.002 + Q, {"a.py"})],
        ),
        (
            "atomic save: temp file + rename, all in one batch",
            [(0.0, ["a.py"]), (0.0005, ["a.py"])],
            [(0.0005 + Q, {"a.py"})],
        ),
        (
            "two saves further apart than the quiet window: two batches",
            [(0.0, ["a.py"]), (0.25, ["b.py"])],
            [(Q, {"a.py"}), (0.25 + Q, {"b.py"})],
        ),
        (
            "gaps just under the quiet window keep extending the batch",
            [(i * (Q - 1 / 256), [f"f{i}.py"]) for i in range(5)],
            [(4 * (Q - 1 / 256) + Q, {f"f{i}.py" for i in range(5)})],
        ),
        (
            "a continuous stream is cut at the cap, then goes on in a new batch",
            [(i / 64, ["log.json"]) for i in range(64)],  # one event every 15.6 ms for 1 s
            # the event at 0.5 s joins the first batch; the next one (0.5 + 1/64) opens the second
            [(CAP, {"log.json"}), (CAP + 1 / 64 + CAP, {"log.json"})],
        ),
    ],
)
def test_bursts(name: str, events: Burst, expected: list[tuple[float, set[str]]]) -> None:
    got = run(Debouncer(Q, CAP), events, until=3.0)
    assert [set(b) for _, b in got] == [b for _, b in expected], name
    for (t_got, _), (t_want, _) in zip(got, expected, strict=True):
        assert math.isclose(t_got, t_want, abs_tol=2 / 1024), name


def test_git_checkout_of_300_files_is_one_batch_with_the_defaults() -> None:
    # 300 files written over 300 ms, a few ms apart (what a checkout looks like)
    deb = Debouncer()
    events = [(i / 1000, [f"pkg/m{i}.py"]) for i in range(300)]
    batches = run(deb, events, until=2.0)
    assert len(batches) == 1
    t, batch = batches[0]
    assert len(batch) == 300
    assert 0.299 + DEFAULT_QUIET - 0.002 <= t <= 0.299 + DEFAULT_QUIET + 0.002


def test_cap_is_measured_from_the_first_change() -> None:
    deb = Debouncer(quiet=0.25, cap=0.5)
    deb.add(["a"], 1.0)
    deb.add(["b"], 1.125)
    deb.add(["c"], 1.375)
    assert deb.deadline() == 1.5  # min(1.375 + 0.25, 1.0 + 0.5)
    assert not deb.due(1.4375)
    assert deb.take(1.5) == frozenset({"a", "b", "c"})
    deb.add(["d"], 1.5)
    assert deb.deadline() == 1.75  # a new batch has a new first change


def test_pop_hands_over_even_when_not_due() -> None:
    deb = Debouncer(Q, CAP)
    deb.add(["a", "b"], 0.0)
    assert deb.pop() == frozenset({"a", "b"})
    assert deb.deadline() is None


def test_clear() -> None:
    deb = Debouncer(Q, CAP)
    deb.add(["a"], 0.0)
    deb.clear()
    assert not deb and deb.deadline() is None
    deb.add(["b"], 5.0)
    assert deb.deadline() == 5.0 + Q


def test_timeout_never_negative() -> None:
    deb = Debouncer(Q, CAP)
    deb.add(["a"], 0.0)
    assert deb.timeout(10.0) == 0.0


@pytest.mark.parametrize(
    ("quiet", "cap", "effective_cap"),
    [
        (0.05, 1.0, 1.0),
        (2.0, 1.0, 2.0),  # a long --debounce is not cut short by the default cap
        (0.0, 0.0, 0.0),
        (0.0, 1.0, 1.0),
    ],
)
def test_cap_at_least_quiet(quiet: float, cap: float, effective_cap: float) -> None:
    assert Debouncer(quiet, cap).cap == effective_cap


def test_zero_quiet_is_due_immediately() -> None:
    deb = Debouncer(0.0, 1.0)
    deb.add(["a"], 3.0)
    assert deb.due(3.0)
    assert deb.take(3.0) == frozenset({"a"})


@pytest.mark.parametrize(("quiet", "cap"), [(-0.001, 1.0), (0.05, -1.0), (math.nan, 1.0), (0.05, math.inf)])
def test_rejects_bad_values(quiet: float, cap: float) -> None:
    with pytest.raises(ValueError):
        Debouncer(quiet, cap)


def test_repr() -> None:
    deb = Debouncer(Q, CAP)
    deb.add(["a"], 1.0)
    assert "pending=1" in repr(deb)


# --- the quick window: a single save restarts at once, a storm still once -------------------


def _quick() -> Debouncer:
    return Debouncer(quick=DEFAULT_QUICK)  # the supervisor's settings (50 ms quiet, 1 s cap)


def test_a_single_save_is_due_within_ten_milliseconds_of_its_first_event() -> None:
    # an editor's save: write, close, attributes (and a rename) within 2 ms, on one path
    events = [(0.0, ["app.py"]), (0.001, ["app.py"]), (0.002, ["app.py"])]
    batches = run(_quick(), events, until=1.0)
    assert [set(batch) for _, batch in batches] == [{"app.py"}]
    assert batches[0][0] <= 0.010


def test_save_all_of_a_few_files_is_still_quick() -> None:
    events = [(0.0, ["a.py"]), (0.0005, ["b.py"]), (0.001, ["c.py"])]
    batches = run(_quick(), events, until=1.0)
    assert len(batches) == 1 and batches[0][0] <= 0.010


def test_the_benchmarks_write_storm_is_one_batch() -> None:
    # bench/_workload.py: 300 modules rewritten in 10 batches spread over 50 ms
    events = [(b * 0.05 / 9 + i * 0.00002, [f"mods/m{b * 30 + i:03d}.py"]) for b in range(10) for i in range(30)]
    batches = run(_quick(), events, until=2.0)
    assert len(batches) == 1 and len(batches[0][1]) == 300


def test_a_rename_storm_is_one_batch() -> None:
    # 300 files renamed in a few milliseconds: both names of each
    events = [(i * 0.00001, [f"old/m{i}.py", f"new/m{i}.py"]) for i in range(300)]
    batches = run(_quick(), events, until=2.0)
    assert len(batches) == 1 and len(batches[0][1]) == 600


def test_a_checkout_with_pauses_is_one_batch() -> None:
    # hundreds of files over ~300 ms, with pauses of up to 30 ms between groups
    events = [(g * 0.03 + i * 0.0005, [f"pkg{g}/m{i}.py"]) for g in range(10) for i in range(30)]
    batches = run(_quick(), events, until=2.0)
    assert len(batches) == 1 and len(batches[0][1]) == 300


def test_a_storm_that_opens_with_a_lone_change_restarts_at_most_twice() -> None:
    """The one case the quick window costs a restart: the first change of a storm alone,
    then a pause longer than the quick window. The rest follows within the quiet window
    of that lone change, so it is taken for the storm it is: one more batch, not many."""
    events = [(0.0, ["setup.cfg"])] + [(0.012 + g * 0.02 + i * 0.0002, [f"m{g}_{i}.py"]) for g in range(10) for i in range(2)]
    batches = run(_quick(), events, until=2.0)
    assert len(batches) == 2
    assert set(batches[0][1]) == {"setup.cfg"} and len(batches[1][1]) == 20


def test_two_saves_a_second_apart_are_both_quick() -> None:
    deb = _quick()
    batches = run(deb, [(0.0, ["a.py"]), (1.0, ["a.py"])], until=2.0)
    assert len(batches) == 2 and batches[1][0] - 1.0 <= 0.010


def test_the_quick_window_never_exceeds_the_quiet_window() -> None:
    deb = Debouncer(0.002, 1.0, quick=0.005)
    deb.add(["a.py"], now=0.0)
    assert deb.deadline() == 0.002
    with pytest.raises(ValueError):
        Debouncer(quick=-1.0)


def test_a_save_still_being_written_waits_for_its_close() -> None:
    """The writer was preempted between its write and its close: the first event must not
    end the batch after the quick window; the close, a moment later, does."""
    deb = _quick()
    deb.add(["app.py"], now=0.0, writing=True)
    assert deb.deadline() == DEFAULT_QUIET
    deb.add(["app.py"], now=0.02)  # the close
    assert deb.deadline() == 0.02 + DEFAULT_QUICK
    assert set(deb.take(0.02 + DEFAULT_QUICK) or ()) == {"app.py"}
