"""``reloadkit run [options] -- COMMAND [ARGS...]``: argparse to a Config, errors to one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn, cast

from reloadkit import __version__
from reloadkit.config import options as option_table
from reloadkit.config import pyproject
from reloadkit.config.settings import Config, merge_settings
from reloadkit.errors import ConfigError, ReloadkitError

__all__ = ["main", "parse_args"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _build_parser() -> _Parser:
    """The parser of ``reloadkit``: a subcommand is one more ``commands.add_parser``; the
    options of ``run`` come from the option table (:mod:`reloadkit.config.options`)."""
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
        argument_default=argparse.SUPPRESS,  # what parses is what was given
    )
    option_table.add_arguments(run)
    commands.add_parser("doctor", help="what this machine gives reloadkit, one fact a line (for bug reports)",
                        usage="reloadkit doctor [PATH...]", add_help=False)  # reloadkit.doctor parses its own
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
        environment=option_table.from_environment(os.environ if environ is None else environ),
        command_line=option_table.from_arguments(given),
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
    """Only the options given, by option name (the run parser has no defaults)."""
    values = vars(_build_parser().parse_args(["run", *options[1:]] if options else ["run"]))
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
            Config(command=("-",), **option_table.from_arguments(given))  # type: ignore[arg-type]  # Config's own checks, named by key
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
    return option_table.from_arguments(values), command


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: exit status 2 and one line for bad input, else the child's status."""
    from reloadkit.supervisor.loop import supervise

    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["doctor"]:
        from reloadkit.doctor import main as doctor

        return doctor(args[1:])
    try:
        config = parse_args(args)
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
