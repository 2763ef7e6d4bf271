"""Importing in the warm parent without leaving anything a fork must not inherit.

Loaded by path by ``warm_parent.py`` (under a private name, standard library only), in the
warm parent only. :class:`Guard` refuses the modules left out and names who starts a thread
or reads a per-generation variable when imported; :func:`attempt` imports one module and,
if that raises, undoes it; :func:`threads` and :func:`fds` are what a fork would copy.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import types
    from collections.abc import Mapping


def threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        threading = sys.modules.get("threading")
        return threading.active_count() if threading is not None else 1


def fds() -> dict:
    """The open descriptors and what they are (not the one listdir used: closed by now)."""
    found: dict = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in names:
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
    return found


def describe(link: str) -> str:
    if link.startswith("socket:"):
        return "a socket"
    if link.startswith("anon_inode:"):
        return link[len("anon_inode:"):].strip("[]") + " descriptor"
    return f"a file ({link})"


#: Variables whose value differs in each generation: a module that reads one when imported
#: would keep the warm parent's value, not the generation's.
PER_GENERATION = frozenset({"LISTEN_PID", "RELOADKIT_PID", "RELOADKIT_GENERATION", "RELOADKIT_CHANGED",
                             "RELOADKIT_BINDS_HELD", "RELOADKIT_BINDS_LEARN"})


#: Modules that keep a copy of the whole environment, taken when imported, as (module, class,
#: attribute): wsgiref's handlers (Django's runserver) put it into every request's environ.
#: The installed-modules parent leaves them out (its copy would lack what the program sets
#: before importing them, DJANGO_SETTINGS_MODULE); the project checkpoint imports them where
#: a cold start does, after the program's own set-up, and holds them: a generation's copy is
#: corrected where its environment differs (:func:`correct_snapshots`). Left out there,
#: wsgiref.handlers took Django's test client and with it every Wagtail module out.
SNAPSHOTS = (("wsgiref.handlers", "BaseHandler", "os_environ"),)


def correct_snapshots(parent: "Mapping[str, str]", generation: "Mapping[str, str]") -> None:
    """In a generation: each copy of the environment taken in the warm parent, where the two
    environments differ (the per-generation variables, the parent's own), as a cold import
    would have taken it. A key the program itself changed before the import is left as it is."""
    for module_name, holder, attribute in SNAPSHOTS:
        copy = getattr(getattr(sys.modules.get(module_name), holder, None), attribute, None)
        if not isinstance(copy, dict):
            continue
        for key in set(parent) | set(generation):
            if parent.get(key) == generation.get(key) or copy.get(key) != parent.get(key):
                continue
            if key in generation:
                copy[key] = generation[key]
            else:
                copy.pop(key, None)


#: Set up the terminal when imported (readline's line editor): the warm parent is not in the
#: terminal's foreground group, and a generation must start them on its own terminal.
TERMINAL_MODULES = frozenset({"readline", "_curses", "curses", "_curses_panel"})


class LeftOut(BaseException):
    """Raised by the guard for a module left out (not an ImportError: nobody may go on without it)."""


def importing_module() -> str | None:
    """The module whose body is running (the innermost ``<module>`` frame), if any."""
    try:
        frame: types.FrameType | None = sys._getframe(2)
    except ValueError:
        return None
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            name = frame.f_globals.get("__name__")
            return name if isinstance(name, str) else None
        frame = frame.f_back
    return None


class Guard:
    """While warming: refuses the modules left out, and names the module that reads a
    per-generation variable or starts a thread from Python when it is imported."""

    def __init__(self, exclude: set, snapshots: "set | frozenset" = frozenset()) -> None:
        self.exclude = exclude
        self.snapshots = snapshots  # may read the per-generation variables: corrected in each generation
        self.blocked = 0
        self.failed: set = set()  # left out with an import that failed in this build (exact names)
        self.refused = 0
        self.culprit: tuple | None = None
        self.thread_starter: str | None = None
        import threading  # nearly every program has it; here to see who starts a thread

        self._patchthreads(threading)

    def blocks(self, name: str) -> bool:
        return any(name == left or name.startswith(left + ".") for left in self.exclude)

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name in self.failed:
            self.refused += 1
            raise LeftOut(name)
        if self.blocks(name):
            self.blocked += 1
            raise LeftOut(name)
        return None

    def invalidate_caches(self) -> None:
        pass

    def _patchthreads(self, threading: object) -> None:
        guard = self
        thread = threading.Thread  # type: ignore[attr-defined]
        self._threading, self._start = threading, thread.start

        def start(this: object) -> None:
            if guard.thread_starter is None:
                guard.thread_starter = importing_module()
            guard._start(this)

        thread.start = start

    def environ(self, real: "os._Environ[str]") -> "os._Environ[str]":
        guard = self

        class _Watched(type(real)):  # type: ignore[misc]
            def __getitem__(self, key: str) -> str:
                if key in PER_GENERATION and guard.culprit is None:
                    module = importing_module()
                    if module is not None and module not in guard.snapshots:
                        guard.culprit = (module, f"reads {key} when imported")
                return super().__getitem__(key)

        real_ = real
        return _Watched(real_._data, real_.encodekey, real_.decodekey, real_.encodevalue, real_.decodevalue)  # type: ignore[attr-defined]

    def close(self) -> None:
        self._threading.Thread.start = self._start  # type: ignore[attr-defined]
        sys.meta_path[:] = [finder for finder in sys.meta_path if finder is not self]


#: What the tracker reports for ``django.setup()`` (see tracker.py), the settings module after it.
DJANGO_SETUP = "@django.setup/"


def _django_setup(settings: str) -> None:
    """The project checkpoint's ``django.setup()``: the settings, the apps and their models,
    as the program's own call imports them (which then finds the registry ready). The
    generation gets its own environment, so the variable set here does not reach it."""
    import importlib

    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    importlib.import_module("django").setup(set_prefix=False)


def attempt(name: str, guard: "Guard") -> tuple:
    """Import ``name``; if that fails, undo it: (why, the module it did not find, if that is
    why) or (None, None).

    An import that raises here may succeed in a generation (a Django app reads settings the
    generation's own code configures), so nothing of the attempt may stay: every module first
    imported during it is removed from ``sys.modules`` and from its package's attributes (a
    package keeps a half-initialised submodule as an attribute, and ``from pkg import sub``
    in a generation would then find it instead of importing it), and a module it replaced is
    put back. An import that went on without a module left out so is undone too.
    """
    import importlib

    before = sys.modules.copy()
    refused = guard.refused
    unraisable: list = []  # "Exception ignored in ..." while importing: only said if the import succeeds
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    why: str | None = None
    missing: str | None = None
    try:
        if name.startswith(DJANGO_SETUP):
            _django_setup(name[len(DJANGO_SETUP):])
        else:
            importlib.import_module(name)
    except LeftOut as exc:
        why = f"imports {exc}, left out"
    except BaseException as exc:  # noqa: BLE001 - an import that fails here is the generation's to do
        why = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        if isinstance(exc, ModuleNotFoundError):
            missing = exc.name
    else:
        why = None if guard.refused == refused else "went on without a module left out"
    finally:
        sys.unraisablehook = previous_hook
    if why is None:
        for args in unraisable:
            previous_hook(args)
        return None, None
    added = {key: module for key, module in sys.modules.items() if before.get(key) is not module}
    for key in added:
        sys.modules.pop(key, None)
    for key, module in before.items():
        if sys.modules.get(key) is not module:
            sys.modules[key] = module
    gone = {id(module) for module in added.values()}
    for key in added:
        package, _, attribute = key.rpartition(".")
        try:  # its namespace, not its attributes: a lookup would run a lazy module (tracker.py)
            namespace = object.__getattribute__(sys.modules[package], "__dict__")
        except (KeyError, AttributeError, TypeError):
            continue
        if isinstance(namespace, dict) and id(namespace.get(attribute)) in gone:
            del namespace[attribute]
    return why, missing
