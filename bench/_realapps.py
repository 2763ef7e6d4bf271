"""The real framework apps (bench/apps/) and the tools that run each one.

Per app: the framework's own reloader, the watchfiles CLI, and reloadkit in each of its modes
(default, ``--overlap``, and the warm modes when this checkout's reloadkit has them). Under
reloadkit the server serves the held socket (fd 3); everywhere else it binds the port itself.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _tools import PYTHON, Launch, reloadkit_env

APPS_DIR = Path(__file__).resolve().parent / "apps"
BIN = Path(PYTHON).parent


def script(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


@dataclass(frozen=True)
class RealApp:
    key: str
    label: str
    source: str  # directory name in bench/apps/
    version_file: str  # relative to the project root
    packages: tuple[str, ...]  # the project's own top-level modules (for the import floor)
    setup_code: str  # Python that imports and sets the app up as a server process would
    fd_server: list[str]  # the server under reloadkit, serving fd 3
    port_server: Callable[[int], list[str]]  # the same server binding the port itself
    framework: Callable[[int], list[str]]  # the framework's own reloader
    framework_label: str
    server_note: str
    migrate: list[str] = field(default_factory=list)  # run once per app, before any tool
    #: more rows of the framework's reloader: (key suffix, label, environment additions)
    framework_variants: tuple[tuple[str, str, dict[str, str]], ...] = ()
    framework_env: dict[str, str] = field(default_factory=dict)  # for the main framework row
    path: str = "/version"
    #: the command as people type it, binding its own port, under plain ``reloadkit run --``
    #: (no -b, no --fd 3: bind adoption holds what it binds), and its label
    plain: Callable[[int], list[str]] | None = None
    plain_label: str = ""

    @property
    def root(self) -> Path:
        return APPS_DIR / self.source


def _fastapi_port(port: int) -> list[str]:
    return [script("uvicorn"), "shop.main:app", "--host", "127.0.0.1", "--port", str(port)]


def _django_port(port: int) -> list[str]:
    return [script("gunicorn"), "-b", f"127.0.0.1:{port}", "mysite.wsgi"]


def _flask_port(port: int) -> list[str]:
    return [script("flask"), "--app", "tracker", "run", "--debug", "--no-reload", "--port", str(port)]


APPS: list[RealApp] = [
    RealApp(
        "fastapi", "FastAPI + pydantic + SQLAlchemy (40 tables, 40 models, 80 routes)", "fastapi",
        "shop/version.py", ("shop",),
        "import shop.main\nfrom shop.db import Base, engine\nBase.metadata.create_all(engine)\n",
        [script("uvicorn"), "shop.main:app", "--fd", "3"], _fastapi_port,
        lambda port: [*_fastapi_port(port), "--reload"], "uvicorn --reload",
        "uvicorn (h11); under reloadkit `uvicorn shop.main:app --fd 3`",
        plain=_fastapi_port, plain_label="reloadkit run -- uvicorn --port",
    ),
    RealApp(
        "django", "Django (own app, 11 models, admin on, templates)", "django",
        "library/version.py", ("mysite", "library"),
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\nimport mysite.wsgi\n"
        "from django.urls import get_resolver\nget_resolver().url_patterns\n",
        [script("gunicorn"), "mysite.wsgi"], _django_port,
        lambda port: [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}"], "manage.py runserver",
        "gunicorn (sync, 1 worker): runserver binds its own port and cannot take a socket, gunicorn adopts"
        " LISTEN_FDS and is Django's usual WSGI server",
        migrate=[PYTHON, "manage.py", "migrate", "--no-input"],
        plain=lambda port: [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}"],
        plain_label="reloadkit run -- manage.py runserver",
    ),
    RealApp(
        "flask", "Flask + Flask-SQLAlchemy (11 tables, 5 blueprints, templates)", "flask",
        "tracker/version.py", ("tracker",),
        "import tracker\ntracker.create_app()\n",
        [script("flask"), "--app", "tracker", "run", "--debug"], _flask_port,
        lambda port: [script("flask"), "--app", "tracker", "run", "--debug", "--port", str(port)],
        "flask run --debug (stat)",
        "`flask run --debug` (werkzeug); under reloadkit it serves WERKZEUG_SERVER_FD, FLASK_RUN_RELOAD=false",
        framework_variants=(("-watchdog", "flask run --debug, watchdog installed", {}),),
        framework_env={"PYTHONPATH": str(APPS_DIR / "_hide_watchdog")},
    ),
]


@dataclass(frozen=True)
class AppTool:
    key: str
    label: str
    launch: Callable[[int], Launch]
    reloadkit: bool = False


@functools.cache
def reloadkit_options() -> frozenset[str]:
    """The long options of this checkout's ``reloadkit run`` (the warm mode may or may not exist)."""
    env = {**os.environ, **reloadkit_env()}
    result = subprocess.run(
        [PYTHON, "-m", "reloadkit", "run", "--help"], env=env, capture_output=True, text=True, timeout=60, cwd="/",
    )
    return frozenset(re.findall(r"(--[a-z][a-z-]+)", result.stdout))


def reloadkit_modes() -> list[tuple[str, str, list[str]]]:
    """(key suffix, label, options) for each reloadkit mode this checkout has.

    With a warm mode every row names its flags (``--no-warm`` or ``--warm``), whatever the
    default is.
    """
    options = reloadkit_options()
    if "--warm" not in options:
        return [("", "reloadkit", []), ("-overlap", "reloadkit --overlap", ["--overlap"])]
    return [
        ("", "reloadkit --no-warm", ["--no-warm"]),
        ("-overlap", "reloadkit --no-warm --overlap", ["--no-warm", "--overlap"]),
        ("-warm", "reloadkit --warm", ["--warm"]),
        ("-warm-overlap", "reloadkit --warm --overlap", ["--warm", "--overlap"]),
    ]


def tools_for(app: RealApp) -> list[AppTool]:
    def framework(env: dict[str, str]) -> Callable[[int], Launch]:
        return lambda port: Launch(app.framework(port), env)

    def watchfiles(port: int) -> Launch:
        command = " ".join(app.port_server(port))
        return Launch([script("watchfiles"), "--filter", "python", "--target-type", "command", command, "."], {})

    def under_reloadkit(options: list[str]) -> Callable[[int], Launch]:
        def launch(port: int) -> Launch:
            argv = [PYTHON, "-m", "reloadkit", "run", "-b", f"127.0.0.1:{port}", *options, "--", *app.fd_server]
            return Launch(argv, reloadkit_env())

        return launch

    tools = [AppTool("framework", app.framework_label, framework(app.framework_env))]
    tools += [AppTool(f"framework{suffix}", label, framework(env)) for suffix, label, env in app.framework_variants]
    tools.append(AppTool("watchfiles", "watchfiles CLI", watchfiles))
    for suffix, label, options in reloadkit_modes():
        tools.append(AppTool(f"reloadkit{suffix}", label, under_reloadkit(options), reloadkit=True))
    plain = app.plain
    if plain is not None and "--no-adopt" in reloadkit_options():
        def plain_launch(port: int) -> Launch:
            return Launch([PYTHON, "-m", "reloadkit", "run", "--", *plain(port)], reloadkit_env())

        tools.append(AppTool("reloadkit-plain", app.plain_label, plain_launch, reloadkit=True))
    return tools


def copy_project(app: RealApp, destination: Path) -> Path:
    """A fresh copy of the app's source tree (no bytecode, no database)."""
    shutil.copytree(app.root, destination, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3*"))
    return destination


def by_keys(keys: list[str] | None) -> list[RealApp]:
    if not keys:
        return list(APPS)
    known = {app.key: app for app in APPS}
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise SystemExit(f"unknown app(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[key] for key in keys]
