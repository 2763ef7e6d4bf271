"""The error page's summary of a real traceback: the exception and the user's frames first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reloadkit.browser.errorpage import Failure, render_html, render_json
from reloadkit.browser.tracebacks import is_user_file, load_failure, summarize

pytestmark = pytest.mark.timeout(60)

LOADER = """
import importlib


def load(name, depth=12):
    if depth:
        return load(name, depth - 1)  # a framework's many frames
    return importlib.import_module(name)
"""


def _crash(tmp_path: Path, models: str, module: str = "home.views") -> list[str]:
    """Run a framework (in a site-packages directory) that imports the project's module."""
    site = tmp_path / "venv" / "lib" / "site-packages"
    (site / "fw").mkdir(parents=True, exist_ok=True)
    (site / "fw" / "__init__.py").write_text(LOADER)
    project = tmp_path / "project"
    (project / "home").mkdir(parents=True, exist_ok=True)
    (project / "home" / "__init__.py").write_text("")
    (project / "home" / "models.py").write_text(models)
    (project / "home" / "views.py").write_text("from home.models import Page\n")
    done = subprocess.run([sys.executable, "-c", f"import fw; fw.load({module!r})"], cwd=project,
                          env={"PYTHONPATH": f"{site}:{project}", "PYTHONDONTWRITEBYTECODE": "1"}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    return done.stderr.splitlines()


def test_a_syntax_error_in_a_model_comes_first(tmp_path: Path) -> None:
    stderr = _crash(tmp_path, "class Page:\n    def broken(:\n        pass\n")
    project = tmp_path / "project"
    summary = summarize(stderr, [str(project)], str(project))
    assert summary is not None
    assert summary.exception.startswith("SyntaxError")
    first = summary.frames[0]
    assert first.file.endswith("models.py") and first.line == 2 and first.name is None
    assert any("def broken(:" in line for line in first.source)
    assert [frame.file.endswith("views.py") for frame in summary.frames[1:]] == [True]
    failure = Failure.build(["gunicorn", "x"], 3, [], stderr, "down-1", str(project), roots=[str(project)])
    page = render_html(failure).decode()
    assert page.index("SyntaxError") < page.index("home/models.py, line 2") < page.index('<pre id="stderr">')
    assert b'"exception": "SyntaxError' in render_json(failure)
    cut = stderr[stderr.index(next(line for line in stderr if "<frozen" in line)):]  # the tail kept of a long one
    tail = summarize(cut, [str(project)], str(project))
    assert tail is not None and tail.frames[0] == first


def test_an_exception_raised_at_import_names_the_innermost_user_frame(tmp_path: Path) -> None:
    stderr = _crash(tmp_path, "def settings():\n    return {}['DEBUG']\n\n\nsettings()\n")
    project = tmp_path / "project"
    summary = summarize(stderr, [str(project)], str(project))
    assert summary is not None and summary.exception == "KeyError: 'DEBUG'"
    assert [(Path(frame.file).name, frame.line, frame.name) for frame in summary.frames] == [
        ("models.py", 2, "settings"), ("models.py", 5, "<module>"), ("views.py", 1, "<module>")]


def test_no_traceback_or_no_user_frame_means_no_summary(tmp_path: Path) -> None:
    assert summarize(["Error: port 8000 is in use"], [], str(tmp_path)) is None
    stderr = _crash(tmp_path, "Page = 1\n", module="home.missing")  # the framework's frames only
    assert stderr[0].startswith("Traceback") and summarize(stderr, [str(tmp_path / "project")], str(tmp_path)) is None
    assert not is_user_file("<frozen importlib._bootstrap>", [], str(tmp_path))
    assert not is_user_file(str(tmp_path / "venv/lib/site-packages/fw/__init__.py"), [], str(tmp_path))
    assert not is_user_file(subprocess.__file__, [], str(tmp_path))
    assert is_user_file("home/models.py", [str(tmp_path)], str(tmp_path))
    assert not is_user_file("/elsewhere/models.py", [str(tmp_path)], str(tmp_path))
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert not is_user_file(str(tmp_path / ".venv" / "bin" / "uvicorn"), [str(tmp_path)], str(tmp_path))


def test_a_load_failure_is_a_compile_error_or_an_import_error_in_a_changed_file(tmp_path: Path) -> None:
    project = tmp_path / "project"
    compiled = _crash(tmp_path, "class Page:\n    def broken(:\n        pass\n")
    reason = load_failure(compiled, [], [str(project)], str(project))
    assert reason is not None and reason.startswith("SyntaxError") and "home/models.py, line 2" in reason
    imported = _crash(tmp_path, "from home.nowhere import thing\n")
    assert load_failure(imported, [], [str(project)], str(project)) is None  # an app may log those
    changed = [str(project / "home" / "models.py")]
    assert (load_failure(imported, changed, [str(project)], str(project)) or "").startswith("ModuleNotFoundError")
    raised = _crash(tmp_path, "{}['DEBUG']\n")
    assert load_failure(raised, changed, [str(project)], str(project)) is None  # a request's own error
