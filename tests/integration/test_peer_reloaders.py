"""Installing reloadkit never breaks a framework's own reloader in the same virtual environment.

reloadkit depends on watchdog, so installing it chooses the watchdog that Flask's reloader
(werkzeug's) then uses. watchdog 7 matches event-handler patterns against the whole path
(``PurePath.full_match``, a documented breaking change), while werkzeug still passes
``*.py``: an edit of any module below the watched directory, such as every module of
Flask's tutorial package, never reloads. reloadkit's requirement therefore stops below 7
(setup.cfg); this test runs plain ``flask run --debug`` -- without reloadkit -- in the test
environment and edits a module of a package, the case watchdog 7 misses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support import Reloadkit, assert_all_gone, free_port, try_get, wait_for, write_file

pytestmark = pytest.mark.timeout(90)

VIEWS = """\
from flask import Blueprint

bp = Blueprint("views", __name__)


@bp.get("/")
def index():
    return "{version}"
"""

FACTORY = """\
from flask import Flask


def create_app():
    app = Flask(__name__)
    from . import views

    app.register_blueprint(views.bp)
    return app
"""



def test_flask_run_debug_reloads_an_edited_module_of_a_package(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    package = tmp_path / "flaskr"
    package.mkdir()
    write_file(package / "__init__.py", FACTORY)
    write_file(package / "views.py", VIEWS.format(version="v1"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Reloadkit is only the harness here (output captured, process tree killed at the end):
    # the command is Flask's own, with Flask's own reloader.
    argv = [sys.executable, "-m", "flask", "--app", "flaskr", "run", "--debug", "--port", str(port)]
    with Reloadkit([], argv=argv, cwd=tmp_path) as flask:
        reloader = flask.wait_for_output(r"Restarting with (\S+)").group(1)
        assert reloader == "watchdog", f"Flask chose its {reloader} reloader, not watchdog (a dependency of reloadkit)"
        wait_for(lambda: try_get(url) == "v1", 30, "Flask to serve v1")
        # A longer body: CPython trusts a .pyc whose recorded source mtime (whole seconds) and
        # size match, and Flask's reloader does not clear it, so an edit of the same size in the
        # same second as the first write would serve v1 from __pycache__ after the reload.
        write_file(package / "views.py", VIEWS.format(version="v2, edited"))
        wait_for(lambda: try_get(url) == "v2, edited", 30, f"Flask's own reloader ({reloader}) to serve the edit")
        pids = flask.tree_pids()
    assert_all_gone(pids)
