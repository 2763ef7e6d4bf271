"""Reloading for real: file changes, restarts, signals, and what must never happen."""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path

import pytest
from support import (
    VERSIONED,
    LoopingClient,
    Reloadkit,
    assert_all_gone,
    serves,
    try_get,
    versioned_args,
    versioned_project,
    wait_for,
    write_file,
)

pytestmark = pytest.mark.timeout(90)


def _starts(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "starts.txt"
    return [line.split(" ", 2) for line in path.read_text().splitlines()] if path.exists() else []


def test_change_serves_new_code_with_zero_failed_requests(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    with Reloadkit(versioned_args(), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        port = rk.port
        with LoopingClient(rk.url, max_requests=20000, max_seconds=60) as client:
            for number in range(1, 6):
                write_file(tmp_path / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: client.last_body == f"v{n}", 20, f"the client to see v{number}")
            client.wait_requests(5)
        assert client.stats["failed"] == 0, client.stats["errors"][:5]
        assert client.stats["ok"] > 10
        assert rk.generations() == 6
        assert rk.port == port
        changed = _starts(tmp_path)[-1][2]
        assert changed == str(tmp_path / "version.py")  # RELOADKIT_CHANGED
        assert "restarting (version.py changed)" in rk.output


@pytest.mark.parametrize("bind", ["127.0.0.1:0", "unix"])
def test_a_server_that_dies_on_sigterm_loses_no_request(tmp_path: Path, bind: str) -> None:
    """reloadkit freezes the old child and signals it at a moment it serves no request."""
    versioned_project(tmp_path)
    spec = f"unix:{tmp_path}/s.sock" if bind == "unix" else bind
    with Reloadkit(["-b", spec, "--", sys.executable, str(VERSIONED), "--abrupt"], cwd=tmp_path) as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 20, "v0")
        with LoopingClient(url, max_requests=20000, max_seconds=60) as client:
            for number in range(1, 6):
                write_file(tmp_path / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: client.last_body == f"v{n}", 20, f"the client to see v{number}")
        assert client.stats["failed"] == 0, client.stats["errors"][:5]
        assert client.stats["ok"] > 10


def test_a_slow_request_in_flight_is_not_taken_for_an_idle_connection(tmp_path: Path) -> None:
    """The drain freezes the child to look at its connections; the child must get enough
    running time between looks that a request needing 100 ms of CPU finishes before a
    server that dies on SIGTERM is signalled."""
    versioned_project(tmp_path)
    with Reloadkit(versioned_args(flags=("--abrupt",)), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        result: list[str | None] = []
        request = threading.Thread(target=lambda: result.append(try_get(rk.url, "/busy", timeout=20)))
        request.start()
        try:
            wait_for((tmp_path / "busy.txt").exists, 20, "the server to start the busy request")
            write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
        finally:
            request.join(30)
        assert result == ["v0"], result
        serves(rk, "v1")


def _connect_raw(url: str) -> socket.socket:
    """A connection that, once this returns, waits in the listening socket's queue."""
    if url.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(url[5:])
        return sock
    host, _, port = url.removeprefix("http://").rpartition(":")
    return socket.create_connection((host, int(port)))


@pytest.mark.parametrize("bind", ["127.0.0.1:0", "unix"])
def test_a_connection_queued_on_a_generation_that_never_took_it_is_answered_by_the_next(
    tmp_path: Path, bind: str
) -> None:
    """A generation that replaces a live one gets a new socket on the address; a connection
    still queued on the old socket is relayed to it, not dropped with the old socket."""
    versioned_project(tmp_path)
    (tmp_path / "release-1").touch()  # generation 1 serves at once; generation 0 never accepts
    spec = f"unix:{tmp_path}/s.sock" if bind == "unix" else bind
    with Reloadkit(["-v", "-b", spec, "--", sys.executable, str(VERSIONED), "--wait-release"], cwd=tmp_path) as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: _starts(tmp_path), 20, "generation 0 to start")
        with _connect_raw(url) as client:
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
            client.settimeout(30)
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"v1"), answer
        rk.wait_for_output("relaying a connection queued on the old socket")  # the log reader may lag the answer
        assert [generation for _pid, generation, *_ in _starts(tmp_path)] == ["0", "1"]


def test_burst_of_300_files_gives_one_restart(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    (tmp_path / "pkg").mkdir()
    with Reloadkit(versioned_args(), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        for index in range(300):
            (tmp_path / "pkg" / f"m{index}.py").write_text(f"X = {index}\n")
        rk.wait_for_output(r"restarting \(300 files changed\)")
        wait_for(lambda: len(_starts(tmp_path)) == 2, 20, "generation 1 to have imported its code")
        # Positive control: one more change gives exactly one more restart, so nothing was pending.
        write_file(tmp_path / "version.py", "VERSION = 'after'\n")
        serves(rk, "after")
        assert rk.generations() == 3, rk.output


def test_ignored_directories_and_files_do_not_restart(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    for directory in ("node_modules", ".venv", ".git", "__pycache__", "build", "pkg.egg-info"):
        (tmp_path / directory).mkdir()
    with Reloadkit(versioned_args(), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        for directory in ("node_modules", ".venv", ".git", "__pycache__", "build", "pkg.egg-info"):
            (tmp_path / directory / "x.py").write_text("X = 1\n")
        for name in ("a.pyc", "b.swp", "c.py~", ".#d.py", "e.log", "db-journal", "notes.txt"):
            (tmp_path / name).write_text("x")
        write_file(tmp_path / "version.py", "VERSION = 'control'\n")
        serves(rk, "control")
        assert rk.generations() == 2, rk.output
        assert "restarting (version.py changed)" in rk.output


def test_child_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    with Reloadkit(versioned_args("--stop-timeout", "0.5", flags=("--ignore-term",)), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        first = rk.child_pid(0)
        write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
        serves(rk, "v1")  # the next generation does not wait for the old one
        rk.wait_for_output(r"did not stop within 0.5 s")
        assert_all_gone({first})


def test_open_streaming_response_cannot_hang_a_reload(tmp_path: Path) -> None:
    """A server that waits for every open response before it exits (here for ever) does not
    hold the reload: the next generation serves at once, and the old one is killed after
    --stop-timeout, which ends the stream it held open."""
    versioned_project(tmp_path)
    with Reloadkit(versioned_args("--stop-timeout", "0.5", flags=("--graceful-streams",)), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        old = rk.child_pid(0)
        with socket.create_connection(("127.0.0.1", rk.port), timeout=10) as stream:
            stream.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
            received = b""
            while not received.endswith(b"streaming"):  # the response has begun and stays open
                chunk = stream.recv(1024)
                assert chunk, f"the stream ended before the reload: {received!r}"
                received += chunk
            assert received == b"HTTP/1.0 200 OK\r\n\r\nstreaming"
            write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
            serves(rk, "v1")
            rk.wait_for_output(r"did not stop within 0.5 s")
            assert stream.recv(1024) == b"", "the killed generation's stream is still open"
        assert_all_gone({old})


def test_syntax_error_keeps_reloadkit_running_and_the_fix_recovers(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    with Reloadkit(versioned_args(), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        write_file(tmp_path / "version.py", "VERSION = (\n")
        rk.wait_for_output(r"exited with status 1; waiting for a change")
        assert rk.proc is not None and rk.proc.poll() is None
        write_file(tmp_path / "version.py", "VERSION = 'fixed'\n")
        serves(rk, "fixed")


def test_a_crash_loop_is_slowed_down(tmp_path: Path) -> None:
    """A child of a restart protocol (RUN_MAIN=true: Django's reloader child) that asks again
    and again right after starting."""
    script = tmp_path / "loop.py"
    script.write_text("import sys; sys.exit(3)\n")
    with Reloadkit(["--", sys.executable, str(script)], cwd=tmp_path, env={"RUN_MAIN": "true"}) as rk:
        rk.wait_for_output(r"right after starting; waiting 1 s", timeout=30)
        # Backoff 0.25, 0.5, 1 s: a tight loop would have started hundreds by now.
        assert rk.generations() <= 5, rk.output


def test_polling_backend_reloads(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    with Reloadkit(versioned_args("--poll", "0.1"), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        write_file(tmp_path / "version.py", "VERSION = 'polled'\n")
        serves(rk, "polled")


def test_changes_during_a_restart_are_not_lost_and_do_not_cascade(tmp_path: Path) -> None:
    """With --strict-order, changes while the old child stops are folded into the restart under
    way (the new child starts after them); a change after the new child started gives exactly
    one follow-up."""
    versioned_project(tmp_path)

    def started(count: int) -> None:
        wait_for(lambda: len(_starts(tmp_path)) >= count, 20, f"{count} children to have started")
        # The child can serve before reloadkit's line about its start reaches the test.
        rk.wait_for_output(rf"started pid \d+ \(generation {count - 1}\)")

    with Reloadkit(versioned_args("-v", "--strict-order", "--stop-timeout", "1", flags=("--ignore-term",)), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
        rk.wait_for_output(r"stopping pid \d+")  # the old child ignores SIGTERM: a 1 s stop
        for index in range(3):
            write_file(tmp_path / f"extra{index}.py", "X = 1\n")
        serves(rk, "v1")
        started(2)
        changed = _starts(tmp_path)[-1][2].split(os.pathsep)
        assert sorted(Path(path).name for path in changed) == ["extra0.py", "extra1.py", "extra2.py", "version.py"]
        assert rk.generations() == 2, rk.output
        write_file(tmp_path / "version.py", "VERSION = 'v2'\n")  # after generation 1 started
        rk.wait_for_output(r"stopping pid \d+", count=2)
        write_file(tmp_path / "extra0.py", "X = 2\n")  # during the stop: folded in
        serves(rk, "v2")
        started(3)
        write_file(tmp_path / "version.py", "VERSION = 'v3'\n")  # after the start: one follow-up
        serves(rk, "v3")
        started(4)
        # Positive control: nothing else was pending.
        write_file(tmp_path / "version.py", "VERSION = 'v4'\n")
        serves(rk, "v4")
        started(5)
        assert rk.generations() == 5, rk.output
        assert len(_starts(tmp_path)) == 5
