"""The library face: :func:`run_with_reloader` turns the calling process into the supervisor
and re-runs the same interpreter, with the same options and arguments, as the child."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, cast

from reloadkit.child.tracker import application_files, start_tracking

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import NoReturn

    from typing_extensions import Unpack

    from reloadkit.config.options import RunOptions
    from reloadkit.config.settings import Config

__all__ = ["run_with_reloader", "under_supervisor"]


RELOADER_TYPES = ("auto", "stat", "watchdog")
_OPTIONS_WITH_VALUE = frozenset("WX")
_LONG_OPTIONS_WITH_VALUE = frozenset({"--check-hash-based-pycs"})


# --- the child's command line: this program again ----------------------------------------


def _split_interpreter_args(orig_argv: Sequence[str]) -> tuple[str, int]:
    """Find how Python was told what to run: ``("script"|"-m"|"-c"|"-"|"", index)``.

    ``index`` is the position in ``orig_argv`` of the script, module name or code.
    """
    index = 1
    while index < len(orig_argv):
        arg = orig_argv[index]
        if arg == "--":
            return ("script", index + 1) if index + 1 < len(orig_argv) else ("", index + 1)
        if arg == "-":
            return "-", index
        if arg.startswith("--"):
            index += 2 if arg in _LONG_OPTIONS_WITH_VALUE else 1
            continue
        if not arg.startswith("-"):
            return "script", index
        for position, flag in enumerate(arg[1:], start=1):
            attached = arg[position + 1 :]
            if flag in "cm":
                return (f"-{flag}", index) if attached else (f"-{flag}", index + 1)
            if flag in _OPTIONS_WITH_VALUE:
                index += 0 if attached else 1
                break
        index += 1
    return "", index


def _absolute_script(script: str, main_file: str | None) -> str:
    """The script's absolute path, right even if the program changed directory since."""
    if os.path.isabs(script):
        return script
    relative = os.path.normpath(script)
    if main_file and os.path.isabs(main_file):
        main = os.path.normpath(main_file)
        for candidate in (main, os.path.dirname(main)):  # a file, or a directory/zip with __main__.py
            if candidate == relative or candidate.endswith(os.sep + relative):
                return candidate
    return os.path.abspath(script)


def child_argv(
    orig_argv: Sequence[str] | None = None,
    *,
    executable: str | None = None,
    argv: Sequence[str] | None = None,
    main_file: str | None = None,
    main_spec_name: str | None = None,
) -> list[str]:
    """The command that runs this program again: the same interpreter, options and arguments.

    From ``sys.orig_argv`` (``-X``, ``-W``, ``-m pkg``, ``-c`` and console scripts all
    survive); the script path is made absolute. Without it (an embedded interpreter), rebuilt
    from ``sys.argv`` and ``__main__.__spec__`` as werkzeug does. Raises
    :class:`~reloadkit.ConfigError` for an interactive interpreter or a script read from
    stdin, which cannot be run twice.
    """
    from reloadkit.errors import ConfigError

    main = sys.modules.get("__main__")
    if orig_argv is None:
        orig_argv = list(getattr(sys, "orig_argv", []) or [])
    if executable is None:
        executable = sys.executable
    if argv is None:
        argv = list(sys.argv)
    if main_file is None:
        main_file = getattr(main, "__file__", None)
    if main_spec_name is None:
        spec = getattr(main, "__spec__", None)
        main_spec_name = getattr(spec, "name", None)
    if orig_argv:
        command = [executable or orig_argv[0], *orig_argv[1:]]
        mode, index = _split_interpreter_args(command)
        if mode == "script":
            command[index] = _absolute_script(command[index], main_file)
            return command
        if mode in ("-m", "-c") and index < len(command):
            return command
        if mode == "-":
            raise ConfigError("run_with_reloader cannot re-run a program read from stdin; save it to a file")
        raise ConfigError("run_with_reloader needs a script, -m module or -c code to re-run, not an interactive interpreter")
    if not executable:
        raise ConfigError("run_with_reloader cannot find the Python interpreter (sys.executable is empty)")
    if main_spec_name and main_spec_name != "__main__":
        module = main_spec_name[: -len(".__main__")] if main_spec_name.endswith(".__main__") else main_spec_name
        return [executable, "-m", module, *argv[1:]]
    if not argv or argv[0] in ("", "-c", "-"):
        raise ConfigError("run_with_reloader needs a script or -m module to re-run")
    return [executable, _absolute_script(argv[0], main_file), *argv[1:]]


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def under_supervisor() -> bool:
    """True in any process a reloadkit supervisor started, or that one of those started."""
    return bool(os.environ.get("RELOADKIT_PID"))


def run_with_reloader(
    main_func: Callable[[], object],
    *,
    extra_files: Iterable[str] | None = None,
    exclude_patterns: Iterable[str] | None = None,
    interval: float = 1.0,
    reloader_type: str = "auto",
    **options: Unpack[RunOptions],
) -> NoReturn:
    """Run ``main_func`` in a child process that is restarted when its code changes.

    Called in a plain process, this process becomes the supervisor: it binds ``bind`` (one
    ``--bind`` spec or a list), watches, and re-runs this same program (same interpreter,
    options and arguments) as the child, which reaches this call again and runs
    ``main_func()`` there. The supervisor never runs ``main_func``; it exits with the
    supervisor's status. In the child (:func:`reloadkit.is_child`), imports are reported to
    the supervisor and ``main_func()`` runs; its sockets are in :func:`reloadkit.sockets`.
    When ``main_func`` returns, the child exits with status 0 (and waits for a change).

    Every option of ``reloadkit run`` is a keyword here, by its name in
    :class:`~reloadkit.config.options.RunOptions` (``bind``, ``watch``, ``poll``, ``warm``,
    ``strict_order``, ``env_files``, ``livereload``, ...); ``None`` leaves an option to its
    ``RELOADKIT_*`` variable and default. Watched: the files of the modules the child imports
    (``imports=True``, the default here), ``extra_files``, and the ``watch`` paths with the
    ``include``/``exclude``/``ext`` rules. werkzeug's names work: ``extra_files``,
    ``exclude_patterns`` (also applied to imported files), ``interval`` and ``reloader_type``
    (``"auto"``, ``"watchdog"``: events; ``"stat"``: polling every ``interval`` seconds).

    Raises :class:`~reloadkit.ReloadkitError` (a bad option, a busy port) before anything
    starts, and :class:`TypeError` for a keyword that is no option.
    """
    if under_supervisor():
        _run_child(main_func)
    config = _parent_config(
        options,
        extra_files=extra_files,
        exclude_patterns=exclude_patterns,
        interval=interval,
        reloader_type=reloader_type,
    )
    from reloadkit.supervisor.loop import supervise

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    raise SystemExit(supervise(config, restart_protocol=True))  # its children exit 3 to ask for a restart


def _run_child(main_func: Callable[[], object]) -> NoReturn:
    from reloadkit.child.notify import watch_files

    if os.environ.get("RELOADKIT_IMPORTS") == "1":  # the supervisor watches what we import
        start_tracking(watch_files)
    try:
        main_func()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    raise SystemExit(0)


def _parent_config(
    options: Mapping[str, object],
    *,
    extra_files: Iterable[str] | None = None,
    exclude_patterns: Iterable[str] | None = None,
    interval: float = 1.0,
    reloader_type: str = "auto",
    function: str = "run_with_reloader",
) -> Config:
    """The supervisor's :class:`~reloadkit.config.settings.Config`: the keywords, then
    ``RELOADKIT_*``, then the defaults (``imports`` defaults to true here). With ``imports``,
    the supervisor hands ``exclude`` to the child's tracker in :data:`EXCLUDE_ENV`."""
    from reloadkit.config.options import from_environment, from_keywords
    from reloadkit.config.settings import Config
    from reloadkit.errors import ConfigError

    if reloader_type not in RELOADER_TYPES:
        raise ConfigError(f"unknown reloader_type {reloader_type!r}; expected one of {', '.join(RELOADER_TYPES)}")
    if reloader_type == "stat" and interval <= 0:
        raise ConfigError("interval must be greater than 0")
    given = from_keywords(options, function=function)
    settings: dict[str, object] = {"imports": True, **from_environment(os.environ)}
    if reloader_type == "stat":
        settings["poll"] = float(interval)
    settings.update(given)
    patterns = (*_as_tuple(exclude_patterns), *cast("tuple[str, ...]", settings.get("exclude", ())))
    extra = tuple(os.path.abspath(path) for path in _as_tuple(extra_files))
    if settings["imports"]:
        # What this process imported before the call, the child imports too: watched from the
        # start, whatever happens to the child's reports.
        seen = set(extra)
        extra += tuple(path for path in application_files(patterns) if path not in seen)
    return Config(
        command=tuple(child_argv()),
        exclude=patterns,
        extra_files=extra,
        **{key: value for key, value in settings.items() if key != "exclude"},  # type: ignore[arg-type]
    )
