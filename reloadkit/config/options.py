"""Every option of ``reloadkit run``, declared once, and the four faces derived from it.

:class:`RunOptions` is the table. Each entry is one option: its name (the Python keyword of
``run_with_reloader``/``run_simple``, and the :class:`~reloadkit.config.settings.Config`
field unless ``field`` says otherwise), the type a caller may pass (what type checkers see),
and an :class:`Option` in the ``Annotated`` metadata holding the rest: the command-line
flags, help, ``RELOADKIT_*`` variable, kind of value. The default is the ``Config`` field's
own default (one place). Derived from the table:

* the ``reloadkit run`` arguments (:func:`add_arguments`), and through them the keys of
  ``[tool.reloadkit]``, which are the long flags (:mod:`reloadkit.config.pyproject`);
* :func:`from_environment` (the options that declare a variable);
* :func:`from_arguments` (argparse's values) and :func:`from_keywords` (the Python API).

The precedence is the command line (or a Python keyword), then ``RELOADKIT_*``, then the file
(the CLI only), then the default: :func:`reloadkit.config.settings.merge_settings`.

Adding an option is one entry here plus the ``Config`` field it sets (with its default)::

    adopt: Annotated[bool, Option(Flag(), "", off=("--no-adopt",), group="sockets",
                                  off_help="leave the child's own bind() alone")]

with ``adopt: bool = True`` in ``Config``. That gives ``--no-adopt``, ``no-adopt = true`` in
the file, ``run_with_reloader(..., adopt=False)`` and ``run_simple(..., adopt=False)``; an
``env=`` name would add a ``RELOADKIT_*`` variable (document it in docs/usage.rst's table). A
flag whose default is true is declared by its positive name with only ``off`` flags, as
``error_page`` is; a single string is ``Text()`` (``ready_path: Annotated[str | None,
Option(Text(), "...", flags=("--ready-path",), metavar="URL", example="/healthz")]``), a
repeatable one ``Strings()``. ``example`` is a valid value other than the default, for the
tests when the kind's own sample does not fit. tests/unit/test_options.py takes every entry
through every face; tests/unit/test_docs.py wants each flag in docs/usage.rst, and
test_options.py each name in docs/library.rst.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict, get_type_hints

from reloadkit.config.settings import DEFAULT_POLL_INTERVAL, Config, parse_signal
from reloadkit.errors import ConfigError
from reloadkit.net.binding import parse_binds

__all__ = [
    "GROUPS",
    "OPTIONS",
    "Flag",
    "Kind",
    "Level",
    "Number",
    "Option",
    "Poll",
    "RunOptions",
    "Signal",
    "Strings",
    "Text",
    "add_arguments",
    "from_arguments",
    "from_environment",
    "from_keywords",
]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

#: The help groups of ``reloadkit run``, in the order ``--help`` shows them.
GROUPS = ("sockets", "watching", "children", "in the browser", "output")


# --- kinds of value: how each face spells one ----------------------------------------------


class Kind:
    """How an option's value is spelled on the command line, in a variable and in Python."""

    def add(self, group: argparse._ActionsContainer, option: Option) -> None:
        """The option's arguments (``dest`` is the option's name)."""
        group.add_argument(*option.flags, dest=option.name, metavar=option.metavar,
                           help=option.help_text, **self.argparse_kwargs())

    def argparse_kwargs(self) -> dict[str, Any]:
        return {}

    def from_cli(self, value: object) -> object:
        """argparse's value → the Config value."""
        return value

    def from_text(self, text: str, variable: str) -> object:
        """A variable's text → the Config value; None leaves the option unset."""
        raise ConfigError(f"{variable}: no value of this option can be read from the environment")

    def from_python(self, value: object, name: str) -> object:
        """A keyword's value (not None) → the Config value."""
        return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _text_number(text: str, variable: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{variable}={text!r} is not a number") from None


def _wrong(name: str, expected: str, value: object) -> ConfigError:
    return ConfigError(f"{name}: expected {expected}, not {value!r}")


class Flag(Kind):
    """On or off: ``flags`` turn it on, ``off`` turns it off; a variable says true or false."""

    def add(self, group: argparse._ActionsContainer, option: Option) -> None:
        if option.flags:
            group.add_argument(*option.flags, dest=option.name, action="store_true", help=option.help_text)
        if option.off:
            group.add_argument(*option.off, dest=option.name, action="store_false",
                               help=option.off_help or option.help_text)

    def from_cli(self, value: object) -> object:
        return bool(value)

    def from_text(self, text: str, variable: str) -> object:
        flag = text.strip().lower()
        if not flag:
            return None
        if flag not in (*_TRUE, *_FALSE):
            raise ConfigError(f"{variable}={flag!r} is neither true nor false")
        return flag in _TRUE

    def from_python(self, value: object, name: str) -> object:
        if not isinstance(value, bool):
            raise _wrong(name, "True or False", value)
        return value


class Level(Kind):
    """``-v`` (1) or ``-q`` (-1), which exclude each other; an integer in Python."""

    def add(self, group: argparse._ActionsContainer, option: Option) -> None:
        exclusive = group.add_mutually_exclusive_group()
        exclusive.add_argument(*option.off, dest=option.name, action="store_const", const=-1, help=option.off_help)
        exclusive.add_argument(*option.flags, dest=option.name, action="store_const", const=1, help=option.help_text)

    def from_python(self, value: object, name: str) -> object:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong(name, "an integer (-1 quiet, 0, 1 verbose)", value)
        return value


@dataclass(frozen=True)
class Number(Kind):
    """An integer or a number of seconds."""

    type: type[int] | type[float] = float

    def argparse_kwargs(self) -> dict[str, Any]:
        return {"type": int if self.type is int else _float}

    def from_text(self, text: str, variable: str) -> object:
        if not text.strip():
            return None
        value = _text_number(text.strip(), variable)
        return int(value) if self.type is int else value

    def from_python(self, value: object, name: str) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float) or (self.type is int and not isinstance(value, int)):
            raise _wrong(name, "an integer" if self.type is int else "a number", value)
        return self.type(value)


class Poll(Kind):
    """Off, on (every :data:`DEFAULT_POLL_INTERVAL` seconds) or every N seconds."""

    def argparse_kwargs(self) -> dict[str, Any]:
        return {"nargs": "?", "const": DEFAULT_POLL_INTERVAL, "type": _float}

    def from_text(self, text: str, variable: str) -> object:
        value = text.strip().lower()
        if not value or value in _FALSE:  # off: as if unset, so the file still decides
            return None
        if value in _TRUE:
            return DEFAULT_POLL_INTERVAL
        return _text_number(value, variable)

    def from_python(self, value: object, name: str) -> object:
        if isinstance(value, bool):
            return DEFAULT_POLL_INTERVAL if value else None
        if not isinstance(value, int | float):
            raise _wrong(name, "True, False or a number of seconds", value)
        return float(value)


class Signal(Kind):
    """A signal: ``TERM``, ``SIGINT``, ``15``; a :class:`signal.Signals` in Python too."""

    def from_cli(self, value: object) -> object:
        return parse_signal(str(value))

    def from_text(self, text: str, variable: str) -> object:
        return parse_signal(text) if text.strip() else None

    def from_python(self, value: object, name: str) -> object:
        if isinstance(value, str):
            return parse_signal(value)
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return signal.Signals(int(value))
            except ValueError:
                raise ConfigError(f"{name}: unknown signal {value!r}") from None
        raise _wrong(name, "a signal name, number or signal.Signals", value)


class Text(Kind):
    """One string (a ``PATH`` metavar: relative to ``pyproject.toml`` in the file)."""

    def from_text(self, text: str, variable: str) -> object:
        return text if text.strip() else None

    def from_python(self, value: object, name: str) -> object:
        if not isinstance(value, str):
            raise _wrong(name, "a string", value)
        return value


@dataclass(frozen=True)
class Strings(Kind):
    """A repeatable option: a list of strings (one string is a list of one in Python)."""

    convert: Callable[[tuple[str, ...]], tuple[object, ...]] | None = None

    def argparse_kwargs(self) -> dict[str, Any]:
        return {"action": "append"}

    def from_cli(self, value: object) -> object:
        items = tuple(value) if isinstance(value, list | tuple) else (str(value),)
        return self.convert(items) if self.convert else items

    def from_python(self, value: object, name: str) -> object:
        items = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, Iterable) else None
        if items is None or not all(isinstance(item, str) for item in items):
            raise _wrong(name, "a string or a list of strings", value)
        return self.from_cli(items)


def _split_commas(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


def _binds(values: tuple[str, ...]) -> tuple[object, ...]:
    return tuple(parse_binds(list(values)))


# --- the table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option's declaration, less its name and Python type (those are its key and type
    in :class:`RunOptions`)."""

    kind: Kind
    help: str
    flags: tuple[str, ...] = ()
    off: tuple[str, ...] = ()  # flags that turn a Flag off (-q for Level)
    off_help: str | None = None
    metavar: str | None = None
    env: str | None = None
    group: str = "children"
    field: str = ""  # the Config field; "" = the name
    example: object = None  # a valid value other than the default, for the tests (None: by kind)
    name: str = ""  # filled in from RunOptions

    @property
    def config_field(self) -> str:
        return self.field or self.name

    @property
    def default(self) -> object:
        """The Config field's default: the one place it is written."""
        spec = Config.__dataclass_fields__[self.config_field]
        if spec.default_factory is not dataclasses.MISSING:
            return spec.default_factory()
        return spec.default

    @property
    def help_text(self) -> str:
        return self.help.format(default=self.default)

    @property
    def all_flags(self) -> tuple[str, ...]:
        return (*self.flags, *self.off)

    @property
    def file_keys(self) -> tuple[str, ...]:
        """Its keys in ``[tool.reloadkit]``: the long flags without ``--`` (``_`` for ``-`` works
        too); :mod:`reloadkit.config.pyproject` reads them off the parser."""
        return tuple(flag[2:] for flag in self.all_flags if flag.startswith("--"))


_S, _W, _C, _B, _O = GROUPS
_SEC = "SECONDS"


class RunOptions(TypedDict, total=False):
    """The options of ``reloadkit run`` as keywords of :func:`reloadkit.run_with_reloader` and
    :func:`reloadkit.run_simple` (``None`` leaves an option to ``RELOADKIT_*`` and the default)."""

    bind: Annotated[str | Sequence[str] | None, Option(
        Strings(_binds), "[NAME=]PORT | HOST:PORT | [IPV6]:PORT | unix:PATH[,mode=660] | fd://N; repeatable, in order",
        flags=("-b", "--bind"), metavar="SPEC", group=_S, field="binds")]
    backlog: Annotated[int | None, Option(
        Number(int), "listen backlog (default: the kernel's maximum)", flags=("--backlog",), metavar="N", group=_S)]
    adopt: Annotated[bool, Option(
        Flag(), "", off=("--no-adopt",), env="RELOADKIT_ADOPT", group=_S,
        off_help="let a Python server's own bind() bind (by default a bind() to an address reloadkit holds takes"
        " the held socket, and without --bind the first generation's TCP binds are held from then on;"
        " no other address is ever touched)")]
    watch: Annotated[str | Iterable[str], Option(
        Strings(), "file or directory to watch; repeatable (default: the current directory)",
        flags=("-w", "--watch"), metavar="PATH", group=_W)]
    include: Annotated[str | Iterable[str], Option(
        Strings(), "also trigger on files matching GLOB", flags=("--include",), metavar="GLOB", group=_W)]
    exclude: Annotated[str | Iterable[str], Option(
        Strings(), "never trigger on GLOB (wins over --include)", flags=("--exclude",), metavar="GLOB", group=_W)]
    ext: Annotated[str | Iterable[str], Option(
        Strings(_split_commas), "shorthand: --ext py,txt includes *.py and *.txt", flags=("--ext",), metavar="LIST",
        group=_W)]
    poll: Annotated[bool | float | None, Option(
        Poll(), f"poll the file system every SECONDS (default {DEFAULT_POLL_INTERVAL:g}; 0.5 is half a second)"
        " instead of using events", flags=("--poll",), metavar=_SEC, env="RELOADKIT_POLL", group=_W)]
    debounce_ms: Annotated[int | None, Option(
        Number(int), "quiet time that ends a burst of changes (default {default})", flags=("--debounce",),
        metavar="MS", env="RELOADKIT_DEBOUNCE", group=_W)]
    imports: Annotated[bool, Option(
        Flag(), "watch the modules the Python child imports (instead of the current directory)",
        flags=("--imports",), group=_W)]
    ignore_vcs: Annotated[bool, Option(
        Flag(), "", off=("--no-ignore-vcs",),
        off_help="do not skip what .gitignore, .git/info/exclude and .ignore files ignore", group=_W)]
    reload: Annotated[bool, Option(
        Flag(), "", off=("--no-reload",), off_help="do not watch; exit with the child's status when it exits",
        group=_W)]
    stop_signal: Annotated[str | int | signal.Signals | None, Option(
        Signal(), "signal that asks the child to stop (default TERM)", flags=("--stop-signal",), metavar="SIG",
        env="RELOADKIT_STOP_SIGNAL")]
    stop_timeout: Annotated[float | None, Option(
        Number(), "then SIGKILL the whole process tree (default {default:g})", flags=("--stop-timeout",),
        metavar=_SEC, env="RELOADKIT_STOP_TIMEOUT")]
    overlap: Annotated[bool | None, Option(
        Flag(), "start the new child first; stop the old one when the new one is ready", flags=("--overlap",),
        env="RELOADKIT_OVERLAP")]
    warm: Annotated[bool, Option(
        Flag(), "start each new Python child from a warm parent that already imported the installed modules",
        flags=("--warm",), off=("--no-warm",), off_help="start every child cold", env="RELOADKIT_WARM")]
    checkpoint: Annotated[bool, Option(
        Flag(), "", off=("--no-checkpoint",), off_help="warm parents hold installed modules only, not the project's"
        " unedited modules too (the project checkpoint)", env="RELOADKIT_CHECKPOINT")]
    strict_order: Annotated[bool, Option(
        Flag(), "start the new child only once the old one has exited (no overlap)", flags=("--strict-order",),
        env="RELOADKIT_STRICT_ORDER")]
    ready_after: Annotated[float | None, Option(
        Number(), "where no probe of its sockets works, a child that sent no READY=1 counts as ready this long"
        " after it started (default 1); given explicitly, also an upper bound beside the probe", flags=("--ready-after",),
        metavar=_SEC, env="RELOADKIT_READY_AFTER")]
    ready_path: Annotated[str | None, Option(
        Text(), "a child is ready when GET PATH on its socket answers below 500 (not when it first"
        " accepts): a broken version that accepts but cannot load the app never replaces a working one",
        flags=("--ready-path",), metavar="URLPATH", env="RELOADKIT_READY_PATH", example="/healthz")]
    env_files: Annotated[str | Iterable[str], Option(
        Strings(), "variables for the child from a dotenv file (the real environment wins); repeatable, later wins;"
        " watched", flags=("--env-file",), metavar="PATH")]
    through_wrapper: Annotated[bool, Option(
        Flag(), "COMMAND is a wrapper that does not exec the server (sh -c '...; ...', uv run):"
        " no LISTEN_PID; the Python process that finds the sockets claims them", flags=("--through-wrapper",))]
    error_page: Annotated[bool, Option(
        Flag(), "", off=("--no-error-page",), env="RELOADKIT_ERROR_PAGE", group=_B,
        off_help="while the app is down, leave requests waiting instead of answering 503 with what broke")]
    livereload: Annotated[bool, Option(
        Flag(), "reload open pages when the new version is ready; swap stylesheets when CSS changes",
        flags=("--livereload",), env="RELOADKIT_LIVERELOAD", group=_B)]
    livereload_port: Annotated[int, Option(
        Number(int), "port of the live-reload channel (default: a free one)", flags=("--livereload-port",),
        metavar="PORT", env="RELOADKIT_LIVERELOAD_PORT", group=_B)]
    livereload_static: Annotated[str | Iterable[str], Option(
        Strings(), "also a static file: reloads pages, never the server (adds to *.css, *.js, images, fonts)",
        flags=("--livereload-static",), metavar="GLOB", group=_B)]
    verbosity: Annotated[int, Option(
        Level(), "say more", flags=("-v", "--verbose"), off=("-q", "--quiet"), off_help="only warnings and errors",
        group=_O)]


def _table() -> tuple[Option, ...]:
    hints = get_type_hints(RunOptions, globalns=vars(sys.modules[__name__]), include_extras=True)
    options: list[Option] = []
    for name, hint in hints.items():
        (declared,) = [meta for meta in getattr(hint, "__metadata__", ()) if isinstance(meta, Option)]
        options.append(dataclasses.replace(declared, name=name))
    return tuple(options)


#: Every option, in ``--help`` order within its group.
OPTIONS: tuple[Option, ...] = _table()
_BY_NAME = {option.name: option for option in OPTIONS}


# --- the faces ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option as ``reloadkit run`` arguments, in their help groups. No argument has a
    default (the parser should be made with ``argument_default=argparse.SUPPRESS``): what
    argparse returns is what was given."""
    groups = {name: parser.add_argument_group(name) for name in GROUPS[:-1]}
    for option in OPTIONS:
        option.kind.add(groups.get(option.group, parser), option)


def from_arguments(values: Mapping[str, object]) -> dict[str, object]:
    """argparse's values (by option name; those given) → :class:`Config` keyword arguments."""
    return {
        _BY_NAME[name].config_field: _BY_NAME[name].kind.from_cli(value)
        for name, value in values.items()
        if name in _BY_NAME
    }


def from_environment(environ: Mapping[str, str]) -> dict[str, object]:
    """Settings found in ``RELOADKIT_*`` variables, as :class:`Config` keyword arguments.

    An empty variable is unset. ``RELOADKIT_POLL=1`` (or another true value) polls every
    second, any other number is the interval in seconds (``0.5`` too), a false value polls not.
    """
    found: dict[str, object] = {}
    for option in OPTIONS:
        if option.env is not None and option.env in environ:
            value = option.kind.from_text(environ[option.env], option.env)
            if value is not None:
                found[option.config_field] = value
    return found


def from_keywords(keywords: Mapping[str, object], *, function: str = "run_with_reloader") -> dict[str, object]:
    """The Python API's keywords → :class:`Config` keyword arguments; ``None`` is left out.

    Raises :class:`TypeError` for a name that is no option (as Python does for a keyword
    that a function lacks), :class:`ConfigError` for a value of the wrong kind.
    """
    out: dict[str, object] = {}
    for name, value in keywords.items():
        option = _BY_NAME.get(name)
        if option is None:
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")
        if value is not None:
            out[option.config_field] = option.kind.from_python(value, name)
    return out
