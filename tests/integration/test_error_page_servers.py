"""The error page for real servers whose app cannot load: uvicorn's import error, gunicorn's
worker that fails to boot (gunicorn then exits 3, which is not a restart request), Django's
runserver whose system checks import a broken URLconf (its own bind, adopted), cold and
warm. The browser gets reloadkit's page with the exception and the user's frame first, not a
hang and not a bare 500; the fix brings the app back."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from support import Reloadkit, free_port, http_get, try_get, wait_for, write_file

pytestmark = pytest.mark.timeout(120)
APPS = Path(__file__).parent / "apps" / "servers"
BIN = Path(sys.executable).parent

SERVERS = {
    "uvicorn": ("asgi_app.py", [str(BIN / "uvicorn"), "--fd", "3", "asgi_app:app"]),
    "gunicorn": ("wsgi_app.py", [str(BIN / "gunicorn"), "wsgi_app:app"]),
    "django": ("djsite/urls.py", [sys.executable, "manage.py", "runserver"]),  # + its address, no --bind
}


@pytest.mark.parametrize("mode", ["--no-warm", "--warm"])
@pytest.mark.parametrize("server", list(SERVERS))
def test_a_syntax_error_in_the_app_module_gets_the_error_page(tmp_path: Path, server: str, mode: str) -> None:
    pytest.importorskip(server)
    project = tmp_path / "app"
    shutil.copytree(APPS, project, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    write_file(project / "version.py", "VERSION = 'v0'\n")
    (tmp_path / "run").mkdir()
    module, command = SERVERS[server]
    binds = ["-b", "127.0.0.1:0"]
    if server == "django":
        binds, command = [], [*command, f"127.0.0.1:{free_port()}"]
    env = {"PYTHONDONTWRITEBYTECODE": "1", "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}
    with Reloadkit([*binds, mode, "--", *command], cwd=project, env=env) as rk:
        url = f"http://{command[-1]}" if server == "django" else rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 30, "v0")
        good = (project / module).read_text()
        write_file(project / module, good + "\ndef broken(:\n    pass\n")
        rk.wait_for_output(r"exited with status \d+; waiting for a change|cannot load the app: .*; showing the error page")
        status, body = http_get(url, timeout=10)
        assert status == 503
        top, _, rest = body.partition('<pre id="stderr">')
        assert "SyntaxError" in top and f"{module}, line " in top, body
        assert "site-packages" not in top and "site-packages" in rest  # the framework's frames: below
        assert "def broken(:" in top
        page = json.loads(_json(url))
        assert page["exception"].startswith("SyntaxError"), page
        assert page["your_frames"][0]["file"].endswith(module), page
        write_file(project / module, good)
        wait_for(lambda: try_get(url) == "v0", 30, "the fixed app")
        assert rk.count("asked for a restart") == 0, rk.output


def _json(url: str) -> str:
    import http.client

    host, port = url.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/", headers={"Accept": "application/json"})
        return conn.getresponse().read().decode()
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["--no-warm", "--warm"])
def test_django_under_gunicorn_whose_urlconf_fails_at_the_first_request(tmp_path: Path, mode: str) -> None:
    """gunicorn boots (Django imports the URLconf at the first request, not before), answers
    that request with its bare 500 and logs the SyntaxError: reloadkit stops it and shows the
    error page until the fix."""
    pytest.importorskip("django")
    project = tmp_path / "app"
    shutil.copytree(APPS, project, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    write_file(project / "version.py", "VERSION = 'v0'\n")
    (tmp_path / "run").mkdir()
    env = {"PYTHONDONTWRITEBYTECODE": "1", "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}
    command = [str(BIN / "gunicorn"), "djsite.wsgi:application"]
    with Reloadkit(["-b", "127.0.0.1:0", mode, "--", *command], cwd=project, env=env) as rk:
        url = rk.wait_listening()[0]
        wait_for(lambda: try_get(url) == "v0", 30, "v0")
        good = (project / "djsite" / "urls.py").read_text()
        write_file(project / "djsite" / "urls.py", good + "\ndef broken(:\n    pass\n")
        rk.wait_for_output(r"restarting \(djsite/urls.py changed\)")
        wait_for(lambda: http_get(url, timeout=10)[0] != 200, 30, "the broken URLconf to be imported")
        rk.wait_for_output(r"cannot load the app: SyntaxError.*; showing the error page until a change")
        _, body = wait_for(lambda: (answer := http_get(url, timeout=10))[0] == 503 and answer, 30,
                                "the error page once gunicorn has stopped")
        top = body.partition('<pre id="stderr">')[0]
        assert "SyntaxError" in top and "djsite/urls.py, line " in top, body
        write_file(project / "djsite" / "urls.py", good)
        wait_for(lambda: try_get(url) == "v0", 30, "the fixed app")
