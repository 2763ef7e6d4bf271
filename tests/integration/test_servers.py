"""The servers people already use, for real, on reloadkit's held sockets.

Each test starts a real server under ``reloadkit run`` (a TCP socket on 127.0.0.1:0, or a
Unix socket where the server supports it), checks that it serves, then rewrites
``version.py`` a few times while a client loops over new connections, and asserts:

* zero failed requests, and every version served in order (no old generation answered
  after a new one did);
* after reloadkit is stopped (SIGTERM), no process that was ever in its tree is alive.

The apps are in ``apps/servers`` (copied into a temporary directory per test). The recipes
tested here are the ones documented in docs/servers.rst ("Which server?").

The matrix (every test that takes the ``start`` fixture) runs each server twice: ``[warm-...]``
with ``--warm`` (the default: every generation after the first is forked from the warm
parent) and ``[cold-...]`` with ``--no-warm`` (every generation a new interpreter), and
checks that the mode asked for is the mode that ran.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psutil
import pytest
from support import (
    BIN,
    LoopingClient,
    Reloadkit,
    assert_all_gone,
    free_port,
    http_get,
    serves,
    start_server,
    try_get,
    wait_children,
    wait_for,
    write_file,
)

pytestmark = pytest.mark.timeout(90)

RELOADS = 3
#: The matrix's two ways to start a generation, and the flags that ask for each.
MODES = {"warm": ("-v", "--warm"), "cold": ("-v", "--no-warm")}


# --- helpers -----------------------------------------------------------------------------


def _script(name: str) -> str:
    """A server's console script: beside this interpreter (a virtualenv), else on PATH."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed (it is in the 'test' extra)"
    return found



Start = Callable[..., Reloadkit]


@pytest.fixture(params=list(MODES))
def start(request: pytest.FixtureRequest) -> Iterator[Start]:
    """``start_server`` in one mode of the matrix; at the end, every reloadkit it started ran in
    that mode: warm forked every generation after the first and never fell back to a cold
    start; cold never built a warm parent. No generation had to be killed."""
    mode: str = request.param
    started: list[Reloadkit] = []

    def start(project: Path, binds: Sequence[str], command: Sequence[str], *options: str, **env: str) -> Reloadkit:
        rk = start_server(project, binds, command, *MODES[mode], *options, **env)
        started.append(rk)
        return rk

    yield start
    assert started
    for rk in started:
        assert "did not stop within" not in rk.output, rk.output  # each stopped on its signal, cold or warm
        if mode == "warm":
            assert "forked warm" in rk.output, rk.output
            assert "starts cold" not in rk.output, rk.output
        else:
            assert "forked warm" not in rk.output, rk.output
            assert "warm parent" not in rk.output, rk.output


def _url(rk: Reloadkit) -> str:
    """The first address reloadkit listens on, as a URL the support client takes."""
    addresses = rk.wait_listening()
    return addresses[0]


def _info(url: str) -> dict:
    status, body = http_get(url, "/info")
    assert status == 200, body
    return json.loads(body)


def _reload_under_load(
    rk: Reloadkit,
    project: Path,
    url: str,
    reloads: int = RELOADS,
    after_each: Callable[[int], None] | None = None,
) -> LoopingClient:
    """Serve v0, then change version.py ``reloads`` times with a client looping all along:
    no request may fail, the client sees every version in order, and every old generation
    stops by itself (an asyncio server left in a blocking accept would not)."""
    serves(url, "v0", timeout=30)
    with LoopingClient(url, max_requests=1_000_000, max_seconds=50) as client:
        client.wait_requests(5, timeout=20)
        for number in range(1, reloads + 1):
            write_file(project / "version.py", f"VERSION = 'v{number}'\n")
            wait_for(lambda n=number: client.last_body == f"v{n}", 30, f"the client to see v{number}")
            client.wait_requests(5, timeout=20)
            if after_each is not None:
                after_each(number)
    _summary(rk, client)
    assert client.stats["failed"] == 0, (
        f"{client.stats['failed']} failed of {client.stats['ok'] + client.stats['failed']}: {client.stats['errors'][:5]}"
    )
    assert "did not stop within" not in rk.output, "an old generation had to be killed"
    assert client.bodies == [f"v{n}" for n in range(reloads + 1)], client.bodies
    return client


def _summary(rk: Reloadkit, client: LoopingClient) -> None:
    latencies = sorted(client.stats["latencies"]) or [0.0]
    stops = [int(ms) for ms in re.findall(r"stop took (\d+) ms", rk.output)]
    print(
        f"\n{' '.join(rk.argv[rk.argv.index('--') + 1:])[:70]}: ok={client.stats['ok']} failed={client.stats['failed']}"
        f" p50={statistics.median(latencies) * 1000:.1f}ms max={latencies[-1] * 1000:.0f}ms"
        f" generations={rk.generations()} stops_ms={stops}"
    )


def _stop_and_check_nothing_left(rk: Reloadkit) -> None:
    """SIGTERM reloadkit; it exits, and takes every process of its tree with it."""
    rk.tree_pids()
    rk.signal(signal.SIGTERM)
    rk.wait_exit(timeout=20)
    pids = rk.tree_pids()
    assert len(pids) >= 2, pids
    assert_all_gone(pids, timeout=5)


def _every_worker_serves(url: str, generation: int, workers: int) -> set[int]:
    """Wait until ``workers`` distinct pids of ``generation`` answered with its version.

    gunicorn's workers import the app each on its own (no --preload): a worker that is
    still booting when a file changes loads the newer file. Editing again only once the
    whole generation has loaded keeps "one edit, one generation, one version" observable.
    """
    pids: set[int] = set()

    def all_seen() -> set[int] | None:
        body = try_get(url, "/info")
        if body:
            info = json.loads(body)
            if info["version"] == f"v{generation}" and info["generation"] == str(generation):
                pids.add(info["pid"])
        return pids if len(pids) >= workers else None

    return wait_for(all_seen, 20, f"{workers} workers of generation {generation} to serve v{generation}")


# --- gunicorn ----------------------------------------------------------------------------


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_gunicorn_reads_listen_fds_and_every_worker_dies_on_each_reload(server_project: Path, start: Start, worker: str) -> None:
    command = [_script("gunicorn"), "-w", "2", "-k", worker, "wsgi_app:app"]
    with start(server_project, ["127.0.0.1:0"], command) as rk:
        url = _url(rk)
        generations: dict[int, set[int]] = {}

        def record(generation: int) -> None:
            rk.wait_for_output(rf"started pid \d+ \(generation {generation}\)", timeout=10)
            master = rk.child_pid(generation)
            workers = _every_worker_serves(url, generation, 2)
            generations[generation] = {master} | wait_children(master, 2)
            assert workers <= generations[generation]
            # gunicorn's arbiter sends READY=1 before its workers import the app: ready means
            # a worker took the probe
            rk.wait_for_output(rf"ready in \d+ ms \(accepting; pid {master}\)", timeout=20)
            if generation > 0:  # the master and both workers of the previous generation are gone
                assert_all_gone(generations[generation - 1], timeout=5)

        serves(url, "v0", timeout=30)
        record(0)
        # gunicorn adopted fd 3 (LISTEN_FDS), it did not bind its default 127.0.0.1:8000
        assert f"Listening at: http://127.0.0.1:{rk.port}" in rk.output
        _reload_under_load(rk, server_project, url, after_each=record)
        assert rk.generations() == RELOADS + 1
        _stop_and_check_nothing_left(rk)


def test_gunicorn_on_a_unix_socket(server_project: Path, sockdir: Path) -> None:
    path = sockdir / "gunicorn.sock"
    with start_server(server_project, [f"unix:{path}"], [_script("gunicorn"), "-w", "2", "wsgi_app:app"]) as rk:
        url = _url(rk)
        assert url == f"unix:{path}"
        _every_worker_serves(url, 0, 2)
        _reload_under_load(rk, server_project, url, after_each=lambda n: _every_worker_serves(url, n, 2))
        _stop_and_check_nothing_left(rk)
    assert not path.exists()


def test_django_via_gunicorn(server_project: Path, start: Start) -> None:
    with start(server_project, ["127.0.0.1:0"], [_script("gunicorn"), "-w", "2", "djsite.wsgi"]) as rk:
        url = _url(rk)
        _every_worker_serves(url, 0, 2)
        _reload_under_load(rk, server_project, url, after_each=lambda n: _every_worker_serves(url, n, 2))
        _stop_and_check_nothing_left(rk)


# --- uvicorn -----------------------------------------------------------------------------


def test_uvicorn_fd_on_tcp(server_project: Path, start: Start) -> None:
    with start(server_project, ["127.0.0.1:0"], [_script("uvicorn"), "--fd", "3", "asgi_app:app"]) as rk:
        url = _url(rk)
        serves(url, "v0", timeout=30)
        # uvicorn wraps fd 3 as AF_UNIX whatever it is; the peer address still comes out right
        client = _info(url)["client"]
        assert client[0] == "127.0.0.1" and isinstance(client[1], int) and client[1] > 0, client
        _reload_under_load(rk, server_project, url)
        _stop_and_check_nothing_left(rk)


@pytest.mark.parametrize("bind", ["tcp", "unix"])
def test_uvicorn_with_overlap(server_project: Path, start: Start, sockdir: Path, bind: str) -> None:
    """--overlap: the new uvicorn starts on a socket of its own that gets no connection
    until it is ready (uvicorn sends no READY=1: it is ready when it accepts reloadkit's probe,
    or at the latest after the explicit --ready-after 0.5); then the address moves to it and
    the old one stops."""
    spec = f"unix:{sockdir / 'uvicorn.sock'}" if bind == "unix" else "127.0.0.1:0"
    command = [_script("uvicorn"), "--fd", "3", "asgi_app:app"]
    with start(server_project, [spec], command, "--overlap", "--ready-after", "0.5") as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        assert rk.output.count(" beside pid ") == RELOADS
        _stop_and_check_nothing_left(rk)


def test_uvicorn_fd_on_tcp_has_no_nagle_delay(server_project: Path) -> None:
    """uvicorn's AF_UNIX wrapping skips asyncio's TCP_NODELAY: every response written in
    several parts then waits for the client's delayed ACK (~40 ms) on a kept-alive
    connection, unless the listening socket (whose options accepted sockets inherit)
    already has TCP_NODELAY."""
    with start_server(server_project, ["127.0.0.1:0"], [_script("uvicorn"), "--fd", "3", "asgi_app:app"]) as rk:
        url = _url(rk)
        serves(url, "v0", timeout=30)
        connection = http.client.HTTPConnection("127.0.0.1", rk.port, timeout=10)
        latencies = []
        try:
            for _ in range(15):
                started = time.perf_counter()
                connection.request("GET", "/stream")
                response = connection.getresponse()
                assert response.read() == b"v0 streamed"
                latencies.append(time.perf_counter() - started)
        finally:
            connection.close()
        median = statistics.median(latencies)
        assert median < 0.02, f"median {median * 1000:.1f} ms per streamed response: Nagle's algorithm is on"
        _stop_and_check_nothing_left(rk)


def test_uvicorn_fd_on_a_unix_socket(server_project: Path, sockdir: Path) -> None:
    path = sockdir / "uvicorn.sock"
    with start_server(server_project, [f"unix:{path}"], [_script("uvicorn"), "--fd", "3", "asgi_app:app"]) as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        _stop_and_check_nothing_left(rk)


def test_django_via_uvicorn(server_project: Path, start: Start) -> None:
    command = [_script("uvicorn"), "--fd", "3", "djsite.asgi:application"]
    with start(server_project, ["127.0.0.1:0"], command) as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        _stop_and_check_nothing_left(rk)


# --- hypercorn ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_hypercorn_bind_fd(server_project: Path, start: Start, sockdir: Path, kind: str) -> None:
    bind = "127.0.0.1:0" if kind == "tcp" else f"unix:{sockdir / 'hypercorn.sock'}"
    command = [_script("hypercorn"), "--bind", "fd://3", "asgi_app:app"]
    with start(server_project, [bind], command) as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        if kind == "tcp":
            assert _info(url)["client"][0] == "127.0.0.1"
        _stop_and_check_nothing_left(rk)


# --- daphne ------------------------------------------------------------------------------


def test_daphne_fd(server_project: Path, start: Start) -> None:
    command = [_script("daphne"), "--fd", "3", "asgi_app:application"]
    with start(server_project, ["127.0.0.1:0"], command) as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        assert _info(url)["client"][0] == "127.0.0.1"
        _stop_and_check_nothing_left(rk)


def test_daphne_on_a_unix_socket_through_its_systemd_endpoint(server_project: Path, start: Start, sockdir: Path) -> None:
    """daphne's --fd always adopts the fd as AF_INET; for a Unix socket use twisted's systemd
    endpoint, which reads LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES and takes the family. Twisted
    chmods an adopted Unix socket's own name when it starts and removes it when it stops: that
    name is reloadkit's hidden one beside the path, so the path survives every reload."""
    path = sockdir / "daphne.sock"
    command = [_script("daphne"), "-e", "systemd:domain=UNIX:index=0", "asgi_app:application"]
    with start(server_project, [f"unix:{path}"], command) as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        assert path.is_socket()
        _stop_and_check_nothing_left(rk)
    assert not path.exists() and not list(sockdir.glob(".daphne.sock.rk*"))


# --- Flask / werkzeug ----------------------------------------------------------------------


def test_flask_run(server_project: Path, start: Start) -> None:
    command = [_script("flask"), "--app", "flask_app", "run"]
    with start(server_project, ["127.0.0.1:0"], command) as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        _stop_and_check_nothing_left(rk)


def test_flask_app_run(server_project: Path, start: Start) -> None:
    with start(server_project, ["127.0.0.1:0"], [sys.executable, "flask_app.py"]) as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        _stop_and_check_nothing_left(rk)


def test_flask_debug_one_edit_is_one_restart(server_project: Path, start: Start) -> None:
    """``flask run --debug``: the debugger works, and reloadkit sets FLASK_RUN_RELOAD=false
    (unless it is set), so werkzeug's reloader does not watch a second time: no second
    interpreter, no second watcher, and one edit gives exactly one new generation."""
    command = [_script("flask"), "--app", "flask_app", "run", "--debug"]
    with start(server_project, ["127.0.0.1:0"], command) as rk:
        url = _url(rk)

        def single_process(generation: int) -> None:
            wait_for(lambda: rk.generations() == generation + 1, 10, f"generation {generation}")
            child = psutil.Process(rk.child_pid(generation))
            assert child.children(recursive=True) == [], "werkzeug spawned a reloader child"

        serves(url, "v0", timeout=30)
        rk.wait_for_output(r"Debugger is active")
        single_process(0)
        _reload_under_load(rk, server_project, url, after_each=single_process)
        assert rk.generations() == RELOADS + 1, rk.output
        _stop_and_check_nothing_left(rk)


def test_flask_app_run_debug_exit_status_3_is_a_restart(server_project: Path) -> None:
    """app.run(debug=True): werkzeug's reloader runs in the child itself (WERKZEUG_RUN_MAIN is
    already "true", so it spawns no second interpreter) and exits with status 3 when a file
    it watches changes. Here only werkzeug watches that file (data.txt: reloadkit ignores
    *.txt), so the restart can only come from the exit status."""
    (server_project / "data.txt").write_text("one\n")
    with start_server(server_project, ["127.0.0.1:0"], [sys.executable, "flask_app.py", "--werkzeug-reloader"]) as rk:
        url = _url(rk)
        serves(url, "v0", timeout=30)
        first = _info(url)["pid"]
        assert first == rk.child_pid(0)
        assert psutil.Process(first).children(recursive=True) == []
        rk.wait_for_output(r"Debugger is active")
        write_file(server_project / "data.txt", "two\n")
        rk.wait_for_output(rf"restarting \(pid {first} exited with status 3\)", timeout=20)
        rk.wait_for_output(r"started pid \d+ \(generation 1\)", timeout=10)
        second = rk.child_pid(1)
        wait_for(lambda: _info(url)["pid"] == second, 20, "generation 1 to serve")
        assert rk.generations() == 2
        _stop_and_check_nothing_left(rk)


# --- waitress and aiohttp: a few lines with reloadkit.sockets() --------------------------------


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_waitress_sockets(server_project: Path, start: Start, sockdir: Path, kind: str) -> None:
    bind = "127.0.0.1:0" if kind == "tcp" else f"unix:{sockdir / 'waitress.sock'}"
    with start(server_project, [bind], [sys.executable, "serve_waitress.py"]) as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        _stop_and_check_nothing_left(rk)


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_aiohttp_sock(server_project: Path, start: Start, sockdir: Path, kind: str) -> None:
    bind = "127.0.0.1:0" if kind == "tcp" else f"unix:{sockdir / 'aiohttp.sock'}"
    with start(server_project, [bind], [sys.executable, "serve_aiohttp.py"]) as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        _stop_and_check_nothing_left(rk)


# --- Django's runserver: reloadkit as a plain supervisor -----------------------------------------


def test_django_runserver_noreload_as_a_plain_supervisor(server_project: Path, start: Start) -> None:
    """No --bind and --no-adopt: runserver binds the port itself in every generation.
    reloadkit still restarts it on every change and leaves nothing behind, but between the
    old child's exit and the new child's bind the port is closed: clients get "connection
    refused". (Without --no-adopt its bind takes a held socket: test_adopt.py.)"""
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with start(server_project, [], command, "--no-adopt") as rk:
        rk.wait_for_output(r"started pid \d+ \(generation 0\)")
        assert "listening on" not in rk.output
        url = f"http://127.0.0.1:{port}"
        serves(url, "v0", timeout=30)
        with LoopingClient(url, max_requests=1_000_000, max_seconds=50) as client:
            client.wait_requests(5, timeout=20)
            for number in range(1, RELOADS + 1):
                write_file(server_project / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: client.last_body == f"v{n}", 30, f"the client to see v{number}")
                client.wait_requests(5, timeout=20)
        _summary(rk, client)
        # runserver dies on SIGTERM: a response cut after its status line reads as an empty body
        assert [body for body in client.bodies if body] == [f"v{n}" for n in range(RELOADS + 1)], client.bodies
        assert rk.generations() == RELOADS + 1
        # The caveat, as it is: refused connections while no generation holds the port (and,
        # as runserver dies on SIGTERM, the odd request cut short).
        refused = sum("ConnectionRefusedError" in error for error in client.stats["errors"])
        assert refused > 0, client.stats["errors"][:5]
        kinds = ("ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected", "IncompleteRead")
        assert all(error.startswith(kinds) for error in client.stats["errors"]), client.stats["errors"][:5]
        _stop_and_check_nothing_left(rk)


# --- wrappers: LISTEN_PID must name the exec'd process ---------------------------------------


def test_sh_c_exec_wrapper_keeps_listen_pid(server_project: Path) -> None:
    with start_server(server_project, ["127.0.0.1:0"], ["sh", "-c", f"exec {sys.executable} serve_waitress.py"]) as rk:
        url = _url(rk)
        _reload_under_load(rk, server_project, url)
        _stop_and_check_nothing_left(rk)


def test_wrapper_that_does_not_exec_breaks_the_contract_loudly(server_project: Path) -> None:
    """``sh -c 'python serve.py; true'`` forks: LISTEN_PID is the shell's pid, so
    reloadkit.sockets() refuses the sockets (they are not for this process)."""
    command = ["sh", "-c", f"{sys.executable} serve_waitress.py; exit 7"]
    with start_server(server_project, ["127.0.0.1:0"], command) as rk:
        _url(rk)
        rk.wait_for_output(r"a wrapper that does not exec changed the pid")
        rk.wait_for_output(r"exited with status 7; waiting for a change")
        _stop_and_check_nothing_left(rk)


def test_gunicorn_under_a_wrapper_that_does_not_exec_ignores_listen_fds(server_project: Path) -> None:
    """gunicorn checks LISTEN_PID too, but silently: with a forking wrapper it binds its own
    address (its -b, else 127.0.0.1:8000) and reloadkit's socket is never served."""
    port = free_port()
    command = ["sh", "-c", f"{_script('gunicorn')} -w 1 -b 127.0.0.1:{port} wsgi_app:app; exit 7"]
    with start_server(server_project, ["127.0.0.1:0"], command) as rk:
        url = _url(rk)
        rk.wait_for_output(rf"Listening at: http://127.0.0.1:{port}\b")
        serves(f"http://127.0.0.1:{port}", "v0", timeout=30)
        assert try_get(url, timeout=1.0) is None  # queued in reloadkit's backlog, never accepted
        _stop_and_check_nothing_left(rk)
