"""[tool.reloadkit] in pyproject.toml: finding it, precedence, and the keys of every option."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

import pytest

from reloadkit.cli import _build_parser, _run_parser, parse_args
from reloadkit.config import pyproject
from reloadkit.config.settings import merge_settings
from reloadkit.errors import ConfigError

pytestmark = pytest.mark.timeout(30)


def _project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.reloadkit]\n{table}\n")
    return tmp_path


@pytest.mark.parametrize(
    ("file", "environment", "command_line", "expected"),
    [
        ({}, {}, {}, {}),
        ({"stop_timeout": 1.0}, {}, {}, {"stop_timeout": 1.0}),
        ({"stop_timeout": 1.0}, {"stop_timeout": 2.0}, {}, {"stop_timeout": 2.0}),
        ({"stop_timeout": 1.0}, {"stop_timeout": 2.0}, {"stop_timeout": 3.0}, {"stop_timeout": 3.0}),
        ({"stop_timeout": 1.0}, {}, {"stop_timeout": 3.0}, {"stop_timeout": 3.0}),
        ({}, {"stop_timeout": 2.0}, {"stop_timeout": 3.0}, {"stop_timeout": 3.0}),
        ({"poll": 1.0, "watch": ("a",)}, {"poll": 2.0}, {"watch": ("b",)}, {"poll": 2.0, "watch": ("b",)}),
        ({"binds": ("x",)}, {}, {}, {"binds": ("x",)}),
        ({"verbosity": -1}, {}, {"verbosity": 1}, {"verbosity": 1}),
    ],
)
def test_merge_settings_precedence(file: dict[str, object], environment: dict[str, object],
                                   command_line: dict[str, object], expected: dict[str, object]) -> None:
    assert merge_settings(file=file, environment=environment, command_line=command_line) == expected


@pytest.mark.parametrize(
    ("table", "env", "argv", "expected"),
    [
        ("", {}, [], 5.0),  # the default
        ("stop-timeout = 1", {}, [], 1.0),  # the file beats the default
        ("stop-timeout = 1", {"RELOADKIT_STOP_TIMEOUT": "2"}, [], 2.0),  # the environment beats the file
        ("stop-timeout = 1", {"RELOADKIT_STOP_TIMEOUT": "2"}, ["--stop-timeout", "3"], 3.0),  # the command line beats both
        ("stop_timeout = 1.5", {}, ["--stop-timeout", "3"], 3.0),
        ("", {"RELOADKIT_STOP_TIMEOUT": "2"}, ["--stop-timeout", "3"], 3.0),
    ],
)
def test_precedence_through_parse_args(tmp_path: Path, table: str, env: dict[str, str], argv: list[str], expected: float) -> None:
    _project(tmp_path, table)
    config = parse_args(["run", *argv, "--", "x"], environ=env, cwd=str(tmp_path))
    assert config.stop_timeout == expected


def test_repeatable_options_from_the_command_line_replace_the_file(tmp_path: Path) -> None:
    _project(tmp_path, 'bind = ["127.0.0.1:0", "unix:x.sock"]\nwatch = ["src"]\nquiet = true')
    (tmp_path / "src").mkdir()
    config = parse_args(["run", "--", "x"], environ={}, cwd=str(tmp_path))
    assert [spec.kind for spec in config.binds] == ["tcp", "unix"]
    assert config.watch_roots == (str(tmp_path / "src"),)
    assert config.verbosity == -1
    config = parse_args(["run", "-b", "[::1]:0", "-v", "--", "x"], environ={}, cwd=str(tmp_path))
    assert [spec.host for spec in config.binds] == ["::1"]
    assert config.verbosity == 1  # -v on the command line overrides quiet in the file


def test_the_command_comes_from_the_file_without_dashes(tmp_path: Path) -> None:
    _project(tmp_path, 'command = ["python", "serve.py", "--port=0"]\nstop-signal = "INT"')
    sub = tmp_path / "deep" / "er"
    sub.mkdir(parents=True)
    config = parse_args(["run"], environ={}, cwd=str(sub))
    assert config.command == ("python", "serve.py", "--port=0")
    assert config.stop_signal == signal.SIGINT
    assert config.config_file == str(tmp_path / "pyproject.toml")
    assert parse_args(["run", "--", "other"], environ={}, cwd=str(sub)).command == ("other",)


def test_paths_in_the_file_are_relative_to_it(tmp_path: Path) -> None:
    _project(tmp_path, 'watch = ["src", "/abs"]')
    sub = tmp_path / "sub"
    sub.mkdir()
    config = parse_args(["run", "--", "x"], environ={}, cwd=str(sub))
    assert config.watch == (str(tmp_path / "src"), "/abs")


def test_the_nearest_pyproject_ends_the_search(tmp_path: Path) -> None:
    _project(tmp_path, "stop-timeout = 1")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text("[project]\nname = 'inner'\n")
    assert pyproject.find_pyproject(str(inner)) == str(inner / "pyproject.toml")
    assert pyproject.load(str(inner)) is None
    config = parse_args(["run", "--", "x"], environ={}, cwd=str(inner))
    assert config.stop_timeout == 5.0 and config.config_file is None


def test_no_command_anywhere_is_one_line(tmp_path: Path) -> None:
    _project(tmp_path, "quiet = true")
    with pytest.raises(ConfigError, match=r"missing -- before the command.*tool\.reloadkit"):
        parse_args(["run"], environ={}, cwd=str(tmp_path))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("bogus = 1", r"\[tool.reloadkit\] bogus: unknown key; expected one of: .*stop-timeout"),
        ('stop-timeout = "3"', r"stop-timeout: expected a number, not '3' \(a string\)"),
        ("debounce = 1.5", r"debounce: expected an integer, not 1.5"),
        ("overlap = 1", r"overlap: expected true or false, not 1 \(a number\)"),
        ("bind = [1]", r"bind: expected a list of strings, not 1"),
        ('command = "python serve.py"', r"command: expected a non-empty list of strings"),
        ("command = []", r"command: expected a non-empty list of strings"),
        ('poll = "fast"', r"poll: expected true, false or a number"),
        ('stop-signal = "NOPE"', r"stop-signal: unknown signal 'NOPE'"),
        ("backlog = 0", r"backlog: --backlog must be at least 1"),
        ('bind = ["999999"]', r"bind: "),
        ("quiet = true\nverbose = true", r"not allowed with argument"),
        ("stop-timeout = 1\nstop-timeout = 2", r"not valid TOML"),
    ],
)
def test_bad_values_name_the_file_and_the_key(tmp_path: Path, table: str, message: str) -> None:
    _project(tmp_path, table)
    with pytest.raises(ConfigError, match=message) as info:
        parse_args(["run", "--", "x"], environ={}, cwd=str(tmp_path))
    text = str(info.value)
    assert text.startswith(str(tmp_path / "pyproject.toml") + ": ")
    assert "\n" not in text


#: A valid value for each kind of option value (by metavar); a new kind of option adds one here.
_SAMPLES: dict[str, object] = {
    "SPEC": "127.0.0.1:0", "PATH": "(the test's directory)", "GLOB": "*.txt", "LIST": "py", "SIG": "INT",
    "N": 5, "MS": 10, "SECONDS": 2.5, "PORT": 1, "URL": "http://127.0.0.1:1/", "URLPATH": "/healthz",
}


def _run_actions() -> list[argparse.Action]:
    run = _run_parser(_build_parser())
    return [a for a in run._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def test_every_run_option_has_a_file_key() -> None:
    options = pyproject.file_options(_run_parser(_build_parser()))
    for action in _run_actions():
        key = max(action.option_strings, key=len).lstrip("-")
        assert key in options, f"{action.option_strings} has no key in [tool.reloadkit]"
        assert options[key].dest == action.dest


@pytest.mark.parametrize("action", _run_actions(), ids=lambda a: max(a.option_strings, key=len))
def test_each_key_means_what_its_option_means(tmp_path: Path, action: argparse.Action) -> None:
    """The same Config from ``key = value`` in the file as from ``--key value`` on the command line."""
    option = max(action.option_strings, key=len)
    key = option.lstrip("-")
    if action.nargs == 0 or action.nargs == "?":
        file_value, argv = "true", [option]
    else:
        assert action.metavar in _SAMPLES, f"add a sample value for {option}'s {action.metavar}"
        sample = str(tmp_path) if action.metavar == "PATH" else _SAMPLES[str(action.metavar)]

        file_value = json.dumps([sample] if isinstance(action, argparse._AppendAction) else sample)
        argv = [f"{option}={sample}"]
    _project(tmp_path, f"{key} = {file_value}")
    from_file = parse_args(["run", "--", "x"], environ={}, cwd=str(tmp_path))
    (tmp_path / "pyproject.toml").unlink()
    from_cli = parse_args(["run", *argv, "--", "x"], environ={}, cwd=str(tmp_path))
    assert from_file.config_file is not None
    assert from_file == type(from_file)(**{**from_cli.__dict__, "config_file": from_file.config_file})


def test_the_documented_example_is_accepted(tmp_path: Path) -> None:
    """docs/configuration.rst's full example: valid TOML that reloadkit takes as it stands."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.rst").read_text()
    block = text[text.index("A full example::") : text.index("With that file")].splitlines()[1:]
    (tmp_path / "pyproject.toml").write_text("\n".join(line[4:] for line in block))
    for name in ("src", "templates", "run"):
        (tmp_path / name).mkdir()
    (tmp_path / ".env").write_text("A=1\n")
    config = parse_args(["run"], environ={}, cwd=str(tmp_path))
    assert config.command == ("gunicorn", "app:app")
    assert config.watch_roots == (str(tmp_path / "src"), str(tmp_path / "templates"))
    assert config.env_files == (str(tmp_path / ".env"), str(tmp_path / ".env.local"))
