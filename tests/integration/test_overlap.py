"""Readiness (systemd notify) and --overlap: the new child first, the old one retired when it is ready."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from support import (
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

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("mode", [(), ("--overlap",)], ids=["stop-then-start", "overlap"])
def test_twenty_reloads_without_a_failed_request(tmp_path: Path, mode: tuple[str, ...]) -> None:
    versioned_project(tmp_path)
    with Reloadkit(versioned_args(*mode, flags=("--ready",)), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        # Generation 0 too is seen ready before the first edit: one replaced before its probe
        # was seen taken never logs "ready", and each line below is counted.
        rk.wait_for_output(r"ready in \d+ ms")
        with LoopingClient(rk.url, max_requests=50000, max_seconds=100) as client:
            for number in range(1, 21):
                write_file(tmp_path / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: client.last_body == f"v{n}", 20, f"the client to see v{number}")
                rk.wait_for_output(r"ready in \d+ ms", count=number + 1)
                if mode:
                    old = rk.child_pid(number - 1)
                    assert_all_gone({old})  # the old child is retired once the new one is ready
        assert client.stats["failed"] == 0, client.stats["errors"][:5]
        assert rk.generations() == 21


def test_overlap_keeps_the_old_child_when_the_new_one_fails(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    with Reloadkit(versioned_args("--overlap", flags=("--ready",)), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        serving = rk.child_pid(0)
        write_file(tmp_path / "version.py", "VERSION = (\n")
        rk.wait_for_output(r"new pid \d+ exited with status 1 before it was ready; pid \d+ keeps serving")
        assert "SyntaxError" in rk.output.split("keeps serving", 1)[1]  # the tail of its stderr
        assert try_get(rk.url) == "v0"
        assert rk.child_pid() != serving
        write_file(tmp_path / "version.py", "VERSION = 'fixed'\n")
        serves(rk, "fixed")
        assert_all_gone({serving})


def test_a_change_during_a_pending_start_replaces_the_pending_child(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    (tmp_path / "release-0").touch()
    with Reloadkit(versioned_args("--overlap", "--ready-after", "60", flags=("--ready", "--wait-release")), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
        rk.wait_for_output(r"started pid \d+ \(generation 1\) beside pid")
        first_pending = rk.child_pid(1)
        # Generation 1 has read version.py (a warm start gets there within milliseconds): a
        # second save while it reads would hand it a truncated file, and it would crash
        # instead of waiting to be replaced.
        starts = tmp_path / "starts.txt"
        wait_for(lambda: f"{first_pending} 1 " in starts.read_text(), 20, "generation 1 to have read version.py")
        write_file(tmp_path / "version.py", "VERSION = 'v2'\n")
        rk.wait_for_output(rf"replacing pid {first_pending}, which was not ready yet")
        rk.wait_for_output(r"started pid \d+ \(generation 2\) beside pid")
        assert_all_gone({first_pending})
        assert try_get(rk.url) == "v0"  # the serving child was never touched
        (tmp_path / "release-2").touch()
        serves(rk, "v2")
        assert_all_gone({rk.child_pid(0)})


def test_overlap_is_not_held_up_by_an_open_stream(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    with Reloadkit(versioned_args("--overlap", "--stop-timeout", "0.5", flags=("--ready", "--graceful-streams")), cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        old = rk.child_pid(0)
        stream = socket.create_connection(("127.0.0.1", rk.port), timeout=10)
        try:
            stream.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
            wait_for(lambda: b"streaming" in stream.recv(1024), 10, "the stream to open")
            write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
            serves(rk, "v1")
            rk.wait_for_output(rf"pid {old} did not stop within 0.5 s")
            assert_all_gone({old})
        finally:
            stream.close()


def test_notify_from_outside_the_tree_is_ignored(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    (tmp_path / "release-0").touch()
    args = versioned_args("-v", "--overlap", "--ready-after", "60", flags=("--ready", "--wait-release", "--report-notify"))
    with Reloadkit(args, cwd=tmp_path) as rk:
        rk.wait_listening()
        serves(rk, "v0")
        address = wait_for(lambda: (tmp_path / "notify.txt").exists() and (tmp_path / "notify.txt").read_text(), 10, "notify.txt")
        write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
        rk.wait_for_output(r"started pid \d+ \(generation 1\) beside pid")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as outsider:
            outsider.sendto(b"READY=1", "\0" + address[1:] if address.startswith("@") else address)
        rk.wait_for_output(r"ignored a notify message from pid \d+: not in a child's tree")
        assert try_get(rk.url) == "v0"
        assert rk.count(r"ready in \d+ ms") == 1  # only generation 0
        (tmp_path / "release-1").touch()
        serves(rk, "v1")


def test_ready_is_reported_on_each_restart_without_overlap(tmp_path: Path) -> None:
    versioned_project(tmp_path)
    with Reloadkit(versioned_args(flags=("--ready",)), cwd=tmp_path) as rk:
        rk.wait_listening()
        rk.wait_for_output(r"ready in \d+ ms \(accepting; pid \d+\)")
        write_file(tmp_path / "version.py", "VERSION = 'v1'\n")
        serves(rk, "v1")
        match = rk.wait_for_output(r"ready in (\d+) ms \(accepting; pid (\d+)\)", count=2)
        assert int(match.group(2)) == rk.child_pid(1)
        assert re.search(r"restarting \(version.py changed\): started pid \d+ \(generation 1\)(, stop took \d+ ms| while pid \d+ stops)", rk.output)
