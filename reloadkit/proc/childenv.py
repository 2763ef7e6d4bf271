"""What a child generation is given: its environment, and a source tree without stale bytecode."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence

from reloadkit.child.protocol import CONTRACT_VARIABLES, URL_VARIABLE
from reloadkit.net.binding import Listener, contract_environment
from reloadkit.net.wrappers import ADOPT_VARIABLE

__all__ = ["HOOK_DIR", "child_environment", "drop_stale_bytecode", "with_hook"]

HOOK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "child", "_hook")
_MAX_CHANGED_IN_ENV = 50
#: Variables that belong to one supervisor and must not reach its children from outside.
_OWN_VARIABLES = (
    *CONTRACT_VARIABLES,
    "NOTIFY_SOCKET",
    "RELOADKIT_PID",
    "RELOADKIT_GENERATION",
    "RELOADKIT_CHANGED",
    "RELOADKIT_IMPORTS",
    "RELOADKIT_IMPORTS_EXCLUDE",
    "RELOADKIT_WARM_REPORT",
    ADOPT_VARIABLE,
    URL_VARIABLE,
    "RELOADKIT_BINDS_ASK",
    "RELOADKIT_BINDS_HELD",
    "RELOADKIT_BINDS_LEARN",
    "RELOADKIT_ONE_RELOADER",
)


def drop_stale_bytecode(changed: Sequence[str]) -> int:
    """Remove the cached bytecode of changed ``.py`` files.

    CPython trusts a ``.pyc`` whose recorded source mtime (whole seconds) and size match, so an
    edit that keeps the size within the same second would be served stale by the new child.
    """
    removed = 0
    for path in changed:
        directory, name = os.path.split(path)
        stem, extension = os.path.splitext(name)
        if extension != ".py":
            continue
        cache = os.path.join(directory, "__pycache__")
        try:
            entries = os.listdir(cache)
        except OSError:
            continue
        for entry in entries:
            if entry.startswith(stem + ".") and entry.endswith(".pyc") and entry.count(".") >= 2:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(cache, entry))
                    removed += 1
    return removed


def child_environment(
    base: Mapping[str, str],
    listeners: Sequence[Listener],
    *,
    notify_address: str,
    generation: int,
    cookie: str,
    changed: Sequence[str] = (),
    imports: bool = False,
    import_excludes: Sequence[str] = (),
    report_modules: bool = False,
    through_wrapper: bool = False,
    one_reloader: bool = False,
) -> dict[str, str]:
    """The child's environment, all but ``LISTEN_PID``/``RELOADKIT_PID`` (set after fork)."""
    env = {key: value for key, value in base.items() if key not in _OWN_VARIABLES}
    env.update(contract_environment(listeners))
    env["NOTIFY_SOCKET"] = notify_address
    env["RELOADKIT_GENERATION"] = str(generation)
    env["RELOADKIT_TREE"] = cookie
    # `flask run --debug` would start werkzeug's reloader too: a second watcher over all of
    # sys.path. reloadkit reloads; the debugger stays on. An explicit setting wins.
    env.setdefault("FLASK_RUN_RELOAD", "false")
    if changed:
        env["RELOADKIT_CHANGED"] = os.pathsep.join(sorted(changed)[:_MAX_CHANGED_IN_ENV])
    if imports:
        env["RELOADKIT_IMPORTS"] = "1"
        if import_excludes:  # the child's tracker drops these before reporting them
            env["RELOADKIT_IMPORTS_EXCLUDE"] = "\n".join(import_excludes)
    if report_modules:  # the installed modules it imports, for the warm parent (warm.py)
        env["RELOADKIT_WARM_REPORT"] = "1"
    if through_wrapper and listeners:  # the hook sets LISTEN_PID in the process that finds the fds
        env[ADOPT_VARIABLE] = "1"
    if one_reloader:  # the framework's own reloader is off (child/reloaders.py)
        env["RELOADKIT_ONE_RELOADER"] = "1"
    if imports or report_modules or env.get(ADOPT_VARIABLE) or one_reloader:
        env = with_hook(env)
    return env


def with_hook(env: dict[str, str]) -> dict[str, str]:
    """``env`` with reloadkit's hook first on ``PYTHONPATH`` (once)."""
    existing = env.get("PYTHONPATH")
    if existing is not None and existing.split(os.pathsep)[0] == HOOK_DIR:
        return env
    return env | {"PYTHONPATH": HOOK_DIR + (os.pathsep + existing if existing else "")}
