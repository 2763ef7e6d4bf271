"""The next generation starts as soon as the address has moved to its socket, while the old
one drains and shuts down; ``--strict-order`` keeps the old sequence (stop, exit, start)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import (
    LoopingClient,
    Reloadkit,
    assert_all_gone,
    free_port,
    pid_alive,
    try_get,
    versioned_args,
    versioned_project,
    wait_for,
    write_file,
)

pytestmark = pytest.mark.timeout(90)


def test_a_slow_shutdown_does_not_delay_the_next_generation(tmp_path: Path) -> None:
    """The old generation holds its exit (a shutdown that takes its time: lifespan
    handlers, pools); the new one serves meanwhile, and no request fails."""
    versioned_project(tmp_path)
    with Reloadkit(versioned_args("-v", flags=("--hold-exit",)), cwd=tmp_path) as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 20, "v0")
        with LoopingClient(url, max_requests=100_000, max_seconds=60) as client:
            for number in (1, 2):
                old = rk.child_pid(number - 1)
                write_file(tmp_path / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: client.last_body == f"v{n}", 20, f"the client to see v{number}")
                assert pid_alive(old), "the old generation had to exit first"
                assert re.search(rf"started pid \d+ \(generation {number}\) while pid {old} stops", rk.output)
                (tmp_path / f"exit-{number - 1}").touch()
                assert_all_gone({old}, timeout=10)
        assert client.stats["failed"] == 0, client.stats["errors"][:5]


def test_strict_order_starts_the_next_generation_only_after_the_old_one_exited(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    with Reloadkit(versioned_args("-v", "--strict-order", flags=("--hold-exit",)), cwd=tmp_path) as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 20, "v0")
        old = rk.child_pid(0)
        write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
        rk.wait_for_output(rf"stopping pid {old} with SIGTERM")
        (tmp_path / "exit-0").touch()
        wait_for(lambda: try_get(url) == "v1", 20, "v1")
        stopped = rk.wait_for_output(rf"pid {old} stopped with status 0")
        started = rk.wait_for_output(r"restarting \(version.py changed\): started pid \d+ \(generation 1\), stop took \d+ ms")
        assert stopped.start() < started.start(), rk.output


def test_an_app_with_a_port_of_its_own_comes_back_after_each_reload(tmp_path: Path) -> None:
    """The new generation cannot bind the app's second port while the old one still has it:
    it exits with status 1, and starts again once the old one is gone, without a crash
    report and without a backoff."""
    versioned_project(tmp_path)
    (tmp_path / "second-port.txt").write_text(str(free_port()))
    with Reloadkit(versioned_args("-v", flags=("--hold-exit", "--second-port")), cwd=tmp_path) as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 20, "v0")
        for number in (1, 2):
            write_file(tmp_path / "version.py", f"VERSION = 'v{number}'\n")
            rk.wait_for_output(r"exited with status 1 while an older generation was stopping;"
                               r" starting it again once that one is gone", count=number)
            (tmp_path / f"exit-{number - 1}").touch()  # the one that serves (a retry keeps its number)
            wait_for(lambda n=number: try_get(url) == f"v{n}", 20, f"v{number}")
        # tried twice each (the log reader may lag behind the answer a moment)
        wait_for(lambda: rk.count(r"\(generation 1\)") == 2 and rk.count(r"\(generation 2\)") == 2, 10, "two starts each")
        assert "waiting for a change" not in rk.output
        assert "right after starting; waiting" not in rk.output


def test_changes_while_the_old_generation_stops_give_one_follow_up(tmp_path: Path) -> None:
    """The new generation started already; changes that come while the old one still stops
    are not lost: one more generation carries them, and nothing cascades."""
    versioned_project(tmp_path)
    with Reloadkit(versioned_args("-v", "--stop-timeout", "2", flags=("--ignore-term",)), cwd=tmp_path) as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 20, "v0")
        write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
        rk.wait_for_output(r"started pid \d+ \(generation 1\) while pid \d+ stops")
        write_file(tmp_path / "extra.py", "X = 1\n")
        rk.wait_for_output(r"restarting \(extra.py changed\): started pid \d+ \(generation 2\)")
        wait_for(lambda: try_get(url) == "v1", 20, "v1 from generation 2")
        write_file(tmp_path / "version.py", "VERSION = 'v2'\n")  # positive control
        wait_for(lambda: try_get(url) == "v2", 20, "v2")
        # The answer can come before the test has read reloadkit's line for its generation.
        rk.wait_for_output(r"started pid \d+ \(generation 3\)")
        assert rk.generations() == 4, rk.output
