"""The library face: :func:`run_with_reloader` turns the calling process into the supervisor
and re-runs the same interpreter, with the same options and arguments, as the child."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, cast

from reloadkit.child.tracker import RELOADER_TYPES, application_files, child_argv, start_tracking

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import NoReturn

    from typing_extensions import Unpack

    from reloadkit.config.options import RunOptions
    from reloadkit.config.settings import Config

__all__ = ["run_with_reloader", "under_supervisor"]


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
