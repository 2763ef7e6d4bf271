"""Soak: 200 reloads under two clients, a looping one on new connections and one on
keep-alive connections, and not one failed request. Slow: run with ``-m slow``."""

from __future__ import annotations

import contextlib
import http.client
import shutil
import sys
import threading
from pathlib import Path

import pytest
from support import LoopingClient, Reloadkit, try_get, wait_for, write_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
APP = Path(__file__).parent / "apps" / "keepalive.py"
SERVER_APPS = Path(__file__).parent / "apps" / "servers"
AIOHTTP_APP = SERVER_APPS / "serve_aiohttp.py"
RELOADS = 200


class KeepAliveClient:
    """Requests back to back on one connection, a new one only when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ok = 0
        self.connections = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> KeepAliveClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.connections += 1
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                response.read()
                self.ok += 1
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                connection = None
        if connection is not None:
            connection.close()


@pytest.mark.parametrize(
    ("mode", "flags"),
    [((), ()), (("--overlap",), ()), ((), ("--abrupt",))],
    ids=["default", "overlap", "dies-on-sigterm"],
)
def test_two_hundred_reloads_without_a_failed_request(tmp_path: Path, mode: tuple[str, ...], flags: tuple[str, ...]) -> None:
    (tmp_path / "version.py").write_text("VERSION = 'v0'\n")
    with Reloadkit(["-b", "127.0.0.1:0", *mode, "--", sys.executable, str(APP), *flags], cwd=tmp_path) as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 30, "v0")
        # keep-alive against a server that dies on SIGTERM loses what it is sent at that moment
        keepalive = KeepAliveClient(rk.port)
        with LoopingClient(url, max_requests=10_000_000, max_seconds=500) as looping, (
            contextlib.nullcontext() if flags else keepalive
        ):
            for number in range(1, RELOADS + 1):
                write_file(tmp_path / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: looping.last_body == f"v{n}", 30, f"the client to see v{number}")
        print(f"\nsoak {' '.join(mode + flags) or 'default'}: looping ok={looping.stats['ok']} failed={looping.stats['failed']};"
              f" keep-alive ok={keepalive.ok} failed={len(keepalive.errors)} connections={keepalive.connections};"
              f" generations={rk.generations()}")
        assert looping.stats["failed"] == 0, looping.stats["errors"][:5]
        assert keepalive.errors == [], keepalive.errors[:5]
        if not flags:
            # each stopping generation closed the connection it had after one more answer
            assert keepalive.ok > RELOADS and keepalive.connections > 1
        assert rk.generations() == RELOADS + 1


def test_two_hundred_reloads_of_aiohttp_without_a_failed_request(tmp_path: Path) -> None:
    """A graceful asyncio server closes, on SIGTERM, every connection it accepted but has not
    read a request from yet: the drain must not signal it while it holds one (warm, the default)."""
    pytest.importorskip("aiohttp")
    shutil.copy(AIOHTTP_APP, tmp_path / "serve_aiohttp.py")
    (tmp_path / "version.py").write_text("VERSION = 'v0'\n")
    with Reloadkit(["-b", "127.0.0.1:0", "--", sys.executable, "serve_aiohttp.py"], cwd=tmp_path) as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 30, "v0")
        with LoopingClient(url, max_requests=10_000_000, max_seconds=500) as looping:
            for number in range(1, RELOADS + 1):
                write_file(tmp_path / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: looping.last_body == f"v{n}", 30, f"the client to see v{number}")
                looping.wait_requests(5, timeout=20)
        print(f"\nsoak aiohttp: looping ok={looping.stats['ok']} failed={looping.stats['failed']} generations={rk.generations()}")
        assert looping.stats["failed"] == 0, looping.stats["errors"][:5]
        assert rk.generations() == RELOADS + 1


def test_two_hundred_reloads_of_uvicorn_under_a_keep_alive_client(tmp_path: Path) -> None:
    """uvicorn closes its idle keep-alive connections when told to stop: each is taken over
    (net/takeover.py) and served by the next generation, so the one connection of a
    keep-alive client lives through every reload and not one request fails."""
    pytest.importorskip("uvicorn")
    project = tmp_path / "app"
    shutil.copytree(SERVER_APPS, project, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "version.py").write_text("VERSION = 'v0'\n")
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    with Reloadkit(["-b", "127.0.0.1:0", "--", uvicorn, "--fd", "3", "asgi_app:app"], cwd=project) as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 30, "v0")
        with LoopingClient(url, max_requests=10_000_000, max_seconds=500) as looping, KeepAliveClient(rk.port) as keepalive:
            for number in range(1, RELOADS + 1):
                write_file(project / "version.py", f"VERSION = 'v{number}'\n")
                wait_for(lambda n=number: looping.last_body == f"v{n}", 30, f"the client to see v{number}")
        print(f"\nsoak uvicorn: looping ok={looping.stats['ok']} failed={looping.stats['failed']};"
              f" keep-alive ok={keepalive.ok} failed={len(keepalive.errors)} connections={keepalive.connections};"
              f" generations={rk.generations()}")
        assert looping.stats["failed"] == 0, looping.stats["errors"][:5]
        assert keepalive.errors == [], keepalive.errors[:5]
        assert keepalive.ok > RELOADS and keepalive.connections == 1
        assert rk.generations() == RELOADS + 1
