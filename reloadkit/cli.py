"""``reloadkit run [options] -- COMMAND [ARGS...]``: argparse to a Config, errors to one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .config import Config, from_environment, parse_signal
from .errors import ConfigError, ReloadkitError
from .sockets import parse_binds

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
    watching.add_argument("--no-reload", dest="reload", action="store_false",
                          help="do not watch; exit with the child's status when it exits")
    children = run.add_argument_group("children")
    children.add_argument("--stop-signal", metavar="SIG", help="signal that asks the child to stop (default TERM)")
    children.add_argument("--stop-timeout", type=_positive_float, metavar="SECONDS",
                          help="then SIGKILL the whole process tree (default 5)")
    children.add_argument("--overlap", action="store_true", default=None,
                          help="start the new child first; stop the old one when the new one is ready")
    children.add_argument("--ready-after", type=_positive_float, metavar="SECONDS",
                          help="a child that never sends READY=1 counts as ready this long after it started (default 1)")
    output = run.add_mutually_exclusive_group()
    output.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    output.add_argument("-v", "--verbose", action="store_true", help="say more")
    return parser


def parse_args(argv: Sequence[str], environ: dict[str, str] | None = None) -> Config:
    """Turn the command line into a :class:`Config`; raises :class:`ConfigError`."""
    args = list(argv)
    if "--" in args:
        split = args.index("--")
        options, command = args[:split], args[split + 1 :]
    else:
        options, command = args, []
    parser = _build_parser()
    namespace = parser.parse_args(options)
    if namespace.subcommand != "run":
        raise ConfigError("usage: reloadkit run [options] -- COMMAND [ARGS...]")
    if "--" not in args:
        raise ConfigError("missing -- before the command: reloadkit run [options] -- COMMAND [ARGS...]")
    if not command:
        raise ConfigError("no command after --: reloadkit run [options] -- COMMAND [ARGS...]")
    settings = from_environment(os.environ if environ is None else environ)
    explicit: dict[str, object] = {
        "poll": namespace.poll,
        "debounce_ms": namespace.debounce,
        "stop_timeout": namespace.stop_timeout,
        "ready_after": namespace.ready_after,
        "overlap": namespace.overlap,
        "stop_signal": parse_signal(namespace.stop_signal) if namespace.stop_signal else None,
    }
    settings.update({key: value for key, value in explicit.items() if value is not None})
    ext = tuple(item.strip() for value in namespace.ext for item in value.split(",") if item.strip())
    return Config(
        command=tuple(command),
        binds=tuple(parse_binds(namespace.bind)),
        backlog=namespace.backlog,
        watch=tuple(namespace.watch),
        include=tuple(namespace.include),
        exclude=tuple(namespace.exclude),
        ext=ext,
        imports=namespace.imports,
        reload=namespace.reload,
        verbosity=-1 if namespace.quiet else (1 if namespace.verbose else 0),
        **settings,  # type: ignore[arg-type]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: exit status 2 and one line for bad input, else the child's status."""
    from .supervisor import supervise

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
