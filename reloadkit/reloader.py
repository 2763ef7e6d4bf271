"""The library face: :func:`run_with_reloader` turns the calling process into the supervisor
and re-runs the same interpreter, with the same options and arguments, as the child."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from reloadkit.child.tracker import RELOADER_TYPES, application_files, child_argv, start_tracking

if TYPE_CHECKING:
    import signal
    from collections.abc import Callable, Iterable, Sequence
    from typing import NoReturn

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
    bind: str | Sequence[str] | None = None,
    extra_files: Iterable[str] | None = None,
    exclude_patterns: Iterable[str] | None = None,
    interval: float = 1.0,
    reloader_type: str = "auto",
    watch: Iterable[str] = (),
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    ext: Iterable[str] = (),
    imports: bool = True,
    backlog: int | None = None,
    debounce_ms: int | None = None,
    stop_signal: str | int | signal.Signals | None = None,
    stop_timeout: float | None = None,
    overlap: bool | None = None,
    ready_after: float | None = None,
    verbosity: int = 0,
) -> NoReturn:
    """Run ``main_func`` in a child process that is restarted when its code changes.

    Called in a plain process, this process becomes the supervisor: it binds ``bind`` (one
    ``--bind`` spec or a list), watches, and re-runs this same program (same interpreter,
    options and arguments) as the child, which reaches this call again and runs
    ``main_func()`` there. The supervisor never runs ``main_func``; it exits with the
    supervisor's status. In the child (:func:`reloadkit.is_child`), imports are reported to
    the supervisor and ``main_func()`` runs; its sockets are in :func:`reloadkit.child.sockets`.
    When ``main_func`` returns, the child exits with status 0 (and waits for a change).

    Watched: the files of the modules the child imports (``imports=True``), ``extra_files``,
    and the ``watch`` paths with the ``include``/``exclude``/``ext`` rules. werkzeug's names
    work: ``extra_files``, ``exclude_patterns`` (also applied to imported files),
    ``interval`` and ``reloader_type`` (``"auto"``, ``"watchdog"``: events; ``"stat"``:
    polling every ``interval`` seconds). The rest mirrors ``reloadkit run``'s options.

    Raises :class:`~reloadkit.ReloadkitError` (a bad option, a busy port) before anything
    starts.
    """
    if under_supervisor():
        _run_child(main_func)
    config = _parent_config(
        bind=bind,
        extra_files=extra_files,
        exclude_patterns=exclude_patterns,
        interval=interval,
        reloader_type=reloader_type,
        watch=watch,
        include=include,
        exclude=exclude,
        ext=ext,
        imports=imports,
        backlog=backlog,
        debounce_ms=debounce_ms,
        stop_signal=stop_signal,
        stop_timeout=stop_timeout,
        overlap=overlap,
        ready_after=ready_after,
        verbosity=verbosity,
    )
    from reloadkit.supervisor.loop import supervise

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    raise SystemExit(supervise(config))


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
    *,
    bind: str | Sequence[str] | None,
    extra_files: Iterable[str] | None,
    exclude_patterns: Iterable[str] | None,
    interval: float,
    reloader_type: str,
    watch: Iterable[str],
    include: Iterable[str],
    exclude: Iterable[str],
    ext: Iterable[str],
    imports: bool,
    backlog: int | None,
    debounce_ms: int | None,
    stop_signal: str | int | signal.Signals | None,
    stop_timeout: float | None,
    overlap: bool | None,
    ready_after: float | None,
    verbosity: int,
) -> Config:
    """The supervisor's :class:`~reloadkit.config.settings.Config` (with ``imports``, the supervisor
    hands ``exclude`` to the child's tracker in :data:`EXCLUDE_ENV`)."""
    import signal as signals

    from reloadkit.child.sockets import parse_binds
    from reloadkit.config.settings import Config, from_environment, parse_signal
    from reloadkit.errors import ConfigError

    if reloader_type not in RELOADER_TYPES:
        raise ConfigError(f"unknown reloader_type {reloader_type!r}; expected one of {', '.join(RELOADER_TYPES)}")
    if reloader_type == "stat" and interval <= 0:
        raise ConfigError("interval must be greater than 0")
    patterns = (*_as_tuple(exclude_patterns), *_as_tuple(exclude))
    extra = tuple(os.path.abspath(path) for path in _as_tuple(extra_files))
    if imports:
        # What this process imported before the call, the child imports too: watched from the
        # start, whatever happens to the child's reports.
        seen = set(extra)
        extra += tuple(path for path in application_files(patterns) if path not in seen)
    settings = from_environment(os.environ)
    explicit: dict[str, object] = {
        "poll": float(interval) if reloader_type == "stat" else None,
        "debounce_ms": debounce_ms,
        "stop_timeout": stop_timeout,
        "ready_after": ready_after,
        "overlap": overlap,
    }
    if stop_signal is not None:
        explicit["stop_signal"] = (
            parse_signal(stop_signal) if isinstance(stop_signal, str) else signals.Signals(int(stop_signal))
        )
    settings.update({key: value for key, value in explicit.items() if value is not None})
    config = Config(
        command=tuple(child_argv()),
        binds=tuple(parse_binds(list(_as_tuple(bind)))),
        backlog=backlog,
        watch=_as_tuple(watch),
        include=_as_tuple(include),
        exclude=patterns,
        ext=tuple(item.strip() for value in _as_tuple(ext) for item in value.split(",") if item.strip()),
        extra_files=extra,
        imports=imports,
        verbosity=verbosity,
        **settings,  # type: ignore[arg-type]
    )
    return config
