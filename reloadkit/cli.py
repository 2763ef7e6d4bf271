"""``reloadkit run [options] -- COMMAND [ARGS...]``: argparse to a Config, errors to one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn, cast

from reloadkit import __version__
from reloadkit.child.sockets import parse_binds
from reloadkit.config import pyproject
from reloadkit.config.settings import Config, from_environment, merge_settings, parse_signal
from reloadkit.errors import ConfigError, ReloadkitError

__all__ = ["main", "parse_args"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="reloadkit",
        description="Hold the server's sockets, run it, and replace it when files change.",
    )
    parser.add_argument("--version", action="version", version=f"reloadkit {__version__}")
    commands = parser.add_subparsers(dest="subcommand", parser_class=_Parser)
    run = commands.add_parser(
        "run",
        usage="reloadkit run [options] -- COMMAND [ARGS...]",
        help="run COMMAND on held sockets and reload it on changes",
    )
    sockets = run.add_argument_group("sockets")
    sockets.add_argument("-b", "--bind", action="append", default=[], metavar="SPEC",
                         help="[NAME=]PORT | HOST:PORT | [IPV6]:PORT | unix:PATH[,mode=660] | fd://N; repeatable, in order")
    sockets.add_argument("--backlog", type=int, metavar="N", help="listen backlog (default: the kernel's maximum)")
    watching = run.add_argument_group("watching")
    watching.add_argument("-w", "--watch", action="append", default=[], metavar="PATH",
                          help="file or directory to watch; repeatable (default: the current directory)")
    watching.add_argument("--include", action="append", default=[], metavar="GLOB", help="also trigger on files matching GLOB")
    watching.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="never trigger on GLOB (wins over --include)")
    watching.add_argument("--ext", action="append", default=[], metavar="LIST", help="shorthand: --ext py,txt includes *.py and *.txt")
    watching.add_argument("--poll", nargs="?", const=1.0, type=_positive_float, metavar="SECONDS",
                          help="poll the file system every SECONDS (default 1) instead of using events")
    watching.add_argument("--debounce", type=int, metavar="MS", help="quiet time that ends a burst of changes (default 50)")
    watching.add_argument("--imports", action="store_true",
                          help="watch the modules the Python child imports (instead of the current directory)")
    watching.add_argument("--no-ignore-vcs", dest="ignore_vcs", action="store_false",
                          help="do not skip what .gitignore, .git/info/exclude and .ignore files ignore")
    watching.add_argument("--no-reload", dest="reload", action="store_false",
                          help="do not watch; exit with the child's status when it exits")
    children = run.add_argument_group("children")
    children.add_argument("--stop-signal", metavar="SIG", help="signal that asks the child to stop (default TERM)")
    children.add_argument("--stop-timeout", type=_positive_float, metavar="SECONDS",
                          help="then SIGKILL the whole process tree (default 5)")
    children.add_argument("--overlap", action="store_true", default=None,
                          help="start the new child first; stop the old one when the new one is ready")
    children.add_argument("--warm", action="store_true", default=None,
                          help="start each new Python child from a warm parent that already imported the installed modules")
    children.add_argument("--no-warm", dest="warm", action="store_false", help="start every child cold")
    children.add_argument("--strict-order", action="store_true", default=None,
                          help="start the new child only once the old one has exited (no overlap)")
    children.add_argument("--ready-after", type=_positive_float, metavar="SECONDS",
                          help="a child that never sends READY=1 counts as ready this long after it started (default 1)")
    children.add_argument("--env-file", dest="env_files", action="append", default=[], metavar="PATH",
                          help="variables for the child from a dotenv file (the real environment wins); repeatable, later wins; watched")
    children.add_argument("--through-wrapper", action="store_true",
                          help="COMMAND is a wrapper that does not exec the server (sh -c '...; ...', uv run):"
                               " no LISTEN_PID; the Python process that finds the sockets claims them")
    browser = run.add_argument_group("in the browser")
    browser.add_argument("--no-error-page", dest="error_page", action="store_false", default=None,
                         help="while the app is down, leave requests waiting instead of answering 503 with what broke")
    browser.add_argument("--livereload", action="store_true", default=None,
                         help="reload open pages when the new version is ready; swap stylesheets when CSS changes")
    browser.add_argument("--livereload-port", type=int, metavar="PORT",
                         help="port of the live-reload channel (default: a free one)")
    browser.add_argument("--livereload-static", action="append", default=[], metavar="GLOB",
                         help="also a static file: reloads pages, never the server (adds to *.css, *.js, images, fonts)")
    output = run.add_mutually_exclusive_group()
    output.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    output.add_argument("-v", "--verbose", action="store_true", help="say more")
    return parser


def parse_args(argv: Sequence[str], environ: Mapping[str, str] | None = None, cwd: str | None = None) -> Config:
    """Turn the command line (and ``[tool.reloadkit]``, ``RELOADKIT_*``) into a :class:`Config`.

    Raises :class:`ConfigError`. Precedence: the command line, then ``RELOADKIT_*`` variables,
    then the nearest ``pyproject.toml``, then the defaults (see :func:`config.merge_settings`).
    """
    args = list(argv)
    if "--" in args:
        split = args.index("--")
        options, command = args[:split], args[split + 1 :]
    else:
        options, command = args, []
    namespace = _build_parser().parse_args(options)  # every check, and --help/--version
    if namespace.subcommand != "run":
        raise ConfigError("usage: reloadkit run [options] -- COMMAND [ARGS...]")
    if "--" in args and not command:
        raise ConfigError("no command after --: reloadkit run [options] -- COMMAND [ARGS...]")
    directory = os.getcwd() if cwd is None else cwd
    given = _given(options)
    found = pyproject.load(directory)
    from_file: dict[str, object] = {}
    file_command: list[str] | None = None
    if found is not None:
        from_file, file_command = _file_settings(found, exclusive_with=given)
    if not command:
        if file_command is None:
            raise ConfigError("missing -- before the command: reloadkit run [options] -- COMMAND [ARGS...]"
                              " (or set command in [tool.reloadkit] of pyproject.toml)")
        command = file_command
    settings = merge_settings(
        file=from_file,
        environment=from_environment(os.environ if environ is None else environ),
        command_line=_settings(given),
    )
    return Config(
        command=tuple(command),
        cwd=directory,
        config_file=found.path if found is not None else None,
        **settings,  # type: ignore[arg-type]
    )


def _run_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return cast(argparse.ArgumentParser, action.choices["run"])
    raise AssertionError("no run subcommand")  # pragma: no cover


def _given(options: Sequence[str]) -> dict[str, object]:
    """Only the options given (argparse's defaults suppressed), by dest."""
    parser = _build_parser()
    for action in _run_parser(parser)._actions:
        action.default = argparse.SUPPRESS
    values = vars(parser.parse_args(["run", *options[1:]] if options else ["run"]))
    values.pop("subcommand", None)
    return values


def _file_settings(found: pyproject.FileConfig, *, exclusive_with: Mapping[str, object]) -> tuple[dict[str, object], list[str] | None]:
    """The file's settings, each key checked by the same argparse definitions as the command line."""
    run = _run_parser(_build_parser())
    arguments, command = pyproject.to_arguments(found, run)
    values: dict[str, object] = {}
    for key, tokens in arguments.items():
        try:
            given = _given(["run", *tokens])
            Config(command=("-",), **_settings(given))  # type: ignore[arg-type]  # Config's own checks, named by key
        except ConfigError as exc:
            raise ConfigError(pyproject.describe_error(found, key, str(exc))) from None
        values.update(given)
    try:  # options that exclude each other (-q/-v), both in the file
        _given(["run", *(token for tokens in arguments.values() for token in tokens)])
    except ConfigError as exc:
        raise ConfigError(f"{found.path}: [tool.reloadkit]: {exc}") from None
    # One of a group of exclusive options (-q/-v) on the command line overrides the others in the file.
    for group in run._mutually_exclusive_groups:
        dests = {action.dest for action in group._group_actions}
        if dests & set(exclusive_with):
            for dest in dests:
                values.pop(dest, None)
    return _settings(values), command


def _settings(values: Mapping[str, object]) -> dict[str, object]:
    """argparse dests (those present) -> :class:`Config` keyword arguments.

    A dest named like its Config field passes through (lists become tuples): an option added
    to the parser under its field's name needs nothing here, and is a key of the file too.
    """
    out: dict[str, object] = {}
    for dest, value in values.items():
        if dest == "bind":
            out["binds"] = tuple(parse_binds(cast("list[str]", value)))
        elif dest == "debounce":
            out["debounce_ms"] = value
        elif dest == "stop_signal":
            out["stop_signal"] = parse_signal(cast(str, value))
        elif dest == "ext":
            out["ext"] = tuple(item.strip() for part in cast("list[str]", value) for item in part.split(",") if item.strip())
        elif dest == "quiet":
            if value:
                out["verbosity"] = -1
        elif dest == "verbose":
            if value:
                out["verbosity"] = 1
        elif isinstance(value, list):
            out[dest] = tuple(value)
        else:
            out[dest] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: exit status 2 and one line for bad input, else the child's status."""
    from reloadkit.supervisor.loop import supervise

    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
        return supervise(config)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except (ReloadkitError, OSError) as exc:
        _error(str(exc) if isinstance(exc, ReloadkitError) or not exc.strerror else f"{exc.strerror}: {exc.filename or ''}".rstrip(": "))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> None:
    sys.stderr.write(f"reloadkit: error: {message}\n")
    sys.stderr.flush()
