"""The library face, for real: run_with_reloader, import tracking, --imports, run_simple.

Apps live in ``library_apps/`` and are copied into a temporary project per test, so file
edits never touch the source tree. A "ready in" line (the app's READY=1) or a notify barrier
(a datagram of ours that the supervisor logs as ignored) tells that the supervisor has read
every file the child reported before it: datagrams are read in order.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from support import SOURCE_PATH, LoopingClient, Reloadkit, http_get, reloadkit_env, try_get, wait_for, write_file

from reloadkit.proc.childenv import HOOK_DIR

pytestmark = pytest.mark.timeout(60)
APPS = Path(__file__).parent / "library_apps"
SLOW_SECONDS = 0.8  # webapp.py's /slow


def _project(tmp_path: Path, *names: str, files: dict[str, str] | None = None) -> Path:
    for name in names:
        source = APPS / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    for relative, text in (files or {}).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    """No bytecode files: an edit within the same second and of the same size as the last
    one would otherwise be hidden by a stale ``.pyc`` (Python compares mtime in seconds)."""
    return {"PYTHONDONTWRITEBYTECODE": "1", **extra}


def _ready(rk: Reloadkit, count: int) -> None:
    rk.wait_for_output(r"ready in \d+ ms", count)


def _notify_barrier(rk: Reloadkit) -> None:
    """Wait until the supervisor has read every datagram its child sent before now (needs -v)."""
    address = psutil.Process(rk.child_pid()).environ()["NOTIFY_SOCKET"]
    pattern = rf"ignored a notify message from pid {os.getpid()}\b"
    seen = rk.count(pattern)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"BARRIER=1", "\0" + address[1:] if address.startswith("@") else address)
    rk.wait_for_output(pattern, seen + 1)


def _restarts(rk: Reloadkit, count: int) -> list[str]:
    """The restart lines, once there are ``count`` of them: a warm child can print before the
    supervisor's line about its start."""
    import re

    rk.wait_for_output(r"restarting \(", count)
    return re.findall(r"restarting \(([^)]*)\)", rk.output)


# --- run_with_reloader -------------------------------------------------------------------


def test_run_with_reloader_watches_exactly_what_the_child_imports(tmp_path: Path) -> None:
    files = {"helper.py": "VALUE = 1\n", "lazy.py": "VALUE = 1\n", "unrelated.py": "X = 1\n", "notes.txt": "a\n"}
    _project(tmp_path, "tracked.py", files=files)
    with Reloadkit([], argv=[sys.executable, "tracked.py"], cwd=tmp_path, env=_env()) as rk:
        rk.wait_for_output(r"CHILD gen=0 helper=1 lazy=1 child=True")
        _ready(rk, 1)
        # lazy.py was imported by the child only, after it started.
        write_file(tmp_path / "notes.txt", "b\n")
        write_file(tmp_path / "unrelated.py", "X = 2\n")
        write_file(tmp_path / "lazy.py", "VALUE = 2\n")
        rk.wait_for_output(r"CHILD gen=1 helper=1 lazy=2")
        _ready(rk, 2)
        assert _restarts(rk, 1) == ["lazy.py changed"], rk.output  # the other two are not watched
        write_file(tmp_path / "helper.py", "VALUE = 2\n")
        rk.wait_for_output(r"CHILD gen=2 helper=2 lazy=2")
        assert _restarts(rk, 2) == ["lazy.py changed", "helper.py changed"]
        # main() ran in the children only; the supervisor ran the script up to the call.
        assert rk.count(r"PARENT is_child=False") == 1
        assert rk.count(r"^CHILD ") == rk.generations() == 3
        assert rk.count(r" child=False") == 0


def test_python_m_pkg_with_interpreter_options(tmp_path: Path) -> None:
    _project(tmp_path, "pkg", files={"pkg/mod.py": "VALUE = 1\n"})
    argv = [sys.executable, "-X", "reloadkit_test=1", "-W", "ignore::UserWarning", "-m", "pkg"]
    with Reloadkit([], argv=argv, cwd=tmp_path, env=_env()) as rk:
        orig = r"\['-X', 'reloadkit_test=1', '-W', 'ignore::UserWarning', '-m', 'pkg'\]"
        rk.wait_for_output(rf"CHILD gen=0 mod=1 spec=pkg.__main__ orig={orig}")
        _ready(rk, 1)
        write_file(tmp_path / "pkg" / "mod.py", "VALUE = 2\n")
        rk.wait_for_output(rf"CHILD gen=1 mod=2 spec=pkg.__main__ orig={orig}")
        assert _restarts(rk, 1) == [os.path.join("pkg", "mod.py") + " changed"]


def test_failed_imports_are_watched_and_their_fix_recovers(tmp_path: Path) -> None:
    files = {"helper.py": "VALUE = 1\n", "lazy.py": "VALUE = 1\n"}
    _project(tmp_path, "tracked.py", files=files)
    with Reloadkit([], argv=[sys.executable, "tracked.py"], cwd=tmp_path, env=_env()) as rk:
        rk.wait_for_output(r"CHILD gen=0 ")
        _ready(rk, 1)
        # A module imported for the first time by a child that dies of it.
        write_file(tmp_path / "fresh.py", "X = (\n")
        write_file(tmp_path / "lazy.py", "import fresh\nVALUE = fresh.X\n")
        rk.wait_for_output(r"SyntaxError")
        rk.wait_for_output(r"exited with status 1; waiting for a change")
        write_file(tmp_path / "fresh.py", "X = 7\n")
        rk.wait_for_output(r"CHILD gen=2 helper=1 lazy=7")
        _ready(rk, 2)
        # The same for an exception raised while the module runs.
        write_file(tmp_path / "raising.py", "raise RuntimeError('not configured')\n")
        write_file(tmp_path / "lazy.py", "import raising\nVALUE = raising.X\n")
        rk.wait_for_output(r"RuntimeError: not configured")
        rk.wait_for_output(r"exited with status 1; waiting for a change", 2)
        write_file(tmp_path / "raising.py", "X = 8\n")
        rk.wait_for_output(r"CHILD gen=4 helper=1 lazy=8")
        assert _restarts(rk, 4)[-1] == "raising.py changed"


def test_trigger_reload_restarts_the_child(tmp_path: Path) -> None:
    _project(tmp_path, "tracked.py", files={"helper.py": "VALUE = 1\n", "lazy.py": "VALUE = 1\n"})
    env = {"TRIGGER_RELOAD_IN_GENERATION": "0"}
    with Reloadkit([], argv=[sys.executable, "tracked.py"], cwd=tmp_path, env=_env(**env)) as rk:
        rk.wait_for_output(r"restarting \(reload requested by the child\)")
        rk.wait_for_output(r"CHILD gen=1 ")
        _ready(rk, 2)
        # Positive control: the next change gives exactly one more generation.
        write_file(tmp_path / "helper.py", "VALUE = 2\n")
        rk.wait_for_output(r"CHILD gen=2 helper=2")
        assert rk.generations() == 3
        assert _restarts(rk, 2) == ["reload requested by the child", "helper.py changed"]


# --- reloadkit run --imports -------------------------------------------------------------


def test_imports_option_watches_what_a_plain_script_imports(tmp_path: Path) -> None:
    files = {
        "helper.py": "VALUE = 1\n",
        "unrelated.py": "X = 1\n",
        "notes.txt": "a\n",
        "site/sitecustomize.py": "print('OTHER SITECUSTOMIZE RAN', flush=True)\n",
    }
    _project(tmp_path, "plain.py", files=files)
    env = {"PYTHONPATH": os.pathsep.join([*SOURCE_PATH, str(tmp_path / "site")])}
    args = ["--imports", "-v", "--", sys.executable, "plain.py"]
    with Reloadkit(args, cwd=tmp_path, env=_env(**env)) as rk:
        rk.wait_for_output(r"PLAIN gen=0 helper=1")
        _notify_barrier(rk)
        assert "OTHER SITECUSTOMIZE RAN" in rk.output  # the program's own sitecustomize still runs
        assert "not tracking imports" not in rk.output
        write_file(tmp_path / "notes.txt", "b\n")
        write_file(tmp_path / "unrelated.py", "X = 2\n")
        write_file(tmp_path / "helper.py", "VALUE = 2\n")
        rk.wait_for_output(r"PLAIN gen=1 helper=2")
        assert _restarts(rk, 1) == ["helper.py changed"], rk.output
        _notify_barrier(rk)
        write_file(tmp_path / "plain.py", (tmp_path / "plain.py").read_text() + "# edited\n")
        rk.wait_for_output(r"PLAIN gen=2 helper=2")
        assert _restarts(rk, 2) == ["helper.py changed", "plain.py changed"]


def test_imports_option_is_harmless_for_other_commands(tmp_path: Path) -> None:
    command = ["sh", "-c", "echo shell-sees-imports=$RELOADKIT_IMPORTS"]
    with Reloadkit(["--imports", "--", *command], cwd=tmp_path, env=_env()) as rk:
        rk.wait_for_output(r"shell-sees-imports=1")
        rk.wait_for_output(r"exited with status 0; waiting for a change")


def test_hook_is_inert_outside_the_child_and_chains_to_the_next_sitecustomize(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("CHAINED = True\n")
    code = (
        "import os, sys, sitecustomize\n"
        f"print(getattr(sitecustomize, 'CHAINED', False), {HOOK_DIR!r} in map(os.path.realpath, sys.path),"
        " '_reloadkit_import_tracker' in sys.modules)\n"
    )
    env = reloadkit_env({
        "PYTHONPATH": os.pathsep.join([HOOK_DIR, str(site)]),
        "RELOADKIT_IMPORTS": "1",
        "RELOADKIT_PID": "1",  # some other process: the program's own subprocess, say
        "NOTIFY_SOCKET": "@reloadkit-nobody",
    })
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "False"]
    assert result.stderr == ""


# --- run_simple --------------------------------------------------------------------------


def _get_many(url: str, path: str, count: int) -> list[tuple[int, str]]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: http_get(url, path, timeout=10), range(count)))


def _pid_of(body: str) -> int:
    return int(body.split("pid=", 1)[1].split()[0])


@pytest.mark.parametrize("mode", ["threaded", "processes"])
def test_run_simple_serves_in_parallel_and_survives_reloads(tmp_path: Path, mode: str) -> None:
    _project(tmp_path, "webapp.py", files={"views.py": "VERSION = 'v1'\n"})
    with Reloadkit([], argv=[sys.executable, "webapp.py", mode], cwd=tmp_path, env=_env()) as rk:
        url = rk.wait_listening()[0]
        _ready(rk, 1)
        status, body = http_get(url)
        assert status == 200
        flags = "multithread=True multiprocess=False" if mode == "threaded" else "multithread=False multiprocess=True"
        assert body.startswith("v1 ") and body.endswith(flags), body

        started = time.monotonic()
        answers = _get_many(url, "/slow", 4)
        elapsed = time.monotonic() - started
        assert [status for status, _ in answers] == [200] * 4
        assert elapsed < 2.5 * SLOW_SECONDS, f"4 requests of {SLOW_SECONDS} s took {elapsed:.2f} s: not in parallel"
        pids = {_pid_of(body) for _, body in answers}
        child = rk.child_pid()
        if mode == "threaded":
            assert pids == {child}
        else:
            assert len(pids) == 4 and child not in pids  # a forked process per request

        with LoopingClient(url, timeout=10) as client, ThreadPoolExecutor(4) as pool:
            in_flight = [pool.submit(http_get, url, "/slow", 10) for _ in range(4)]
            rk.wait_for_output(r"START \d+", 8)
            write_file(tmp_path / "views.py", "VERSION = 'v2'\n")
            wait_for(lambda: (client.last_body or "").startswith("v2 "), 20, "the client to see v2")
            finished = [future.result(timeout=20) for future in in_flight]
            client.wait_requests(3)
        # The requests in flight were finished by the old generation; nothing failed.
        assert [(status, body.split()[0]) for status, body in finished] == [(200, "v1")] * 4
        assert client.stats["failed"] == 0, client.stats["errors"][:5]
        assert _restarts(rk, 1) == ["views.py changed"]
        assert "did not stop within" not in rk.output
        assert rk.child_pid() != child


def test_run_simple_takes_werkzeugs_keyword_arguments(tmp_path: Path) -> None:
    files = {
        "views.py": "VERSION = 'v1'\n",
        "settings.txt": "debug = true\n",
        "ignored_settings.py": "VALUE = 1\n",
        "static/hello.txt": "hello static\n",
    }
    _project(tmp_path, "webapp.py", files=files)
    with Reloadkit([], argv=[sys.executable, "webapp.py", "werkzeug"], cwd=tmp_path, env=_env()) as rk:
        url = rk.wait_listening()[0]
        _ready(rk, 1)
        assert http_get(url, "/static/hello.txt") == (200, "hello static\n")
        status, body = http_get(url)
        assert status == 200 and body.startswith("v1 ") and body.endswith("multithread=False multiprocess=False")
        assert http_get(url, "/lazy")[1].startswith("v1+1 ")  # imports ignored_settings.py
        _notify_barrier(rk)
        # exclude_patterns keeps the imported ignored_settings.py out; extra_files watches settings.txt.
        write_file(tmp_path / "ignored_settings.py", "VALUE = 2\n")
        write_file(tmp_path / "settings.txt", "debug = false\n")
        _ready(rk, 2)
        assert _restarts(rk, 1) == ["settings.txt changed"], rk.output
        assert http_get(url, "/lazy")[1].startswith("v1+2 ")


def test_run_simple_stop_is_not_held_up_by_a_connection_that_sends_nothing(tmp_path: Path) -> None:
    """A browser's preconnect: accepted, never a request. With a 60 s stop timeout, the reload
    still completes at once, because run_simple ends such reads when it stops."""
    (tmp_path / "touch.py").write_text("X = 1\n")
    args = ["-b", "127.0.0.1:0", "--stop-timeout", "60", "--", sys.executable, "-m", "reloadkit.demo"]
    with Reloadkit(args, cwd=tmp_path) as rk:
        rk.wait_listening()
        wait_for(lambda: "Hello from" in (try_get(rk.url) or ""), 20, "the demo to serve")
        idle = socket.create_connection(("127.0.0.1", rk.port), timeout=10)
        try:
            wait_for(lambda: "generation 0" in (try_get(rk.url) or ""), 10, "generation 0")
            write_file(tmp_path / "touch.py", "X = 2\n")
            wait_for(lambda: "generation 1" in (try_get(rk.url) or ""), 20, "generation 1 despite the idle connection")
        finally:
            idle.close()
