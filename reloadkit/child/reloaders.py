"""One reloader: inside a generation, the framework's own reloader is off.

``manage.py runserver``, ``uvicorn --reload``, ``hypercorn --reload`` and ``fastapi dev`` each
start a reloader of their own: a second process that polls or watches every file, and restarts
the server on a change that reloadkit restarts it for too (two restarts per save, a polling
thread, a port the second server process binds again). Installed by the hook (or the warm
parent) when ``RELOADKIT_ONE_RELOADER=1``, this turns each one off as if the user had passed its
no-reload flag, and says so in one line:

* Django: ``django.utils.autoreload.run_with_reloader`` runs the server directly, exactly as
  ``runserver --noreload`` calls it (an error at start-up is still raised in the server).
* uvicorn (and ``fastapi dev``, which calls ``uvicorn.run(reload=True)``): ``Config(reload=True)``
  is ``Config(reload=False)``, without the ``reload_*`` options that only apply to reloading.
* hypercorn: ``Config.use_reloader`` stays False whatever is set.

werkzeug's reloader (``flask run --debug``) is turned off by ``FLASK_RUN_RELOAD=false`` instead.
A module already imported (by the warm parent) is patched at once; others when imported, by a
meta path finder that costs one dictionary look-up per import. Standard library only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import ModuleType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from typing import Any

__all__ = ["install"]

VARIABLE = "RELOADKIT_ONE_RELOADER"
_said: set[str] = set()


def _say(what: str, flag: str) -> None:
    """One line per run: in generation 0 (later generations do the same, silently)."""
    if what in _said or os.environ.get("RELOADKIT_GENERATION", "0") != "0":
        return
    _said.add(what)
    try:
        sys.stderr.write(f"reloadkit: {what} is off (as with {flag}): reloadkit restarts the server on changes\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _patch_django(module: ModuleType) -> None:
    if getattr(module.run_with_reloader, "_reloadkit", False):
        return

    def run_with_reloader(main_func: Callable[..., object], *args: object, **kwargs: object) -> None:
        _say("Django's autoreloader", "runserver --noreload")
        main_func(*args, **kwargs)

    run_with_reloader._reloadkit = True  # type: ignore[attr-defined]
    module.run_with_reloader = run_with_reloader  # type: ignore[attr-defined]


def _patch_uvicorn(module: ModuleType) -> None:
    config = module.Config
    if getattr(config.__init__, "_reloadkit", False):
        return
    real = config.__init__

    def __init__(self: object, *args: object, **kwargs: Any) -> None:  # noqa: N807 - the method it replaces
        if kwargs.get("reload"):
            _say("uvicorn's reloader", "no --reload")
            kwargs["reload"] = False
            for key in ("reload_dirs", "reload_includes", "reload_excludes", "reload_delay"):
                kwargs.pop(key, None)
        real(self, *args, **kwargs)

    __init__._reloadkit = True  # type: ignore[attr-defined]
    config.__init__ = __init__


def _patch_hypercorn(module: ModuleType) -> None:
    config = module.Config
    if isinstance(config.__dict__.get("use_reloader"), property):
        return

    def get(self: object) -> bool:
        return False

    def set_(self: object, value: object) -> None:
        if value:
            _say("hypercorn's reloader", "no --reload")

    config.use_reloader = property(get, set_)


_PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "django.utils.autoreload": _patch_django,
    "uvicorn.config": _patch_uvicorn,
    "hypercorn.config": _patch_hypercorn,
}


class _Finder:
    """Finds nothing itself: for the few modules above, the real spec, patched once loaded."""

    reloadkit_reloaders = True

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        finders = list(sys.meta_path)
        try:  # the finders after this one (another finder that delegates, the tracker, is before or after)
            start = next(index for index, finder in enumerate(finders) if finder is self) + 1
        except StopIteration:
            return None
        for finder in finders[start:]:
            find = getattr(finder, "find_spec", None)
            if find is None:
                return None  # a legacy finder: let the import system carry on from here
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        real_exec = getattr(loader, "exec_module", None)
        if real_exec is None:
            return spec

        def exec_module(module: ModuleType) -> None:
            real_exec(module)
            _apply(patch, module)

        loader.exec_module = exec_module
        return spec

    def invalidate_caches(self) -> None:
        pass


def _apply(patch: Callable[[ModuleType], None], module: ModuleType) -> None:
    try:
        patch(module)
    except Exception as exc:  # noqa: BLE001 - another version of the framework: leave it as it is
        sys.stderr.write(f"reloadkit: cannot turn off the reloader of {module.__name__}: {type(exc).__name__}: {exc}\n")


def install() -> None:
    """Patch what is imported already; patch the rest when it is imported."""
    for name, patch in _PATCHES.items():
        module = sys.modules.get(name)
        if module is not None:
            _apply(patch, module)
    if not any(getattr(finder, "reloadkit_reloaders", False) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
