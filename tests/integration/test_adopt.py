"""The commands people already type, under ``reloadkit run --`` with no flags (and with ``-b``).

Each server binds its own port, as it does without reloadkit. Its ``bind()`` takes the socket
reloadkit holds (without ``-b``, generation 0's bind makes reloadkit bind and hold the address:
``holding 127.0.0.1:PORT (bound by the command)``). Then ``version.py`` is rewritten five
times while a client loops over new connections, and:

* no request fails, and every version is served in order;
* each save is one restart (the framework's own reloader, if the command asks for one, is off);
* the Python generations after the first start warm (forked from the warm parent);
* after reloadkit is stopped, no process of its tree is alive.

The apps are those of ``apps/servers`` and ``apps/adopt`` (copied into a temporary directory).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
import pytest
from support import (
    LoopingClient,
    Reloadkit,
    assert_all_gone,
    free_port,
    http_get,
    server_env,
    try_get,
    wait_for,
    write_file,
)

pytestmark = pytest.mark.timeout(90)

APPS = Path(__file__).parent / "apps"
BIN = Path(sys.executable).parent
RELOADS = 5
PY = sys.executable


def _script(name: str) -> str:
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed (it is in the 'test' extra)"
    return found


@pytest.fixture
def project(server_project: Path) -> Path:
    """The real servers' apps with the ones that bind their own port beside them."""
    for item in (APPS / "adopt").iterdir():
        if item.suffix in (".py", ".js"):
            shutil.copy(item, server_project / item.name)
    return server_project


def _start(project: Path, command: Sequence[str], *options: str) -> Reloadkit:
    return Reloadkit(["-v", *options, "--", *command], cwd=project, env=server_env(project))


#: name -> (the command, with {port}; whether its generations are Python processes forked warm)
COMMANDS: dict[str, tuple[list[str], bool]] = {
    "http.server": ([PY, "serve_http.py", "{port}"], True),
    "uvicorn --port": ([_script("uvicorn"), "asgi_app:app", "--port", "{port}"], True),
    "flask run": ([_script("flask"), "--app", "flask_app", "run", "--port", "{port}"], True),
    "app.run()": ([PY, "app_run.py", "{port}"], True),
    "manage.py runserver": ([PY, "manage.py", "runserver", "{port}"], True),
    "manage.py runserver --noreload": ([PY, "manage.py", "runserver", "--noreload", "{port}"], True),
    "gunicorn -b": ([_script("gunicorn"), "-b", "127.0.0.1:{port}", "wsgi_app:app"], True),
    "gunicorn -b -w 2 --preload": ([_script("gunicorn"), "-w", "2", "--preload", "-b", "127.0.0.1:{port}", "wsgi_app:app"], True),
    "uvicorn --reload": ([_script("uvicorn"), "asgi_app:app", "--reload", "--port", "{port}"], True),
    "hypercorn -b": ([_script("hypercorn"), "-b", "127.0.0.1:{port}", "asgi_app:app"], True),
    "hypercorn --reload": ([_script("hypercorn"), "--reload", "-b", "127.0.0.1:{port}", "asgi_app:app"], True),
    "fastapi dev": ([_script("fastapi"), "dev", "fastapi_app.py", "--port", "{port}"], True),
    "uvicorn --workers 2": ([_script("uvicorn"), "asgi_app:app", "--workers", "2", "--port", "{port}"], True),
    "aiohttp run_app(port=)": ([PY, "aiohttp_port.py", "{port}"], True),
    "waitress serve(port=)": ([PY, "waitress_port.py", "{port}"], True),
    "tornado app.listen()": ([PY, "tornado_listen.py", "{port}"], True),
    "run_with_reloader(main)": ([PY, "library_main.py", "{port}"], False),
}
#: what says the framework's own reloader is off
ONE_RELOADER = {
    "manage.py runserver": "Django's autoreloader is off",
    "uvicorn --reload": "uvicorn's reloader is off",
    "hypercorn --reload": "hypercorn's reloader is off",
    "fastapi dev": "uvicorn's reloader is off",
}


#: commands whose workers each import the app when they start (spawned): a worker still booting
#: when the file changes loads the newer file, so the next edit waits until every worker of
#: the generation answered (as test_servers does for gunicorn without --preload)
WORKERS = {"uvicorn --workers 2": 2}


def _every_worker_serves(url: str, generation: int, workers: int) -> None:
    pids: set[int] = set()

    def all_seen() -> bool:
        body = try_get(url, "/info")
        if body:
            info = json.loads(body)
            if info["version"] == f"v{generation}" and info["generation"] == str(generation):
                pids.add(info["pid"])
        return len(pids) >= workers

    wait_for(all_seen, 30, f"{workers} workers of generation {generation} to serve v{generation}")


def _reload_under_load(rk: Reloadkit, project: Path, url: str, workers: int = 0) -> LoopingClient:
    wait_for(lambda: try_get(url) == "v0", 40, f"{url} to serve v0")
    if workers:
        _every_worker_serves(url, 0, workers)
    with LoopingClient(url, max_requests=1_000_000, max_seconds=80) as client:
        client.wait_requests(5, timeout=20)
        for number in range(1, RELOADS + 1):
            write_file(project / "version.py", f"VERSION = 'v{number}'\n")
            wait_for(lambda n=number: client.last_body == f"v{n}", 30, f"the client to see v{number}")
            if workers:
                _every_worker_serves(url, number, workers)
            client.wait_requests(5, timeout=20)
    latencies = sorted(client.stats["latencies"]) or [0.0]
    command = rk.argv[rk.argv.index("--") + 1:] if "--" in rk.argv else rk.argv
    print(f"\n{' '.join(command)[-60:]}: ok={client.stats['ok']} failed={client.stats['failed']}"
          f" p50={statistics.median(latencies) * 1000:.1f}ms max={latencies[-1] * 1000:.0f}ms generations={rk.generations()}")
    assert client.stats["failed"] == 0, (
        f"{client.stats['failed']} failed of {client.stats['ok'] + client.stats['failed']}: {client.stats['errors'][:5]}"
    )
    assert client.bodies == [f"v{n}" for n in range(RELOADS + 1)], client.bodies
    return client


def _stop_and_check_nothing_left(rk: Reloadkit) -> None:
    rk.tree_pids()
    rk.signal(signal.SIGTERM)
    rk.wait_exit(timeout=20)
    assert_all_gone(rk.tree_pids(), timeout=5)


@pytest.mark.matrix
@pytest.mark.parametrize("mode", ["no flags", "-b"])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_command_as_people_type_it_holds_its_own_port(project: Path, name: str, mode: str) -> None:
    template, warm = COMMANDS[name]
    port = free_port()
    command = [part.format(port=port) for part in template]
    options = ["-b", f"127.0.0.1:{port}"] if mode == "-b" else []
    with _start(project, command, *options) as rk:
        if mode == "no flags":
            rk.wait_for_output(rf"holding \S+:{port} \(bound by the command\)", timeout=40)
        else:
            rk.wait_for_output(rf"listening on http://127.0.0.1:{port} \(fd 3\)")
        url = f"http://127.0.0.1:{port}"
        _reload_under_load(rk, project, url, WORKERS.get(name, 0))
        # one restart per save (the log reader may lag behind the answer a moment)
        wait_for(lambda: rk.generations() >= RELOADS + 1, 10, "the last start line")
        assert rk.generations() == RELOADS + 1, "one restart per save"
        output = rk.output
        assert "Address already in use" not in output and "address already in use" not in output
        assert "exited with status" not in output, output
        if name in ONE_RELOADER:
            assert rk.count(re.escape(ONE_RELOADER[name])) == 1, output
        if mode == "no flags":
            assert rk.count(r"holding \S+ \(bound by the command\)") >= 1
            assert rk.count(rf"holding \S+:{port} \(bound by the command\)") == rk.count(r"holding \S+")
        if warm:
            # The warm parent is built while generation 0 runs: the later generations fork from it.
            assert rk.count(r"generation [2-5] forked warm") >= 3, output
        _stop_and_check_nothing_left(rk)


# --- where nothing is held, or the server does not use what is ---------------------------------


def _save(project: Path, number: int) -> None:
    write_file(project / "version.py", f"VERSION = 'v{number}'\n")


def test_where_nothing_is_held_the_next_generation_starts_once_the_old_one_is_gone(project: Path) -> None:
    """--no-adopt and no -b: the server binds its own port in each generation. A new one started
    beside the stopping one would find the port taken; this one exits with status 3 then (as
    Datasette does), which used to read as "restart me" and grew a back-off with every save."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _start(project, [PY, "exits3.py", str(port)], "--no-adopt") as rk:
        wait_for(lambda: try_get(url) == "v0", 40, "v0")
        for number in range(1, 4):
            _save(project, number)
            wait_for(lambda n=number: try_get(url) == f"v{n}", 30, f"v{number}")
            rk.wait_for_output(rf"started pid \d+ \(generation {number}\)")
        assert rk.generations() == 4
        assert "ERROR" not in rk.output and "right after starting" not in rk.output, rk.output
        _stop_and_check_nothing_left(rk)


def test_a_node_server_on_a_held_port_gets_one_line(project: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    port = free_port()
    with _start(project, [node, "server.js", str(port)], "-b", f"127.0.0.1:{port}") as rk:
        line = rk.wait_for_output(rf"could not bind 127.0.0.1:{port}, which reloadkit holds.*", timeout=30).group(0)
        assert "server.listen({fd: 3})" in line and "docs/servers.rst" in line, line
        assert rk.count("could not bind") == 1
        # The error page says so too: the fix is the command line, not the code.
        status, body = http_get(f"http://127.0.0.1:{port}", "/", timeout=10)
        assert status == 503 and "could not bind" in body and "bind-failed" in body, body[:2000]
        _stop_and_check_nothing_left(rk)


def test_a_server_listening_elsewhere_is_named(project: Path) -> None:
    held, elsewhere = free_port(), free_port()
    with _start(project, [PY, "serve_http.py", str(elsewhere)], "-b", f"127.0.0.1:{held}") as rk:
        line = rk.wait_for_output(r"pid \d+ listens on .*", timeout=30).group(0)
        assert f"127.0.0.1:{elsewhere}" in line and f"not on 127.0.0.1:{held}" in line, line
        # The held address answers with the error page, which says so (instead of silence).
        status, body = http_get(f"http://127.0.0.1:{held}", "/", timeout=10)
        assert status == 503 and f"listens on 127.0.0.1:{elsewhere}" in body and "bind-failed" in body, body[:2000]
        _stop_and_check_nothing_left(rk)


# --- Django's runserver keeps what it does in development ---------------------------------------


def test_django_runserver_serves_the_admin_css_under_reloadkit(project: Path) -> None:
    """The point of keeping runserver: django.contrib.staticfiles serves the admin's CSS and JS
    (gunicorn mysite.wsgi answers 404 there), across reloads."""
    port = free_port()
    env = server_env(project, DJANGO_SETTINGS_MODULE="settings_admin")
    command = ["--", PY, "manage.py", "runserver", str(port)]
    with Reloadkit(command, cwd=project, env=env) as rk:
        rk.wait_for_output(rf"holding 127.0.0.1:{port} \(bound by the command\)", timeout=40)
        url = f"http://127.0.0.1:{port}"
        for number in (1, 2):
            status, body = http_get(url, "/static/admin/css/base.css", timeout=10)
            assert status == 200 and "body" in body, (status, body[:200])
            _save(project, number)
            wait_for(lambda n=number: try_get(url) == f"v{n}", 30, f"v{number}")
        assert http_get(url, "/static/admin/css/base.css", timeout=10)[0] == 200
        _stop_and_check_nothing_left(rk)


def _idle_cpu(rk: Reloadkit, url: str, seconds: float = 10.0) -> float:
    """CPU seconds the generation's tree (the server's processes) uses while idle; the
    supervisor's own is the same code for both servers, and on a shared machine only noise."""
    wait_for(lambda: try_get(url) == "v0", 40, "v0")
    rk.wait_for_output(r"warm parent pid \d+ ready", timeout=40)
    generation = psutil.Process(rk.child_pid())

    def total() -> float:
        used = 0.0
        for proc in [generation, *generation.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                used += times.user + times.system
        return used

    before = total()
    time.sleep(seconds)  # measuring idleness: nothing to wait for
    return total() - before


def test_runserver_idles_like_gunicorn(project: Path) -> None:
    """No polling thread in the child: Django's autoreloader (StatReloader: a stat() of every
    module each second) is off. Within 0.05 s of CPU per 10 s of the same app under gunicorn."""
    port = free_port()
    used = {}
    for name, command in (("runserver", [PY, "manage.py", "runserver", str(port)]),
                          ("gunicorn", [_script("gunicorn"), "-b", f"127.0.0.1:{port}", "djsite.wsgi"])):
        with _start(project, command) as rk:
            used[name] = _idle_cpu(rk, f"http://127.0.0.1:{port}")
            if name == "runserver":  # no autoreloader: no second process, no polling thread beside the server
                generation = psutil.Process(rk.child_pid())
                assert generation.children(recursive=True) == [] and generation.num_threads() == 1
            _stop_and_check_nothing_left(rk)
    print(f"\nidle CPU over 10 s: {used}")
    assert used["runserver"] <= used["gunicorn"] + 0.05, used


# --- the library face ---------------------------------------------------------------------------


def test_run_with_reloader_without_bind_holds_what_main_binds(project: Path) -> None:
    """``python library_main.py``: run_with_reloader(main) makes this process the supervisor;
    main binds its own port, which is held from then on: no request fails over the reloads."""
    port = free_port()
    argv = [PY, "library_main.py", str(port)]
    with Reloadkit([], cwd=project, env=server_env(project), argv=argv) as rk:
        rk.wait_for_output(rf"holding 127.0.0.1:{port} \(bound by the command\)", timeout=40)
        _reload_under_load(rk, project, f"http://127.0.0.1:{port}")
        wait_for(lambda: rk.generations() >= RELOADS + 1, 10, "the last start line")
        assert rk.generations() == RELOADS + 1
        _stop_and_check_nothing_left(rk)


def test_a_unix_socket_bind_takes_the_held_one_and_keeps_its_path(project: Path, sockdir: Path) -> None:
    """-b unix:PATH and a server that binds PATH itself (asyncio removes the file first): the
    bind takes the held socket, and the path is its name again."""
    path = sockdir / "app.sock"
    with _start(project, [PY, "aiohttp_unix.py", str(path)], "-b", f"unix:{path}") as rk:
        rk.wait_for_output(rf"listening on unix:{re.escape(str(path))}")
        _reload_under_load(rk, project, f"unix:{path}")
        assert "Address already in use" not in rk.output
        _stop_and_check_nothing_left(rk)
