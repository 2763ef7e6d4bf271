"""One option table, five faces: each option reaches the same Config field, with the same
value, from the command line, ``[tool.reloadkit]``, ``run_with_reloader``, ``run_simple`` and
(for the options that declare one) its ``RELOADKIT_*`` variable.

The faces are derived from :data:`reloadkit.config.options.OPTIONS`; these tests take each
entry in turn, so an option that one face cannot reach fails here by its name. The Python
faces are called for real up to the supervisor's start: ``supervise`` is replaced to catch
the Config it would run (tests/integration/test_library_options.py runs them whole).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import signal
from pathlib import Path

import pytest

import reloadkit
from reloadkit import reloader, wsgi
from reloadkit.cli import _build_parser, _run_parser, parse_args
from reloadkit.config import pyproject
from reloadkit.config.options import (
    OPTIONS,
    Flag,
    Level,
    Number,
    Option,
    Poll,
    RunOptions,
    Signal,
    Strings,
    Text,
    from_environment,
    from_keywords,
)
from reloadkit.config.settings import Config
from reloadkit.errors import ConfigError
from reloadkit.supervisor import loop

pytestmark = pytest.mark.timeout(60)

#: A valid value of a repeatable option, by metavar (PATH is the test's directory).
_ITEM = {"SPEC": "127.0.0.1:0", "GLOB": "*.txt", "LIST": "py"}


def _sample(option: Option, directory: Path) -> object:
    """A value that is not the option's default, as a Python caller passes it."""
    kind = option.kind
    if option.example is not None:
        return option.example
    if isinstance(kind, Flag):
        return not option.default
    if isinstance(kind, Level):
        return 1
    if isinstance(kind, Number):
        return 7 if kind.type is int else 2.5
    if isinstance(kind, Poll):
        return 0.5
    if isinstance(kind, Signal):
        return "INT"
    if isinstance(kind, Text):
        return str(directory) if option.metavar == "PATH" else "sample"
    assert isinstance(kind, Strings), f"add a sample for {option.name}'s kind {type(kind).__name__}"
    return [str(directory) if option.metavar == "PATH" else _ITEM[str(option.metavar)]]


def _argv(option: Option, value: object) -> list[str]:
    """The same value on the command line."""
    if isinstance(option.kind, Flag):
        flags = option.flags if value else option.off
        assert flags, f"{option.name}={value!r} cannot be said on the command line"
        return [flags[-1]]
    if isinstance(option.kind, Level):
        return [option.flags[-1] if value == 1 else option.off[-1]]
    items = value if isinstance(value, list) else [value]
    return [f"{option.flags[-1]}={item}" for item in items]


def _toml(argv: list[str]) -> str:
    """The same value in ``[tool.reloadkit]``: the key of the long flag."""
    flag, _, text = argv[0].partition("=")
    key = flag.lstrip("-")
    if not text:
        return f"{key} = true"
    values = [arg.partition("=")[2] for arg in argv]
    as_toml = [v if v.replace(".", "", 1).isdigit() else json.dumps(v) for v in values]
    return f"{key} = [{', '.join(as_toml)}]" if len(argv) > 1 or key in _REPEATABLE else f"{key} = {as_toml[0]}"


_REPEATABLE = {option.flags[-1].lstrip("-") for option in OPTIONS if isinstance(option.kind, Strings)}


def _env_text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@pytest.fixture
def caught(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    """The Configs the Python faces would supervise."""
    for name in [name for name in os.environ if name.startswith(("RELOADKIT_", "LISTEN_"))]:
        monkeypatch.delenv(name)
    configs: list[Config] = []

    def supervise(config: Config, **_how: object) -> int:  # restart_protocol=True from the library
        configs.append(config)
        return 0

    monkeypatch.setattr(loop, "supervise", supervise)
    return configs


def _from_python(face: str, option: Option, value: object, caught: list[Config]) -> Config:
    keywords: dict[str, object] = {option.name: value}
    with pytest.raises(SystemExit):
        if face == "run_with_reloader":
            reloadkit.run_with_reloader(lambda: None, **keywords)  # type: ignore[arg-type]
        else:
            reloadkit.run_simple("127.0.0.1", 0, lambda environ, start_response: [], **keywords)  # type: ignore[arg-type]
    return caught.pop()


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.name)
def test_every_face_reaches_every_option(option: Option, tmp_path: Path, caught: list[Config]) -> None:
    value = _sample(option, tmp_path)
    argv = _argv(option, value)
    field = option.config_field
    from_cli = getattr(parse_args(["run", *argv, "--", "x"], environ={}, cwd=str(tmp_path)), field)
    assert from_cli != option.default, f"{argv} did not change {field}"

    (tmp_path / "pyproject.toml").write_text(f"[tool.reloadkit]\n{_toml(argv)}\n")
    from_file = getattr(parse_args(["run", "--", "x"], environ={}, cwd=str(tmp_path)), field)
    (tmp_path / "pyproject.toml").unlink()
    assert from_file == from_cli, f"[tool.reloadkit] {_toml(argv)}"

    for face in ("run_with_reloader", "run_simple"):
        from_python = getattr(_from_python(face, option, value, caught), field)
        assert from_python == from_cli, f"{face}({option.name}={value!r})"

    if option.env is not None:
        from_env = getattr(parse_args(["run", "--", "x"], environ={option.env: _env_text(value)}, cwd=str(tmp_path)), field)
        assert from_env == from_cli, f"{option.env}={_env_text(value)}"


def test_the_table_is_the_typed_dict_and_the_parser() -> None:
    assert [option.name for option in OPTIONS] == list(RunOptions.__annotations__)
    run = _run_parser(_build_parser())
    by_flag = {flag: action for action in run._actions for flag in action.option_strings}
    for option in OPTIONS:
        assert option.all_flags, f"{option.name} has no command-line flag"
        for flag in option.all_flags:
            assert by_flag[flag].dest == option.name
        assert option.config_field in Config.__dataclass_fields__, f"{option.name}: no Config field {option.config_field}"
        assert option.group in ("sockets", "watching", "children", "in the browser", "output")
    flags = [flag for option in OPTIONS for flag in option.all_flags]
    assert len(flags) == len(set(flags))
    options = pyproject.file_options(run)
    assert set(options) == {key for option in OPTIONS for key in option.file_keys}


def test_no_python_parameter_shadows_an_option() -> None:
    """run_simple's and run_with_reloader's own parameters are werkzeug's: an option declared
    there too would bypass the table."""
    names = {option.name for option in OPTIONS}
    for function in (reloader.run_with_reloader, wsgi.run_simple):
        parameters = inspect.signature(function).parameters
        assert not names & set(parameters), function.__name__
        assert parameters["options"].kind is inspect.Parameter.VAR_KEYWORD


def test_variables_do_not_collide_with_the_childs_protocol() -> None:
    """The supervisor sets some RELOADKIT_* names for its child; none may be an option's."""
    ours = {option.env for option in OPTIONS if option.env}
    assert ours.isdisjoint({"RELOADKIT_PID", "RELOADKIT_IMPORTS", "RELOADKIT_GENERATION", "RELOADKIT_WATCH",
                            "RELOADKIT_LIVERELOAD_URL", "RELOADKIT_CHANGED", "RELOADKIT_TREE"})


def test_keywords_none_leaves_the_option_unset() -> None:
    assert from_keywords({"poll": None, "overlap": None, "backlog": None}) == {}
    assert from_keywords({"poll": True, "stop_signal": 2, "watch": "src", "ext": ["py,txt"]}) == {
        "poll": 1.0, "stop_signal": signal.SIGINT, "watch": ("src",), "ext": ("py", "txt")}
    assert from_keywords({"poll": False}) == {"poll": None}  # explicitly off: beats RELOADKIT_POLL


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"wram": True}, TypeError, r"run_with_reloader\(\) got an unexpected keyword argument 'wram'"),
        ({"warm": "yes"}, ConfigError, r"warm: expected True or False, not 'yes'"),
        ({"debounce_ms": 2.5}, ConfigError, r"debounce_ms: expected an integer"),
        ({"stop_timeout": "5"}, ConfigError, r"stop_timeout: expected a number"),
        ({"watch": [1]}, ConfigError, r"watch: expected a string or a list of strings"),
        ({"stop_signal": 999}, ConfigError, r"unknown signal 999"),
        ({"poll": "fast"}, ConfigError, r"poll: expected True, False or a number"),
        ({"verbosity": True}, ConfigError, r"verbosity: expected an integer"),
    ],
)
def test_bad_keywords(keywords: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        from_keywords(keywords)


def test_environment_values() -> None:
    assert from_environment({"RELOADKIT_POLL": "0.5", "RELOADKIT_WARM": "off", "RELOADKIT_OVERLAP": ""}) == {
        "poll": 0.5, "warm": False}
    assert from_environment({"RELOADKIT_POLL": "off"}) == {}
    assert from_environment({"RELOADKIT_DEBOUNCE": "20", "RELOADKIT_LIVERELOAD_PORT": "35729"}) == {
        "debounce_ms": 20, "livereload_port": 35729}
    with pytest.raises(ConfigError, match=r"RELOADKIT_STRICT_ORDER='maybe' is neither true nor false"):
        from_environment({"RELOADKIT_STRICT_ORDER": "maybe"})
    with pytest.raises(ConfigError, match=r"RELOADKIT_STOP_TIMEOUT='soon' is not a number"):
        from_environment({"RELOADKIT_STOP_TIMEOUT": "soon"})


def test_keywords_beat_the_environment_which_beats_the_defaults(caught: list[Config], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELOADKIT_WARM", "0")
    monkeypatch.setenv("RELOADKIT_STOP_TIMEOUT", "9")
    with pytest.raises(SystemExit):
        reloadkit.run_with_reloader(lambda: None, warm=True)
    config = caught.pop()
    assert (config.warm, config.stop_timeout, config.imports) == (True, 9.0, True)
    with pytest.raises(SystemExit):
        reloadkit.run_with_reloader(lambda: None, imports=False, poll=False, reloader_type="stat", interval=0.25)
    config = caught.pop()
    assert (config.warm, config.imports, config.poll) == (False, False, None)  # poll=False beats reloader_type


def test_help_states_the_config_defaults() -> None:
    run = _run_parser(_build_parser())
    helps = {flag: action.help for action in run._actions for flag in action.option_strings}
    assert "(default 50)" in str(helps["--debounce"]) and "(default 5)" in str(helps["--stop-timeout"])
    assert all(isinstance(action, argparse.Action) and "{" not in str(action.help) for action in run._actions)


@pytest.mark.parametrize("option", [o for o in OPTIONS if isinstance(o.kind, Flag) and o.flags and o.off],
                         ids=lambda option: option.name)
def test_a_flag_set_false_in_the_file_is_its_opposite(option: Option, tmp_path: Path) -> None:
    """``warm = false`` is ``--no-warm`` (it used to leave the default, which is warm)."""
    for flags, value in ((option.flags, False), (option.off, True)):
        (tmp_path / "pyproject.toml").write_text(f"[tool.reloadkit]\n{flags[-1].lstrip('-')} = false\n")
        config = parse_args(["run", "--", "x"], environ={}, cwd=str(tmp_path))
        assert getattr(config, option.config_field) is value, f"{flags[-1].lstrip('-')} = false"


def test_every_keyword_is_in_the_library_page() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "library.rst").read_text(encoding="utf-8")
    missing = [option.name for option in OPTIONS if f"``{option.name}``" not in text]
    assert not missing, f"keywords missing from docs/library.rst's options table: {', '.join(missing)}"


@pytest.mark.parametrize("use_reloader", [True, False])
def test_run_simple_names_itself_for_a_misspelt_keyword(use_reloader: bool, caught: list[Config]) -> None:
    with pytest.raises(TypeError, match=r"run_simple\(\) got an unexpected keyword argument 'wram'"):
        reloadkit.run_simple("127.0.0.1", 0, lambda environ, start_response: [], use_reloader=use_reloader,
                             wram=True)  # type: ignore[call-arg]
    assert caught == []


def test_every_variable_is_in_the_usage_table_beside_its_option() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "usage.rst").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("``RELOADKIT_")]
    for option in OPTIONS:
        if option.env is not None:
            row = next((line for line in rows if line.startswith(f"``{option.env}``")), "")
            assert any(f"``{flag}``" in row for flag in option.all_flags), f"{option.env}: no row naming its option"
