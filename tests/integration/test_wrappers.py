"""Wrappers that do not exec: reloadkit says so in one line, and --through-wrapper lets gunicorn
serve on the held socket behind `sh -c '...; ...'` and `uv run`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from support import BIN, Reloadkit, needs, server_env, try_get, wait_for, write_file

pytestmark = pytest.mark.timeout(90)
UV = shutil.which("uv", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
WARNING = r"pid \d+ \(\S+\) holds the sockets, but LISTEN_PID=\d+ names (\S+), a wrapper that did not exec it: .* or add --through-wrapper"


def _env(project: Path) -> dict[str, str]:
    """A real server's environment, with uv's cache in the test's directory too."""
    return server_env(project, UV_CACHE_DIR=str(project.parent / "uv-cache"))


# gunicorn binds 127.0.0.1:0 of its own when it ignores the inherited socket, never a fixed port
GUNICORN = f"{sys.executable} -m gunicorn -w 1 -b 127.0.0.1:0 wsgi_app:app"


def _sh(project: Path, *options: str) -> Reloadkit:
    command = ["sh", "-c", f"{GUNICORN}; echo gunicorn ended"]
    return Reloadkit(["-b", "127.0.0.1:0", *options, "--", *command], cwd=project, env=_env(project))


def test_sh_without_exec_is_one_warning_line(server_project: Path) -> None:
    with _sh(server_project) as rk:
        rk.wait_listening()
        match = rk.wait_for_output(WARNING, timeout=30)
        assert match.group(1) in ("sh", "dash", "bash")
        assert "\n" not in match.group(0)
        # gunicorn took LISTEN_PID for someone else's and listened on a port of its own
        wait_for(lambda: "Listening at: http://127.0.0.1:" in rk.output, 30, "gunicorn to listen")
        assert f"Listening at: http://127.0.0.1:{rk.port} " not in rk.output + " "
        assert rk.count(WARNING) == 1


def test_sh_through_wrapper_serves_on_the_held_socket(server_project: Path) -> None:
    with _sh(server_project, "--through-wrapper") as rk:
        rk.wait_listening()
        wait_for(lambda: try_get(rk.url) == "v0", 30, "gunicorn to serve on the held socket")
        assert f"Listening at: http://127.0.0.1:{rk.port}" in rk.output
        write_file(server_project / "version.py", "VERSION = 'v1'\n")
        wait_for(lambda: try_get(rk.url) == "v1", 30, "the new generation to serve")
        assert rk.count(WARNING) == 0


@pytest.mark.parametrize("through", [False, True])
def test_uv_run(server_project: Path, through: bool) -> None:
    needs(UV, "uv (the test extra installs it)")
    command = [str(UV), "run", "--no-project", "--offline", "--python", sys.executable, "python", *GUNICORN.split()[1:]]
    options = ["--through-wrapper"] if through else []
    with Reloadkit(["-b", "127.0.0.1:0", *options, "--", *command], cwd=server_project, env=_env(server_project)) as rk:
        rk.wait_listening()
        if through:
            wait_for(lambda: try_get(rk.url) == "v0", 30, "gunicorn under uv run to serve on the held socket")
            assert rk.count(WARNING) == 0
        else:
            assert rk.wait_for_output(WARNING, timeout=30).group(1) == "uv"
