"""``[tool.reloadkit]`` in ``pyproject.toml``: finding it, reading it, checking every key.

The keys are not listed here: they are the long options of ``reloadkit run`` (``--stop-timeout``
is ``stop-timeout``; ``stop_timeout`` is accepted too), taken from the argparse definitions, so
an option added to the command line is a key of the file without more code. Each value is
checked against the kind of its option (a flag wants ``true``/``false``, where ``false`` is its
opposite flag if it has one: ``warm = false`` is ``--no-warm``; a repeatable option a
list, ``--debounce`` an integer...) and then turned into the very arguments the command line
would have had, so argparse's own type checks judge the values. One more key, ``command``, is the
command (a list of strings).

Relative ``PATH`` values (``watch``, ``env-file``) are relative to the file's directory, so a
project configured once works from any of its subdirectories.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reloadkit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

__all__ = ["COMMAND_KEY", "FileConfig", "describe_error", "file_options", "find_pyproject", "load", "to_arguments"]

COMMAND_KEY = "command"
_TABLE = "[tool.reloadkit]"


@dataclass(frozen=True)
class FileConfig:
    """The ``[tool.reloadkit]`` table of one file: where it is, and the table itself."""

    path: str
    table: Mapping[str, Any]

    @property
    def directory(self) -> str:
        return os.path.dirname(self.path)


def find_pyproject(start: str) -> str | None:
    """The first ``pyproject.toml`` in ``start`` or above it; the search stops there.

    A ``pyproject.toml`` without a ``[tool.reloadkit]`` table still ends the search: it marks
    the project's root, and a file further up belongs to some other project.
    """
    directory = os.path.abspath(start)
    while True:
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def load(start: str) -> FileConfig | None:
    """The ``[tool.reloadkit]`` table found from ``start`` upwards; None if there is none.

    Raises :class:`ConfigError` (one line naming the file) for a file that is not valid TOML
    or a ``tool.reloadkit`` that is not a table.
    """
    path = find_pyproject(start)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {_first_line(str(exc))}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc.reason}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    tool = document.get("tool", {})
    table = tool.get("reloadkit") if isinstance(tool, dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: tool.reloadkit: expected a table ({_TABLE}), not {_kind(table)}")
    return FileConfig(path, table)


def file_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every option of ``parser`` by its key in the file: the longest option string, no ``--``."""
    options: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction) or not action.option_strings:
            continue
        key = max(action.option_strings, key=len).lstrip("-")
        options[key] = action
    return options


def to_arguments(config: FileConfig, parser: argparse.ArgumentParser) -> tuple[dict[str, list[str]], list[str] | None]:
    """The table as command-line arguments, one list per key, and the command (or None).

    Raises :class:`ConfigError` naming the file, the key and what is expected for an unknown
    key or a value of the wrong type; argparse judges the values themselves.
    """
    options = file_options(parser)
    opposite = _opposites(parser)
    arguments: dict[str, list[str]] = {}
    command: list[str] | None = None
    for raw_key, value in config.table.items():
        key = raw_key.replace("_", "-")
        if key == COMMAND_KEY:
            command = _command(config, raw_key, value)
            continue
        action = options.get(key)
        if action is None:
            known = ", ".join(sorted([COMMAND_KEY, *options]))
            raise ConfigError(f"{_where(config, raw_key)}: unknown key; expected one of: {known}")
        if value is False and action in opposite:  # warm = false is --no-warm
            action, value = opposite[action], True
        arguments[raw_key] = _arguments(config, raw_key, action, value)
    return arguments, command


def _opposites(parser: argparse.ArgumentParser) -> dict[argparse.Action, argparse.Action]:
    """Each flag that has an opposite (``--warm``/``--no-warm``: one dest, true and false)."""
    flags = [action for action in parser._actions if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)]
    return {
        action: other
        for action in flags
        for other in flags
        if other.dest == action.dest and type(other) is not type(action)
    }


def _command(config: FileConfig, key: str, value: object) -> list[str]:
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value) and value[0]:
        return list(value)
    raise ConfigError(f"{_where(config, key)}: expected a non-empty list of strings, e.g. [\"python\", \"serve.py\"], not {_kind(value)}")


def _arguments(config: FileConfig, key: str, action: argparse.Action, value: object) -> list[str]:
    option = max(action.option_strings, key=len)
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise ConfigError(f"{_where(config, key)}: expected true or false, not {_kind(value)}")
        return [option] if value else []
    if action.nargs == "?":  # a flag with an optional value: true, false or the value
        if isinstance(value, bool):
            return [option] if value else []
        return [f"{option}={_scalar(config, key, action, value, 'true, false or a ')}"]
    if isinstance(action, argparse._AppendAction | argparse._ExtendAction):
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not value:
            return []
        out: list[str] = []
        for item in items:
            out.append(f"{option}={_scalar(config, key, action, item, 'a list of ', plural=True)}")
        return out
    # --option=value: a value that starts with "-" stays a value
    return [f"{option}={_scalar(config, key, action, value, 'a ')}"]


def _scalar(config: FileConfig, key: str, action: argparse.Action, value: object, prefix: str, *, plural: bool = False) -> str:
    """One value as the command line would spell it, if its TOML type fits the option."""
    if action.type is int:
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "integer"
    elif action.type is float or getattr(action.type, "__name__", "").endswith("float"):
        ok, expected = isinstance(value, int | float) and not isinstance(value, bool), "number"
    elif action.type is None:
        ok, expected = isinstance(value, str), "string"
    else:  # an option with its own parser: what it accepts is for it to say
        ok, expected = isinstance(value, str | int | float) and not isinstance(value, bool), "value"
    if not ok:
        what = f"{prefix}{expected}{'s' if plural else ''}"
        if expected[0] in "aeiou" and prefix.endswith("a ") and not plural:
            what = f"{prefix[:-1]}n {expected}"
        raise ConfigError(f"{_where(config, key)}: expected {what}, not {_kind(value)}")
    text = str(value)
    if action.metavar == "PATH" and isinstance(value, str) and text and not os.path.isabs(text):
        text = os.path.join(config.directory, text)
    return text


def _where(config: FileConfig, key: str) -> str:
    return f"{config.path}: {_TABLE} {key}"


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (a boolean)"
    if isinstance(value, int | float):
        return f"{value!r} (a number)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "syntax error"


def describe_error(config: FileConfig, key: str, message: str) -> str:
    """An argparse complaint about a value that came from the file, as one line."""
    return f"{_where(config, key)}: {message}"

