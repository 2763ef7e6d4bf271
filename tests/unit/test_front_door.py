"""The README's set-up lines and what CI runs: ``dev.py`` and ``.ci/run`` must not drift apart."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_dev() -> types.ModuleType:
    """The repository's own script, loaded by path: putting the repository on sys.path would
    make the checkout's reloadkit importable too, and the tests test the installed one."""
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dev"] = module  # dataclasses and annotations look their module up
    spec.loader.exec_module(module)
    return module


dev = _load_dev()


def test_the_readme_has_exactly_two_set_up_lines_demo_then_test() -> None:
    assert dev.setup_lines(ROOT / "README.rst") == ["python3 dev.py demo", "python3 dev.py test"]


def test_ci_runs_the_readme_test_line_read_from_the_readme() -> None:
    """CI executes whatever the README's second line says, so changing it changes CI."""
    script = (ROOT / ".ci" / "run").read_text()
    assert 'mapfile -t lines < <(python3 dev.py setup-lines)' in script
    assert script.rstrip().endswith('exec bash -c "${lines[1]}"')
    assert "export CI=true" in script


def test_setup_lines_come_from_the_section_and_nowhere_else(tmp_path: Path) -> None:
    readme = tmp_path / "README.rst"
    readme.write_text(
        "Title\n=====\n\nSet up\n------\n\nText::\n\n    first line\n\nMore::\n\n    second line\n\n"
        "Usage\n-----\n\n::\n\n    not a set-up line\n"
    )
    assert dev.setup_lines(readme) == ["first line", "second line"]


def test_setup_lines_without_the_section_is_an_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.rst"
    readme.write_text("Title\n=====\n")
    with pytest.raises(dev.DevError):
        dev.setup_lines(readme)


def test_plan_runs_present_pythons_and_every_check() -> None:
    envlist = ["py310", "py311", "py312", "py313", "watchdog-oldest", "lint", "type", "docs"]
    assert dev.plan_environments(["3.11"], envlist) == ["py311", "lint", "type", "docs"]
    assert dev.plan_environments(["3.10", "3.13"], envlist) == ["py310", "py313", "watchdog-oldest", "lint", "type", "docs"]
    assert dev.plan_environments(dev.SUPPORTED, envlist) == envlist


def test_the_plan_follows_tox_ini() -> None:
    envlist = dev.tox_envlist(ROOT / "tox.ini")
    assert {"py310", "py311", "py312", "py313", "lint", "type"} <= set(envlist)
    assert dev.plan_environments(dev.SUPPORTED, envlist) == envlist


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("", False), ("false", False)])
def test_ci_makes_a_missing_python_an_error(value: str, expected: bool) -> None:
    assert dev.strict({"CI": value}) is expected


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_a_failing_shim_on_path_loses_to_pyenv_s_real_interpreter(tmp_path: Path) -> None:
    """pyenv's shims answer for every version but fail for the ones not selected (issue #12)."""
    shims = tmp_path / "shims"
    _executable(shims / "python3.12", "#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    real = tmp_path / "pyenv" / "versions" / "3.12.1" / "bin" / "python3.12"
    real.parent.mkdir(parents=True)
    os.symlink(sys.executable, real)
    environ = {"PATH": str(shims), "PYENV_ROOT": str(tmp_path / "pyenv")}
    candidates = dev.candidate_paths("3.12", environ, str(tmp_path))
    assert candidates.index(str(shims / "python3.12")) < candidates.index(str(real))
    found = dev.find_pythons(environ, str(tmp_path), current="0.0", current_executable=sys.executable)
    assert found.get("3.12") == str(real)


def test_tox_path_puts_each_found_interpreter_first() -> None:
    path = dev.tox_path({"3.10": "/a/bin/python3.10", "3.12": "/b/bin/python3.12"}, {"PATH": "/usr/bin"})
    assert path.split(os.pathsep) == ["/a/bin", "/b/bin", "/usr/bin"]


def test_bad_usage_is_one_line_and_exit_2() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "dev.py"), "nonsense"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("usage: python3 dev.py")
