"""The tools under test, each in its recommended setup, and how to start them."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


@dataclass(frozen=True)
class Launch:
    """Where and how a tool runs: the command and environment additions."""

    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Tool:
    key: str
    label: str
    app: str  # "wsgi" (app.py) or "asgi" (asgi_app.py)
    setup: str
    launch: Callable[[int], Launch]
    problem: Callable[[], str | None]  # why it cannot run here, or None
    baseline: str = ""  # the app alone, for start-up: "wsgi", "asgi" or "wsgi-reloadkit" (default: app)

    @property
    def supervisor_runs_app_module(self) -> bool:
        """werkzeug's reloader process runs app.py itself (its RSS includes the app)."""
        return self.key.startswith("werkzeug")


def _script(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


def baseline_launch(kind: str) -> Callable[[int], Launch]:
    """The app on its own, no reloader, as each tool's child runs it."""

    def make(port: int) -> Launch:
        if kind == "asgi":
            return Launch([PYTHON, "-m", "uvicorn", "asgi_app:app", "--host", "127.0.0.1", "--port", str(port)], {})
        if kind == "wsgi-reloadkit":
            return Launch([PYTHON, "app.py", "reloadkit"], reloadkit_env())
        return Launch([PYTHON, "app.py"], {})

    return make


def _missing(module: str) -> Callable[[], str | None]:
    def check() -> str | None:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[bench]')"
        return None

    return check


def reloadkit_env() -> dict[str, str]:
    """Run reloadkit from this checkout, whatever copy is installed: the figures are this
    tree's (an editable install of another worktree was measured instead, before)."""
    return {"PYTHONPATH": str(REPO)}


def _reloadkit_problem() -> str | None:
    env = {**os.environ, **reloadkit_env()}
    result = subprocess.run(
        [PYTHON, "-c", "import reloadkit.cli"], env=env, capture_output=True, text=True, timeout=60,
        cwd="/",
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        return f"reloadkit core not importable ({last})"
    return None


def _reloadkit(overlap: bool, *app_args: str, warm: bool | None = None) -> Callable[[int], Launch]:
    """``warm``: True ``--warm``, False ``--no-warm`` (when this checkout has it), None the default."""

    def launch(port: int) -> Launch:
        argv = [PYTHON, "-m", "reloadkit", "run", "-b", f"127.0.0.1:{port}"]
        if warm:
            argv.append("--warm")
        elif warm is False and _reloadkit_has("--no-warm"):
            argv.append("--no-warm")  # warm is the default: the cold rows say so
        if overlap:
            argv.append("--overlap")
        return Launch([*argv, "--", PYTHON, "app.py", *app_args], reloadkit_env())

    return launch


def _werkzeug(kind: str) -> Callable[[int], Launch]:
    def launch(port: int) -> Launch:
        return Launch([PYTHON, "app.py", kind], {})

    return launch


def _werkzeug_watchdog_problem() -> str | None:
    return _missing("werkzeug")() or _missing("watchdog")()


def _hupper(port: int) -> Launch:
    return Launch([_script("hupper"), "-m", "app"], {})


def _uvicorn(port: int) -> Launch:
    argv = [_script("uvicorn"), "asgi_app:app", "--reload", "--host", "127.0.0.1", "--port", str(port)]
    return Launch(argv, {})


def _watchfiles(port: int) -> Launch:
    argv = [_script("watchfiles"), "--filter", "python", "--target-type", "command", f"{PYTHON} app.py", "."]
    return Launch(argv, {})


NODE_PREFIX = REPO / "bench" / ".node"  # git ignores it
NODEMON = NODE_PREFIX / "node_modules" / ".bin" / "nodemon"


def _nodemon(port: int) -> Launch:
    # nodemon's own recipe for Python: the script's extension (.py) is what it watches
    return Launch([str(NODEMON), "--exec", PYTHON, "app.py"], {})


def _nodemon_problem() -> str | None:
    """Install nodemon into bench/.node with npm the first time (never committed)."""
    if NODEMON.exists():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed (nodemon is an npm package)"
    result = subprocess.run(
        [npm, "install", "--prefix", str(NODE_PREFIX), "--no-audit", "--no-fund", "nodemon"],
        capture_output=True, text=True, timeout=600,
    )
    if result.returncode != 0 or not NODEMON.exists():
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        return f"npm install nodemon failed: {last}"
    return None


def nodemon_version() -> str | None:
    package = NODE_PREFIX / "node_modules" / "nodemon" / "package.json"
    try:
        import json

        return str(json.loads(package.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _hupper_monitor() -> str:
    return "watchdog" if importlib.util.find_spec("watchdog") else "polling"


def _uvicorn_detail() -> str:
    backend = "watchfiles" if importlib.util.find_spec("watchfiles") else "stat"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"reload backend {backend}, HTTP {http}"


TOOLS: list[Tool] = [
    Tool(
        "reloadkit", "reloadkit", "wsgi",
        "reloadkit run -b 127.0.0.1:PORT -- python app.py (app serves fd 3, sends READY=1)",
        _reloadkit(False), _reloadkit_problem,
    ),
    Tool(
        "reloadkit-overlap", "reloadkit --overlap", "wsgi",
        "reloadkit run --overlap -b 127.0.0.1:PORT -- python app.py",
        _reloadkit(True), _reloadkit_problem,
    ),
    Tool(
        "reloadkit-overlap-own", "reloadkit --overlap, own server", "wsgi",
        "reloadkit run --overlap -b 127.0.0.1:PORT -- python app.py reloadkit (reloadkit.run_simple serves)",
        _reloadkit(True, "reloadkit"), _reloadkit_problem, baseline="wsgi-reloadkit",
    ),
    Tool(
        "werkzeug-stat", "werkzeug (stat)", "wsgi",
        "run_simple(..., use_reloader=True, reloader_type='stat')",
        _werkzeug("stat"), _missing("werkzeug"),
    ),
    Tool(
        "werkzeug-watchdog", "werkzeug (watchdog)", "wsgi",
        "run_simple(..., use_reloader=True, reloader_type='watchdog')",
        _werkzeug("watchdog"), _werkzeug_watchdog_problem,
    ),
    Tool("hupper", "hupper", "wsgi", f"hupper -m app (monitor: {_hupper_monitor()})", _hupper, _missing("hupper")),
    Tool(
        "uvicorn", "uvicorn --reload", "asgi",
        f"uvicorn asgi_app:app --reload ({_uvicorn_detail()})", _uvicorn, _missing("uvicorn"),
    ),
    Tool(
        "watchfiles", "watchfiles CLI", "wsgi",
        "watchfiles --filter python 'python app.py' .", _watchfiles, _missing("watchfiles"),
    ),
    Tool(
        "nodemon", "nodemon", "wsgi",
        "nodemon --exec python app.py (npm install --prefix bench/.node nodemon; the app binds its port)",
        _nodemon, _nodemon_problem,
    ),
]


@functools.cache
def _reloadkit_has(option: str) -> bool:
    env = {**os.environ, **reloadkit_env()}
    result = subprocess.run(
        [PYTHON, "-m", "reloadkit", "run", "--help"], env=env, capture_output=True, text=True, timeout=60, cwd="/",
    )
    return option in result.stdout.split()


def _warm_tools() -> list[Tool]:
    """reloadkit's warm mode, when this checkout has it (after the cold rows)."""
    if not _reloadkit_has("--warm"):
        return []
    return [
        Tool(
            "reloadkit-warm", "reloadkit --warm", "wsgi",
            "reloadkit run --warm -b 127.0.0.1:PORT -- python app.py", _reloadkit(False, warm=True),
            _reloadkit_problem,
        ),
        Tool(
            "reloadkit-warm-overlap", "reloadkit --warm --overlap", "wsgi",
            "reloadkit run --warm --overlap -b 127.0.0.1:PORT -- python app.py", _reloadkit(True, warm=True),
            _reloadkit_problem,
        ),
    ]


def _cold(tool: Tool) -> Tool:
    """The row of a default-mode tool, made explicit: ``--no-warm``."""
    overlap = "overlap" in tool.key
    return replace(
        tool, label=tool.label.replace("reloadkit", "reloadkit --no-warm", 1),
        setup=tool.setup.replace("reloadkit run", "reloadkit run --no-warm", 1), launch=_reloadkit(overlap, warm=False),
    )


def all_tools() -> list[Tool]:
    """With a warm mode in this checkout, the first two reloadkit rows say --no-warm, and two warm rows follow."""
    warm = _warm_tools()
    if not warm:
        return list(TOOLS)
    return [_cold(TOOLS[0]), _cold(TOOLS[1]), TOOLS[2], *warm, *TOOLS[3:]]


def by_keys(keys: list[str] | None) -> list[Tool]:
    tools = all_tools()
    if not keys:
        return tools
    known = {tool.key: tool for tool in tools}
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise SystemExit(f"unknown tool(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[key] for key in keys]


def versions() -> dict[str, str]:
    """Versions of the tools and the libraries that shape their behaviour."""
    found: dict[str, str] = {}
    for name in ("werkzeug", "hupper", "uvicorn", "watchfiles", "watchdog", "h11", "httptools", "psutil"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    if nodemon := nodemon_version():
        found["nodemon"] = nodemon
    env = {**os.environ, **reloadkit_env()}
    result = subprocess.run(
        [PYTHON, "-c", "import os, reloadkit; print(getattr(reloadkit, '__version__', '?'), os.path.dirname(os.path.dirname(reloadkit.__file__)))"],
        env=env, capture_output=True, text=True, timeout=60, cwd="/",
    )
    found["reloadkit"] = _described(*result.stdout.split()) if result.returncode == 0 else "not importable"
    return found


def _described(version: str = "?", tree: str = "?") -> str:
    """reloadkit's version and where it ran from: the checkout's commit, and whether its
    code had changes not committed (a figure is that code's only)."""
    where = "this checkout" if Path(tree).resolve() == REPO else tree
    commit = subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=60)
    if commit.returncode != 0:
        return f"{version} ({where})"
    dirty = subprocess.run(["git", "-C", tree, "status", "--porcelain", "--", "reloadkit"], capture_output=True, text=True, timeout=60)
    changed = " with uncommitted changes" if dirty.stdout.strip() else ""
    return f"{version} ({where} at {commit.stdout.strip()}{changed})"
