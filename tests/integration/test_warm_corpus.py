"""Warm reloads of real projects nobody here wrote: each reloads warm five times and serves
what a cold start of the same code serves.

Wagtail (``wagtail start``, migrated), Django with django-ninja (gunicorn), FastAPI (uvicorn),
Flask with Flask-SQLAlchemy (``flask run``) and Datasette (its own bind, adopted). Each
project gets a page that shows the project's ``VERSION`` and what the framework set up (the
installed apps, the routes, the database): generation 0 starts cold; the edits that follow
must each be forked warm, serve the new version, and answer that page, and the framework's
own pages, exactly as generation 0 did. Warm Wagtail used to die on the first edit (a
half-imported ``wagtail.admin`` inherited from the warm parent).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import BIN, Reloadkit, free_port, http_get, needs, server_env, wait_for, write_file

pytestmark = [pytest.mark.timeout(300), pytest.mark.matrix]

RELOADS = 5
READY = r"warm parent pid \d+ ready"
CHECKPOINT_READY = r"project checkpoint pid \d+ ready"


@dataclass
class Project:
    root: Path
    command: list[str]
    version_file: Path  # holds VERSION = N; the page shows it
    page: str  # the page that shows VERSION and what the framework set up
    compare: tuple[str, ...] = ()  # the framework's own pages, the same cold and warm


def _version(path: Path, number: int) -> None:
    write_file(path, f"VERSION = 'v{number}'\n")


def _needs(*modules: str) -> None:
    for module in modules:
        needs(importlib.util.find_spec(module) is not None, f"the {module} package")


# --- the projects ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wagtail_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``wagtail start`` project, migrated, copied for each test (it takes ~30 s here)."""
    _needs("wagtail")
    base = tmp_path_factory.mktemp("wagtail")
    subprocess.run([str(BIN / "wagtail"), "start", "mysite"], cwd=base, check=True, capture_output=True, timeout=120)
    root = base / "mysite"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, check=True, capture_output=True,
                   timeout=240)
    return root


def wagtail(tmp: Path, template: Path) -> Project:
    root = tmp / "mysite"
    shutil.copytree(template, root)
    (root / "home" / "version.py").write_text("VERSION = 'v0'\n")
    # wsgiref's copy of the environment (runserver's request environ), which the project
    # checkpoint holds and corrects: the settings module mysite/wsgi.py set before the import.
    (root / "home" / "views.py").write_text(
        "import sys\n\n"
        "from django.apps import apps\n"
        "from django.http import JsonResponse\n"
        "from wagtail.models import Page, Site\n\n"
        "from home.version import VERSION\n\n\n"
        "def rk(request):\n"
        "    copy = sys.modules['wsgiref.handlers'].BaseHandler.os_environ\n"
        "    return JsonResponse({'version': VERSION, 'apps': sorted(a.label for a in apps.get_app_configs()),\n"
        "                         'pages': [p.title for p in Page.objects.order_by('path')],\n"
        "                         'sites': Site.objects.count(),\n"
        "                         'wsgiref_settings': copy.get('DJANGO_SETTINGS_MODULE')})\n"
    )
    urls = root / "mysite" / "urls.py"
    urls.write_text(urls.read_text().replace(
        "urlpatterns = [\n", "from home.views import rk\n\nurlpatterns = [\n    path(\"rk/\", rk),\n", 1))
    return Project(root, ["gunicorn", "mysite.wsgi"], root / "home" / "version.py", "/rk/", ("/",))


def django_ninja(tmp: Path) -> Project:
    root = tmp / "ninjaproj"
    (root / "proj").mkdir(parents=True)
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "version.py").write_text("VERSION = 'v0'\n")
    (root / "proj" / "settings.py").write_text(
        "SECRET_KEY = 'corpus'\nDEBUG = True\nALLOWED_HOSTS = ['*']\nROOT_URLCONF = 'proj.urls'\n"
        "INSTALLED_APPS = ['django.contrib.contenttypes', 'django.contrib.auth', 'ninja']\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}}\n"
        "USE_TZ = True\n"
    )
    (root / "proj" / "wsgi.py").write_text(
        "import os\n\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n\n"
        "from django.core.wsgi import get_wsgi_application\n\napplication = get_wsgi_application()\n"
    )
    (root / "proj" / "urls.py").write_text(
        "from django.apps import apps\nfrom django.urls import path\nfrom ninja import NinjaAPI, Schema\n\n"
        "from proj.version import VERSION\n\napi = NinjaAPI()\n\n\n"
        "class Item(Schema):\n    name: str\n    price: float\n\n\n"
        "@api.get('/rk')\ndef rk(request):\n"
        "    return {'version': VERSION, 'apps': sorted(a.label for a in apps.get_app_configs())}\n\n\n"
        "@api.post('/items', response=Item)\ndef create(request, item: Item):\n    return item\n\n\n"
        "urlpatterns = [path('api/', api.urls)]\n"
    )
    return Project(root, ["gunicorn", "proj.wsgi"], root / "proj" / "version.py", "/api/rk", ("/api/openapi.json",))


def fastapi(tmp: Path) -> Project:
    root = tmp / "fastapiproj"
    root.mkdir()
    (root / "version.py").write_text("VERSION = 'v0'\n")
    (root / "app.py").write_text(
        "from fastapi import FastAPI\nfrom pydantic import BaseModel\n\nfrom version import VERSION\n\n"
        "app = FastAPI()\n\n\nclass Item(BaseModel):\n    name: str\n    price: float\n\n\n"
        "@app.get('/rk')\ndef rk():\n    return {'version': VERSION, 'routes': sorted(r.path for r in app.routes)}\n\n\n"
        "@app.post('/items')\ndef create(item: Item) -> Item:\n    return item\n"
    )
    return Project(root, ["uvicorn", "--fd", "3", "app:app"], root / "version.py", "/rk", ("/openapi.json",))


def flask_sqlalchemy(tmp: Path) -> Project:
    root = tmp / "flaskproj"
    root.mkdir()
    (root / "version.py").write_text("VERSION = 'v0'\n")
    (root / "app.py").write_text(
        "from flask import Flask, jsonify\nfrom flask_sqlalchemy import SQLAlchemy\n"
        "from sqlalchemy.orm import DeclarativeBase\n\nfrom version import VERSION\n\n\n"
        "class Base(DeclarativeBase):\n    pass\n\n\n"
        "db = SQLAlchemy(model_class=Base)\napp = Flask(__name__)\n"
        "app.config['SQLALCHEMY_DATABASE_URI'] = 'sqlite:///:memory:'\ndb.init_app(app)\n\n\n"
        "class Note(db.Model):\n    id = db.Column(db.Integer, primary_key=True)\n    text = db.Column(db.String)\n\n\n"
        "with app.app_context():\n    db.create_all()\n    db.session.add(Note(text='hello'))\n    db.session.commit()\n\n\n"
        "@app.get('/rk')\ndef rk():\n"
        "    return jsonify(version=VERSION, notes=[n.text for n in db.session.scalars(db.select(Note))],\n"
        "                   extensions=sorted(app.extensions))\n"
    )
    return Project(root, ["flask", "--app", "app", "run"], root / "version.py", "/rk")


def datasette(tmp: Path, port: int) -> Project:
    root = tmp / "datasetteproj"
    (root / "plugins").mkdir(parents=True)
    with sqlite3.connect(root / "data.db") as db:
        db.execute("create table notes (id integer primary key, text text)")
        db.execute("insert into notes (text) values ('hello'), ('world')")
    (root / "version.py").write_text("VERSION = 'v0'\n")
    (root / "plugins" / "rk.py").write_text(
        "import json\nimport sys\n\nfrom datasette import hookimpl\nfrom datasette.utils.asgi import Response\n\n"
        f"sys.path.insert(0, {str(root)!r})\nimport version  # noqa: E402\n\n\n"
        "async def rk(datasette):\n"
        "    rows = (await datasette.get_database('data').execute('select text from notes')).rows\n"
        "    return Response.json({'version': version.VERSION, 'rows': [r[0] for r in rows]})\n\n\n"
        "@hookimpl\ndef register_routes():\n    return [(r'^/-/rk$', rk)]\n"
    )
    command = ["datasette", "serve", "data.db", "--plugins-dir", "plugins", "-h", "127.0.0.1", "-p", str(port)]
    return Project(root, command, root / "version.py", "/-/rk", ("/data/notes.json?_shape=array",))


# --- the check --------------------------------------------------------------------------------


def _get(url: str, path: str) -> str:
    status, body = http_get(url, path, timeout=20)
    assert status == 200, (path, status, body[:2000])
    return body


def _answer(url: str, page: str, version: str) -> str | None:
    try:
        status, body = http_get(url, page, timeout=20)
    except OSError:
        return None
    if status != 200:
        return None
    return body if json.loads(body).get("version") == version else None


def _reloads_warm_as_cold(project: Project, *binds: str) -> str:
    args = ["-v", *[arg for bind in binds for arg in ("-b", bind)], "--", *project.command]
    with Reloadkit(args, cwd=project.root, env=server_env(project.root)) as rk:
        url = rk.url
        cold = wait_for(lambda: _answer(url, project.page, "v0"), 120, "generation 0 to serve v0")
        cold_pages = {path: _get(url, path) for path in project.compare}
        rk.wait_for_output(READY, timeout=120)
        for number in range(1, RELOADS + 1):
            _checkpoint_settled(rk)
            _version(project.version_file, number)
            rk.wait_for_output(rf"generation {number} forked warm", timeout=60)
            warm = wait_for(lambda n=number: _answer(url, project.page, f"v{n}"), 60, f"generation {number} to serve")
            assert warm.replace(f'"v{number}"', '"v0"') == cold
            for path, body in cold_pages.items():
                assert _get(url, path) == body, path
        output = rk.output
        assert "starts cold" not in output, output
        assert "failed warm" not in output, output
        assert "Traceback" not in output, output
        assert output.count("forked warm") == RELOADS
        # The first edit finds VERSION's module in the project checkpoint (or no checkpoint yet):
        # it falls back to the installed-modules parent; the checkpoint rebuilt with that
        # module hot starts all the others.
        assert len(re.findall(r"forked warm from pid \d+ \(the project checkpoint", output)) == RELOADS - 1, output
        # Each checkpoint was forked from the installed-modules parent (Django's set-up then runs
        # after every installed module, as in a generation forked from that parent).
        builds = re.findall(r"building the project checkpoint \(pid \d+(, forked from pid \d+)?\)", output)
        assert builds and all(builds), output
        return output


def _checkpoint_settled(rk: Reloadkit) -> None:
    """After a reload that could not start from the project checkpoint (not built yet, or it
    held the edited module), wait for the checkpoint built after it."""
    fell_back = [match.end() for match in re.finditer(r"does not start from the project checkpoint", rk.output)]
    if fell_back:
        wait_for(lambda: re.search(CHECKPOINT_READY, rk.output[fell_back[-1]:]), 120,
                 "the project checkpoint rebuilt with the edited module hot")


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "run").mkdir()  # server_env's XDG_RUNTIME_DIR: gunicorn's control socket
    yield tmp_path


def test_wagtail(tmp: Path, wagtail_template: Path) -> None:
    output = _reloads_warm_as_cold(wagtail(tmp, wagtail_template), "127.0.0.1:0")
    # The checkpoint holds Wagtail's django.setup() and the project modules the edit leaves
    # alone: the settings, the models, the wsgi module (it held one while wsgiref's handlers,
    # which Django's test client imports, were left out for copying the environment).
    held = [int(count) for count in re.findall(CHECKPOINT_READY + r": \d+ modules imported \((\d+) of the project's\)", output)]
    assert held and max(held) >= 5, output


CASES: dict[str, tuple[tuple[str, ...], Callable[[Path], Project]]] = {
    "django-ninja": (("django", "ninja", "gunicorn"), django_ninja),
    "fastapi": (("fastapi", "uvicorn"), fastapi),
    "flask-sqlalchemy": (("flask", "flask_sqlalchemy"), flask_sqlalchemy),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_framework(tmp: Path, name: str) -> None:
    modules, make = CASES[name]
    _needs(*modules)
    _reloads_warm_as_cold(make(tmp), "127.0.0.1:0")


def test_datasette_on_its_own_bind(tmp: Path) -> None:
    """Datasette takes no descriptor: its own bind() is adopted (the held socket is given)."""
    _needs("datasette")
    port = free_port()
    _reloads_warm_as_cold(datasette(tmp, port), f"127.0.0.1:{port}")
