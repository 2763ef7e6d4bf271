"""The servers matrix (test_servers.py) again with ``--warm``: every generation after the
first is forked from the warm parent, and everything test_servers checks still holds (no
failed request, versions in order, every process gone at the end)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import test_servers as servers
from support import Reloadkit
from test_servers import (  # noqa: F401 - collected here, run warm
    project,
    sockdir,
    test_aiohttp_sock,
    test_daphne_fd,
    test_daphne_on_a_unix_socket_through_its_systemd_endpoint,
    test_django_runserver_noreload_as_a_plain_supervisor,
    test_django_via_gunicorn,
    test_django_via_uvicorn,
    test_flask_app_run,
    test_flask_debug_one_edit_is_one_restart,
    test_flask_run,
    test_gunicorn_reads_listen_fds_and_every_worker_dies_on_each_reload,
    test_hypercorn_bind_fd,
    test_uvicorn_fd_on_tcp,
    test_uvicorn_with_overlap,
    test_waitress_sockets,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def warm(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    started: list[Reloadkit] = []
    original = servers._start

    def start(*args: Any, **env: str) -> Reloadkit:
        root, binds, command, *options = args
        rk = original(root, binds, command, "-v", "--warm", *options, **env)
        started.append(rk)
        return rk

    monkeypatch.setattr(servers, "_start", start)
    yield
    assert started
    for rk in started:
        assert "forked warm" in rk.output, rk.output
        assert "starts cold" not in rk.output, rk.output
