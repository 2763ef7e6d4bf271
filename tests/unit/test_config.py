"""Command line to Config: precedence, defaults, and one-line errors."""

from __future__ import annotations

import signal

import pytest

from reloadkit.cli import parse_args
from reloadkit.config.options import from_environment
from reloadkit.config.settings import Config, parse_signal
from reloadkit.errors import ConfigError
from reloadkit.supervisor.policy import CrashBackoff, describe_changes, exit_status

pytestmark = pytest.mark.timeout(30)


def test_defaults() -> None:
    config = parse_args(["run", "--", "python", "serve.py"], environ={})
    assert config.command == ("python", "serve.py")
    assert config.binds == ()
    assert config.stop_signal == signal.SIGTERM
    assert config.stop_timeout == 5.0
    assert config.debounce_ms == 50
    assert config.poll is None
    assert config.watch_roots == (config.cwd,)


def test_options() -> None:
    config = parse_args(
        ["run", "-b", "8000", "--bind", "unix:/tmp/x.sock", "-w", "src", "--poll", "--ext", "py,txt",
         "--stop-signal", "INT", "--stop-timeout", "2", "--overlap", "--ready-after", "0.5", "-q", "--", "cmd", "--flag"],
        environ={},
    )
    assert [spec.kind for spec in config.binds] == ["tcp", "unix"]
    assert config.poll == 1.0
    assert config.ext == ("py", "txt")
    assert config.stop_signal == signal.SIGINT
    assert config.stop_timeout == 2.0
    assert config.overlap is True
    assert config.ready_after == 0.5
    assert config.verbosity == -1
    assert config.command == ("cmd", "--flag")


def test_explicit_beats_environment_beats_default() -> None:
    env = {"RELOADKIT_POLL": "1", "RELOADKIT_STOP_TIMEOUT": "9", "RELOADKIT_OVERLAP": "yes"}
    assert parse_args(["run", "--", "x"], environ=env).poll == 1.0
    assert parse_args(["run", "--poll", "3", "--", "x"], environ=env).poll == 3.0
    assert parse_args(["run", "--", "x"], environ=env).stop_timeout == 9.0
    assert parse_args(["run", "--stop-timeout", "1", "--", "x"], environ=env).stop_timeout == 1.0
    assert parse_args(["run", "--", "x"], environ=env).overlap is True
    assert from_environment({"RELOADKIT_POLL": "0"}) == {}
    assert from_environment({"RELOADKIT_POLL": "2.5"}) == {"poll": 2.5}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "python", "serve.py"], "unrecognized arguments"),
        (["run", "-b", "8000"], "missing --"),
        (["run", "--"], "no command after --"),
        (["run", "-b", "abc", "--", "x"], "bad bind spec 'abc'"),
        (["run", "--stop-signal", "NOPE", "--", "x"], "unknown signal"),
        (["run", "--poll", "0", "--", "x"], "--poll interval"),
        (["run", "--stop-timeout", "soon", "--", "x"], "not a number"),
        (["--", "x"], "usage: reloadkit run"),
    ],
)
def test_errors_are_one_line(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_args(argv, environ={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_imports_mode_watches_nothing_by_default() -> None:
    assert Config(command=("x",), imports=True).watch_roots == ()


def test_parse_signal() -> None:
    assert parse_signal("term") == signal.SIGTERM
    assert parse_signal("SIGHUP") == signal.SIGHUP
    assert parse_signal("2") == signal.SIGINT


def test_crash_backoff_doubles_and_resets() -> None:
    backoff = CrashBackoff(first=0.25, cap=1.0, healthy=2.0)
    assert [backoff.next_delay(0.1) for _ in range(5)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    assert backoff.next_delay(5.0) == 0.0
    assert backoff.next_delay(0.1) == 0.25


def test_exit_status() -> None:
    assert exit_status(3 << 8) == 3
    assert exit_status(signal.SIGKILL) == 128 + signal.SIGKILL


def test_describe_changes() -> None:
    assert describe_changes(frozenset({"/p/app.py"}), "/p") == "app.py changed"
    assert describe_changes(frozenset({"/elsewhere/a.py"}), "/p") == "/elsewhere/a.py changed"
    assert describe_changes(frozenset({"/p/a.py", "/p/b.py", "/p/c.py"}), "/p") == "3 files changed"
