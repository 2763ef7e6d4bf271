"""--ready-path with --overlap: a version that accepts but cannot answer (``flask run`` whose
view fails, Django under gunicorn whose URLconf is broken: both accept before they import
the app, or before the request reaches it) never replaces the working one; every request of
a looping client gets the old good answer until an edit fixes the app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import BIN, LoopingClient, start_server, wait_for, write_file

pytestmark = pytest.mark.timeout(120)


def _flask(project: Path) -> tuple[list[str], Path, Callable[[str], str], Callable[[str], str]]:
    def broken(good: str) -> str:
        return good.replace("return VERSION, 200", "return VERSION + undefined_name, 200")

    def fixed(good: str) -> str:
        return good.replace("return VERSION, 200", "return 'fixed', 200")

    return [str(BIN / "flask"), "--app", "flask_app", "run"], project / "flask_app.py", broken, fixed


def _django(project: Path) -> tuple[list[str], Path, Callable[[str], str], Callable[[str], str]]:
    def broken(good: str) -> str:
        return good + "\ndef broken(:\n    pass\n"

    def fixed(good: str) -> str:
        return good.replace("return _response(VERSION)", "return _response('fixed')")

    return [str(BIN / "gunicorn"), "djsite.wsgi:application"], project / "djsite" / "urls.py", broken, fixed


APPS = {"flask run": _flask, "django under gunicorn": _django}


@pytest.mark.parametrize("app", list(APPS))
def test_a_broken_version_never_replaces_the_working_one(server_project: Path, app: str) -> None:
    pytest.importorskip("flask" if app == "flask run" else "django")
    command, module, broken, fixed = APPS[app](server_project)
    good = module.read_text()
    with start_server(server_project, ["127.0.0.1:0"], command, "-v", "--overlap", "--ready-path", "/") as rk:
        url = rk.wait_listening()[0]
        rk.wait_for_output(r"ready in \d+ ms")
        with LoopingClient(url, max_requests=100000, max_seconds=100) as client:
            wait_for(lambda: client.last_body == "v0", 30, "v0")
            write_file(module, broken(good))
            rk.wait_for_output(r"started pid \d+ \(generation 1\) beside pid")
            # The new generation has been asked and failed, more than once.
            wait_for(lambda: rk.count(r"Exception on / \[GET\]|Error handling request GET /") >= 2, 30,
                     "the new version to answer 500 to the probe twice")
            client.wait_requests(20)
            assert client.bodies == ["v0"] and client.stats["failed"] == 0, (client.stats["errors"][:5], rk.output)
            write_file(module, fixed(good))
            wait_for(lambda: client.last_body == "fixed", 30, "the fixed version")
        assert client.bodies == ["v0", "fixed"], client.bodies
        assert client.stats["failed"] == 0, client.stats["errors"][:5]
