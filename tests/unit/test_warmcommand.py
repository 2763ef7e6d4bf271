"""warm.py's pure parts: which commands start warm and how, what stays warm, what changed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from reloadkit.cli import parse_args
from reloadkit.proc.warmplan import (
    LOOK_AHEAD_FOR,
    ColdOnlyError,
    Fingerprint,
    eligible,
    parent_environment,
    parse_module_lines,
    python_command,
    warm_unsupported,
)

pytestmark = pytest.mark.timeout(30)

ENV = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", os.defpath)}


def test_a_script_with_interpreter_options(tmp_path: Path) -> None:
    (tmp_path / "serve.py").write_text("")
    command = python_command([sys.executable, "-X", "utf8", "-Wignore", "-B", "serve.py", "a"], ENV, str(tmp_path))
    assert command.mode == "script"
    assert command.options == ("-X", "utf8", "-Wignore", "-B")
    assert command.file == str(tmp_path / "serve.py")
    assert command.argv == ("serve.py", "a")
    assert command.orig_argv == (sys.executable, "-X", "utf8", "-Wignore", "-B", "serve.py", "a")
    assert command.parent_argv()[:5] == [sys.executable, "-X", "utf8", "-Wignore", "-B"]
    assert command.parent_argv()[5] == "-c"


def test_module_and_code(tmp_path: Path) -> None:
    module = python_command(["python3", "-u", "-m", "pkg.sub", "--x"], ENV, str(tmp_path))
    assert (module.mode, module.target, module.argv, module.options) == ("-m", "pkg.sub", ("-m", "--x"), ("-u",))
    assert module.argv0 == "python3"
    attached = python_command([sys.executable, "-mpkg"], ENV, str(tmp_path))
    assert (attached.mode, attached.target, attached.argv) == ("-m", "pkg", ("-m",))
    code = python_command([sys.executable, "-c", "print(1)", "z"], ENV, str(tmp_path))
    assert (code.mode, code.target, code.argv) == ("-c", "print(1)", ("-c", "z"))


def test_a_console_script_runs_as_its_shebang_says(tmp_path: Path) -> None:
    tool = tmp_path / "tool"
    tool.write_text(f"#!{sys.executable} -I\nprint(1)\n")
    tool.chmod(0o755)
    command = python_command([str(tool), "serve"], ENV, str(tmp_path))
    assert command.interpreter == sys.executable
    assert command.options == ("-I",)
    assert command.argv == (str(tool), "serve")
    assert command.orig_argv == (sys.executable, "-I", str(tool), "serve")
    via_env = tmp_path / "tool2"
    via_env.write_text(f"#!/usr/bin/env {os.path.basename(sys.executable)}\n")
    via_env.chmod(0o755)
    command = python_command([str(via_env)], ENV, str(tmp_path))
    assert command.argv0 == os.path.basename(sys.executable)
    assert command.orig_argv == (os.path.basename(sys.executable), str(via_env))


@pytest.mark.parametrize(
    "argv",
    [
        ["sh", "-c", "python serve.py"],
        [sys.executable],
        [sys.executable, "-i", "serve.py"],
        [sys.executable, "-"],
        [sys.executable, "--version"],
        [sys.executable, "-Bc", "print(1)"],
        [sys.executable, "missing.py"],
        ["no-such-command-here"],
    ],
)
def test_what_runs_cold(tmp_path: Path, argv: list[str]) -> None:
    with pytest.raises(ColdOnlyError):
        python_command(argv, ENV, str(tmp_path))


def test_a_shell_script_runs_cold(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\nexec python serve.py\n")
    script.chmod(0o755)
    with pytest.raises(ColdOnlyError, match="not a Python"):
        python_command([str(script)], ENV, str(tmp_path))


def test_what_stays_warm(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert eligible("/usr/lib/python3.12/json/__init__.py", [root])
    assert not eligible(f"{root}/app/models.py", [root])
    assert eligible(f"{root}/.venv/lib/python3.12/site-packages/fastapi/__init__.py", [root])
    lines = ["json /usr/lib/python3.12/json/__init__.py", "bad", "x relative.py", f"app.views:app.urls {root}/app/views.py",
             f"app: {root}/app/__init__.py"]
    assert list(parse_module_lines(lines)) == [
        ("json", "/usr/lib/python3.12/json/__init__.py", None),
        ("app.views", f"{root}/app/views.py", "app.urls"),
        ("app", f"{root}/app/__init__.py", ""),
    ]


def test_the_fingerprint_sees_a_changed_module_a_new_package_and_the_project_files(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "site-packages"
    (site / "lib").mkdir(parents=True)
    module = site / "lib" / "__init__.py"
    module.write_text("X = 1\n")
    project = tmp_path / "project"
    project.mkdir()
    print_ = Fingerprint.take([str(module)], str(project), sys.executable)
    assert print_.changed() is None
    (site / "new-1.0.dist-info").mkdir()
    assert "installed packages changed" in (print_.changed() or "")
    print_ = Fingerprint.take([str(module)], str(project), sys.executable)
    module.write_text("X = 22\n")
    assert "a warm module changed" in (print_.changed() or "")
    print_ = Fingerprint.take([str(module)], str(project), sys.executable)
    (project / "requirements.txt").write_text("fastapi\n")
    assert print_.changed() == "requirements.txt changed"


def test_a_look_ahead_answers_for_the_start_that_follows_it_and_no_later(tmp_path: Path) -> None:
    """The files are looked at while a burst of changes settles; the start right after it
    takes that answer, a start later than LOOK_AHEAD_FOR looks again."""
    module = tmp_path / "lib" / "site-packages" / "lib.py"
    module.parent.mkdir(parents=True)
    module.write_text("X = 1\n")
    print_ = Fingerprint.take([str(module)], str(tmp_path), sys.executable)
    assert print_.changed_by(100.0) is None  # no look ahead: a look now
    print_.look_ahead(100.0)
    module.write_text("X = 22\n")
    assert print_.changed_by(100.0 + LOOK_AHEAD_FOR) is None  # the look ahead's answer
    assert "a warm module changed" in (print_.changed_by(100.0 + LOOK_AHEAD_FOR + 0.001) or "")
    assert "a warm module changed" in (print_.changed_by(99.0) or "")  # not a look ahead of this start
    print_.look_ahead(200.0)
    assert "a warm module changed" in (print_.changed_by(200.0) or "")


def test_per_generation_variables_are_not_the_parents() -> None:
    env = {"A": "1", "LISTEN_FDS": "1", "LISTEN_PID": "9", "RELOADKIT_GENERATION": "3", "RELOADKIT_CHANGED": "x"}
    assert parent_environment(env) == {"A": "1", "LISTEN_FDS": "1"}


def test_the_option() -> None:
    assert parse_args(["run", "--", "python", "x.py"], environ={}).warm is True  # the default
    assert parse_args(["run", "--", "python", "x.py"], environ={"RELOADKIT_WARM": "0"}).warm is False
    assert parse_args(["run", "--warm", "--", "python", "x.py"], environ={}).warm is True
    assert parse_args(["run", "--", "python", "x.py"], environ={"RELOADKIT_WARM": "1"}).warm is True
    assert parse_args(["run", "--no-warm", "--", "python", "x.py"], environ={"RELOADKIT_WARM": "1"}).warm is False


def test_warm_needs_a_child_subreaper_and_proc(tmp_path: Path) -> None:
    assert warm_unsupported(subreaper=True) is None  # Linux, where the suite runs
    reason = warm_unsupported(subreaper=False)
    assert reason is not None and "PR_SET_CHILD_SUBREAPER" in reason
    reason = warm_unsupported(subreaper=True, proc=str(tmp_path / "proc"))
    assert reason is not None and "proc" in reason
