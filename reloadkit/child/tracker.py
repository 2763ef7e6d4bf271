"""The library face of the reloader: :func:`run_with_reloader` and import tracking.

:func:`run_with_reloader` turns the calling process into the supervisor and re-runs the same
interpreter, with the same options and arguments, as the child; only the child calls
``main_func``. The child reports the files of the modules it imports (:class:`ImportTracker`)
over the supervisor's private notify socket, so exactly those files are watched.

This module imports nothing but ``os``, ``sys`` and ``time`` at module level: the ``--imports`` hook
(``_hook/sitecustomize.py``) loads it by path into every Python child, where start-up time
counts and where the child's own copy of reloadkit (if any) must not be imported for it.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # typing itself costs milliseconds in the hook

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from importlib.machinery import ModuleSpec
    from types import FrameType, ModuleType, TracebackType
    from typing import Any


__all__ = [
    "EXCLUDE_ENV",
    "MODULE_KEY",
    "WARM_REPORT_ENV",
    "ImportTracker",
    "PathFilter",
    "application_files",
    "current_tracker",
    "module_file",
    "prime",
    "send_lines",
    "send_modules",
    "send_watch",
    "source_file",
    "start_tracking",
]

#: Patterns (one per line) of module files not to report: the supervisor's ``exclude``.
EXCLUDE_ENV = "RELOADKIT_IMPORTS_EXCLUDE"
#: The notify key for "watch this file too" (the same as ``reloadkit.child.notify.WATCH_KEY``).
WATCH_KEY = "RELOADKIT_WATCH"
#: The notify key for "this process imported this installed module" (``NAME PATH``): what
#: the warm parent (``reloadkit.proc.warm``) imports before it forks the next generation.
MODULE_KEY = "RELOADKIT_MODULE"
#: Set to ``1`` when the supervisor wants installed modules reported (``--warm``).
WARM_REPORT_ENV = "RELOADKIT_WARM_REPORT"
#: The importer reported for what ``django.setup()`` imports (with the settings module's name
#: after it): the project checkpoint makes that call itself when nothing it imports is hot.
DJANGO_SETUP = "@django.setup/"
#: The names reloadkit's child side is loaded under by path (this tracker, adopt.py,
#: reloaders.py): no import by name finds them, so they are never reported for --warm.
PRIVATE_PREFIX = "_reloadkit_"
_MAX_DATAGRAM_TEXT = 30_000
_RESCAN_INTERVAL = 1.0
#: Modules a warm parent had imported before it forked this process: not reported again.
WARM_MODULES: frozenset[str] = frozenset()
#: What a warm parent's :meth:`PathFilter.keep` said of its module files, for the filter it
#: was asked with (:func:`prime`): a generation it forks does not stat them all again.
_PRIMED: tuple[tuple[object, ...], dict[str, str | None], tuple[str, ...]] = ((), {}, ())
_LIBRARY_DIR_NAMES = frozenset({"site-packages", "dist-packages"})


# --- which files are the application's ---------------------------------------------------


def source_file(path: str) -> str:
    """The source of a bytecode file (``__pycache__/m.cpython-312.pyc`` → ``m.py``), if it exists."""
    if not path.endswith((".pyc", ".pyo")):
        return path
    directory, name = os.path.split(path)
    if os.path.basename(directory) == "__pycache__":
        candidate = os.path.join(os.path.dirname(directory), name.split(".", 1)[0] + ".py")
    else:
        candidate = path[:-1]  # the legacy layout: m.pyc beside m.py
    return candidate if os.path.isfile(candidate) else path


def _library_roots() -> list[str]:
    """Directories of the standard library and of installed packages, as found in this process."""
    roots = [os.path.dirname(os.__file__)]
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for prefix in {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}:
        for lib in ("lib", "lib64", getattr(sys, "platlibdir", "lib")):
            roots.append(os.path.join(prefix, lib, version))
    for entry in sys.path:
        if entry and (os.path.basename(entry) in ("lib-dynload", *_LIBRARY_DIR_NAMES) or os.path.isfile(entry)):
            roots.append(entry)
    site = sys.modules.get("site")
    if site is not None:
        for name in ("getsitepackages", "getusersitepackages"):
            try:
                found = getattr(site, name)()
            except Exception:  # noqa: BLE001 - a patched or partial site module
                continue
            roots.extend([found] if isinstance(found, str) else list(found))
    return roots


def _importing_module() -> tuple[str | None, str | None]:
    """(the module whose body is running the import: the innermost ``<module>`` frame, the
    module that called ``django.setup()`` when that runs in between, else None).

    Inside ``django.setup()`` the importer is that call (:data:`DJANGO_SETUP` and the
    settings module): it imports the settings, the apps and their models, which can only be
    imported by it, and the checkpoint can make the same call.
    """
    try:
        frame: FrameType | None = sys._getframe(3)
    except ValueError:
        return None, None
    setup: str | None = None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "<module>":
            name = frame.f_globals.get("__name__")
            caller = name if isinstance(name, str) else None
            return (setup, caller) if setup is not None else (caller, None)
        if setup is None and code.co_name == "setup" and frame.f_globals.get("__name__") == "django":
            setup = DJANGO_SETUP + os.environ.get("DJANGO_SETTINGS_MODULE", "")
        frame = frame.f_back
    return setup, None


class PathFilter:
    """Decides which module files are the application's, and which path to watch for them.

    Kept: files whose real path lies outside the standard library and installed
    ``site-packages``/``dist-packages``. So an editable install (a path entry pointing at the
    project) and code symlinked into ``site-packages`` are kept, watched at their real path.
    Left out: reloadkit's own package, non-file modules, and files matching ``excludes``
    (``fnmatch``, where ``*`` also matches ``/``: against the whole path, the path relative
    to ``base`` and, for a pattern without ``/``, the basename).
    """

    def __init__(
        self,
        library_roots: Iterable[str],
        *,
        own_dir: str | None = None,
        excludes: Iterable[str] = (),
        base: str | None = None,
    ) -> None:
        self._dir_cache: dict[str, str] = {}
        self.base = os.path.abspath(base) if base else None
        resolved = {self._real_dir(root) for root in library_roots if root}
        self.library_roots = tuple(sorted(root.rstrip(os.sep) + os.sep for root in resolved if root != os.sep))
        self.own_dir = self._real_dir(own_dir).rstrip(os.sep) + os.sep if own_dir else None
        self.excludes = tuple(pattern for pattern in excludes if pattern)

    @classmethod
    def for_this_process(cls, excludes: Iterable[str] = ()) -> PathFilter:
        own = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the whole reloadkit package
        return cls(_library_roots(), own_dir=own, excludes=excludes, base=os.getcwd())

    def _real_dir(self, directory: str) -> str:
        real = self._dir_cache.get(directory)
        if real is None:
            real = os.path.realpath(directory)
            self._dir_cache[directory] = real
        return real

    def resolve(self, path: str) -> str:
        """The real path, with a cache per directory (module files come in directories)."""
        directory, name = os.path.split(os.path.abspath(path))
        full = os.path.join(self._real_dir(directory), name)
        return os.path.realpath(full) if os.path.islink(full) else full

    def is_library(self, real_path: str) -> bool:
        if real_path.startswith(self.library_roots):
            return True
        return not _LIBRARY_DIR_NAMES.isdisjoint(real_path.split(os.sep))

    def excluded(self, path: str) -> bool:
        if not self.excludes:
            return False
        import fnmatch

        candidates = [path]
        if self.base is not None and path.startswith(self.base.rstrip(os.sep) + os.sep):
            candidates.append(os.path.relpath(path, self.base))
        name = os.path.basename(path)
        return any(
            any(fnmatch.fnmatch(candidate, pattern) for candidate in candidates)
            or ("/" not in pattern and fnmatch.fnmatch(name, pattern))
            for pattern in self.excludes
        )

    def key(self) -> tuple[object, ...]:
        return (self.library_roots, self.own_dir, self.excludes, self.base)

    def keep(self, path: object) -> str | None:
        """The path to watch for a module file, or None if it is not the application's."""
        if not isinstance(path, str) or not path or path.startswith("<"):
            return None
        key, known, _kept = _PRIMED
        if path in known and key == self.key():
            return known[path]
        real = self.resolve(source_file(path))
        if not os.path.isfile(real) or self.is_library(real):
            return None
        if self.own_dir is not None and real.startswith(self.own_dir):
            return None
        if self.excluded(real) or (real != path and self.excluded(os.path.abspath(path))):
            return None
        return real


# --- reporting ---------------------------------------------------------------------------


def send_watch(paths: Sequence[str]) -> bool:
    """``reloadkit.child.notify.watch_files`` without importing the package: the same datagrams.

    The ``--imports`` hook uses this; a process that has reloadkit imported anyway uses
    ``watch_files`` itself.
    """
    return send_lines([f"{WATCH_KEY}={path}" for path in paths if "\n" not in path])


def send_lines(lines: Sequence[str], *, blocking: bool = True) -> bool:
    """Send ``KEY=VALUE`` lines to the supervisor's notify socket, in as few datagrams as fit.

    Not ``blocking``: False at once when the supervisor's queue is full (send them later).
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not os.environ.get("RELOADKIT_PID"):
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    # The C module: socket.py may be the module being imported right now (the tracker sends
    # from inside imports), half-initialised, without its ``socket`` class yet.
    import _socket

    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if size + len(line) + 1 > _MAX_DATAGRAM_TEXT and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    sent = True
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    try:
        sock.setblocking(blocking)
        for chunk in chunks:
            if chunk:
                try:
                    sock.sendto("\n".join(chunk).encode("utf-8"), address)
                except OSError:
                    sent = False
                    if not blocking:
                        break
    finally:
        sock.close()
    return sent


def send_modules(lines: Sequence[str]) -> bool:
    """The tracker's module reports: never wait for the supervisor (they are sent again)."""
    return send_lines(lines, blocking=False)


class ImportTracker:
    """Reports the files of the modules this process imports, as they are imported.

    A meta path finder placed first on ``sys.meta_path`` asks the finders after it for the
    spec (and returns that spec, so the import goes on unchanged) and reports the spec's file
    *before* the module runs: a module that then fails (a syntax error, an exception at
    import) is already watched, and fixing it restarts the child. One datagram per newly seen
    application file; standard library and installed packages are never sent.

    ``sys.modules`` is scanned at start, at most once a second during imports, on an
    uncaught exception (``sys.excepthook``, ``threading.excepthook``: the files of the
    ``<module>`` frames and a ``SyntaxError``'s file) and at exit, for modules that other
    finders or ``exec`` loaded.

    With ``modules`` (``--warm``), the installed modules (standard library and
    site-packages) are reported too, by name and file, at each import (a send that would
    wait for the supervisor is retried at the next) and at the scans: what the warm parent
    imports for the next generation. With
    ``watch=False`` no application file is sent (the supervisor watches directories).
    """

    #: Marks the finder, so that a second copy of this module (the hook's and the
    #: package's) finds the running tracker instead of starting another one.
    reloadkit_tracker = True

    def __init__(
        self,
        send: Callable[[Sequence[str]], object],
        path_filter: PathFilter,
        *,
        watch: bool = True,
        modules: Callable[[Sequence[str]], object] | None = None,
    ) -> None:
        self._send = send
        self._send_modules = modules
        self._watch = watch
        self._modules_pending: list[str] = []
        self._modules_seen: set[str] = set()
        self.filter = path_filter
        self.reported: set[str] = set()
        self._considered: set[str] = set()
        self._scanned: set[str] = set()
        self._pending: list[str] = []
        self._last_scan = 0.0
        self._installed = False
        self._excepthook: Callable[..., object] | None = None
        self._previous_excepthook: Callable[..., object] | None = None
        self._thread_hook: Callable[..., object] | None = None
        self._previous_thread_hook: Callable[..., object] | None = None
        self.off = False  # after the first unexpected error (see _broken)

    # the meta path finder protocol

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> ModuleSpec | None:
        """Find the spec with the finders after this one, and note its file."""
        if self.off:
            return None  # the import system asks the next finders itself
        finders = list(sys.meta_path)
        try:
            start = next(index for index, finder in enumerate(finders) if finder is self) + 1
        except StopIteration:
            return None
        spec = None
        for finder in finders[start:]:
            find = getattr(finder, "find_spec", None)
            if find is None:
                return None  # a legacy finder: let the import system carry on from here
            spec = find(fullname, path, target)
            if spec is not None:
                break
        try:
            origin = getattr(spec, "origin", None)
            if isinstance(origin, str) and (spec.has_location or os.path.isabs(origin)):  # type: ignore[union-attr]
                self._consider(origin)
                if self._send_modules is not None:
                    importer, caller = _importing_module()
                    if importer is not None and importer.startswith(DJANGO_SETUP):
                        self._consider_setup(importer, caller)
                    self._consider_module(fullname, origin, importer)
            self._maybe_rescan()
            self.flush()
        except Exception as exc:  # noqa: BLE001 - tracking must never break an import
            self._broken(f"importing {fullname}", exc)
        return spec

    def invalidate_caches(self) -> None:
        """Nothing cached here (``importlib.invalidate_caches`` calls every finder)."""

    # bookkeeping

    def _consider_setup(self, name: str, caller: str | None) -> None:
        """Report the ``django.setup()`` call as a project module imported by its caller."""
        django = sys.modules.get("django")
        path = getattr(django, "__file__", None)
        if name in self._modules_seen or not isinstance(path, str) or name == DJANGO_SETUP:
            return
        self._modules_seen.add(name)
        by = caller if caller and " " not in caller else ""
        self._modules_pending.append(f"{MODULE_KEY}={name}:{by} {os.path.abspath(path)}")

    def _consider_module(self, name: str, raw: str, importer: str | None = None) -> None:
        """Note a module (by name, for the warm parents), once: an installed one, or one of the
        project's, marked by the module whose body imported it (``NAME:IMPORTER PATH``; the
        importer may be empty), from which
        the supervisor knows what each project module imports when it is imported."""
        if name in self._modules_seen or name in WARM_MODULES or name == "__main__" or " " in name:
            return
        if name.startswith(PRIVATE_PREFIX):
            return  # reloadkit's child side, loaded by path under a private name: not importable by it
        self._modules_seen.add(name)
        try:
            real = self.filter.resolve(source_file(raw))
        except (OSError, ValueError):
            return
        if "\n" in real or (self.filter.own_dir is not None and real.startswith(self.filter.own_dir)):
            return
        if self.filter.is_library(real):
            self._modules_pending.append(f"{MODULE_KEY}={name} {real}")
        elif os.path.isfile(real) and not self.filter.excluded(real):
            by = importer if importer and importer != name and " " not in importer else ""
            self._modules_pending.append(f"{MODULE_KEY}={name}:{by} {real}")

    def _consider(self, raw: str) -> None:
        if raw in self._considered or not self._watch:
            return
        self._considered.add(raw)
        kept = self.filter.keep(raw)
        if kept is not None and kept not in self.reported:
            self.reported.add(kept)
            self._pending.append(kept)

    def consider(self, paths: Iterable[str]) -> None:
        """Report these files too (if they are the application's)."""
        for path in paths:
            self._consider(path)
        self.flush()

    def _maybe_rescan(self) -> None:
        now = time.monotonic()
        if now - self._last_scan >= _RESCAN_INTERVAL:
            self._last_scan = now
            self.scan()

    def scan(self) -> None:
        """Note the files of modules in ``sys.modules`` not looked at yet."""
        for name, module in list(sys.modules.items()):
            if name in self._scanned:
                continue
            filename = module_file(module)
            if filename is None:
                continue  # may get a file later (being initialised); look again next time
            self._scanned.add(name)
            self._consider(filename)
            if self._send_modules is not None:
                self._consider_module(name, filename)

    def flush(self, *, modules: bool = True) -> None:
        """Send what was noted since the last send (the installed modules only if ``modules``)."""
        if self.off:
            return
        batch, self._pending = self._pending, []
        if batch:
            try:
                self._send(batch)
            except Exception as exc:  # noqa: BLE001 - send_lines handles the socket's errors
                self._broken("sending", exc)
        if modules and self._modules_pending and self._send_modules is not None:
            lines, self._modules_pending = self._modules_pending, []
            try:
                if self._send_modules(lines) is False:  # the supervisor's queue is full: later
                    self._modules_pending = lines + self._modules_pending
            except Exception as exc:  # noqa: BLE001
                self._broken("sending", exc)

    def _broken(self, where: str, exc: BaseException) -> None:
        """The first unexpected error: one line on stderr, then tracking is off. A tracker
        that goes on half-working would lose watches silently; this one says so, once."""
        if self.off:
            return
        self.off = True
        self._pending, self._modules_pending = [], []
        message = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        try:
            sys.stderr.write(f"reloadkit: import tracking is off in pid {os.getpid()} after an error ({where}: {message});"
                             " files this process imports from now on are not watched\n")
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass  # no stderr to say it on

    def _safely(self, where: str, action: Callable[[], object]) -> None:
        """Run a hook's tracking part; an error in it turns tracking off (said once)."""
        if self.off:
            return
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - the hook it runs in must go on
            self._broken(where, exc)

    def report_exception(self, exc: BaseException | None) -> None:
        """Note the files an uncaught exception points at: where a module failed to import."""
        if self.off:
            return
        seen: set[int] = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            if isinstance(exc, SyntaxError) and exc.filename:
                self._consider(exc.filename)
            tb = exc.__traceback__
            while tb is not None:
                code = tb.tb_frame.f_code
                if code.co_name == "<module>":
                    self._consider(code.co_filename)
                tb = tb.tb_next
            exc = exc.__cause__ or exc.__context__
        self.scan()
        self.flush()

    # installing

    def install(self) -> None:
        """Go first on ``sys.meta_path``, report what is imported already, hook the exits."""
        if self._installed:
            return
        self._installed = True
        sys.meta_path.insert(0, self)
        main = sys.modules.get("__main__")
        main_file = getattr(main, "__file__", None)
        if isinstance(main_file, str):
            self._consider(main_file)
        elif sys.argv and sys.argv[0] not in ("", "-c", "-m", "-") and os.path.isfile(sys.argv[0]):
            self._consider(sys.argv[0])  # the hook runs before the script is loaded
        key, known, kept = _PRIMED
        if known and WARM_MODULES and key == self.filter.key():
            # Forked by a warm parent, which decided for the files of its modules (prime()):
            # going through them again would copy most of its memory (copy-on-write) and cost
            # the generation's start milliseconds. The next scan, a second on, sees the rest.
            for path in kept if self._watch else ():
                if path not in self.reported:
                    self.reported.add(path)
                    self._pending.append(path)
            self._last_scan = time.monotonic()
        else:
            self.scan()
        self.flush()

        previous = sys.excepthook

        def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            self._safely("reporting an exception", lambda: self.report_exception(exc))
            previous(kind, exc, tb)

        self._previous_excepthook, self._excepthook = previous, excepthook
        sys.excepthook = excepthook
        threading = sys.modules.get("threading")
        if threading is not None:
            self._hook_threads(threading)
        import atexit

        atexit.register(self._at_exit)

    def _hook_threads(self, threading: Any) -> None:
        previous = threading.excepthook

        def thread_hook(args: object) -> None:
            self._safely("reporting a thread's exception", lambda: self.report_exception(getattr(args, "exc_value", None)))
            previous(args)

        self._previous_thread_hook, self._thread_hook = previous, thread_hook
        threading.excepthook = thread_hook

    def _at_exit(self) -> None:
        if self._installed:
            self._safely("at exit", self._scan_and_flush)

    def _scan_and_flush(self) -> None:
        self.scan()
        self.flush()

    def uninstall(self) -> None:
        """Undo :meth:`install` (for tests); hooks replaced by others since are left alone."""
        if not self._installed:
            return
        self._installed = False
        sys.meta_path[:] = [finder for finder in sys.meta_path if finder is not self]
        if sys.excepthook is self._excepthook and self._previous_excepthook is not None:
            sys.excepthook = self._previous_excepthook
        threading: Any = sys.modules.get("threading")
        if threading is not None and threading.excepthook is self._thread_hook and self._previous_thread_hook is not None:
            threading.excepthook = self._previous_thread_hook
        import atexit

        atexit.unregister(self._at_exit)


def current_tracker() -> ImportTracker | None:
    """The tracker running in this process, whichever copy of this module started it."""
    for finder in sys.meta_path:
        try:
            if getattr(finder, "reloadkit_tracker", False) is True:
                return finder  # type: ignore[return-value]
        except Exception:  # noqa: BLE001 - an odd finder
            continue
    return None


def module_file(module: object) -> str | None:
    """A module's ``__file__``, read from its namespace: an attribute lookup would run a lazy
    module (importlib.util.LazyLoader runs it on the first one), which the program may never
    do. autobahn's vendored flatbuffers is one: run, it imports numpy, whose OpenBLAS starts
    a thread; in a warm parent that thread is gone from the generations, which then hang at
    exit joining it."""
    try:
        namespace = object.__getattribute__(module, "__dict__")
    except (AttributeError, TypeError):
        return None
    filename = namespace.get("__file__") if isinstance(namespace, dict) else None
    return filename if isinstance(filename, str) else None


def prime() -> None:
    """In a warm parent, before it forks: decide once for the files of the modules imported so
    far what a generation's tracker will decide (a filter like the one it builds: the same
    excludes, directory and libraries), so that a generation starts without a stat per module."""
    global _PRIMED
    excludes = [line for line in os.environ.get(EXCLUDE_ENV, "").split("\n") if line]
    path_filter = PathFilter.for_this_process(excludes)
    known: dict[str, str | None] = {}
    for module in list(sys.modules.values()):
        filename = module_file(module)
        if filename is not None:
            known[filename] = path_filter.keep(filename)
    _PRIMED = (path_filter.key(), known, tuple(dict.fromkeys(kept for kept in known.values() if kept is not None)))


def start_tracking(send: Callable[[Sequence[str]], object] | None = None) -> ImportTracker | None:
    """Start reporting imports to the supervisor; None when not under reloadkit.

    Idempotent: the ``--imports`` hook may have started it before the program ran.
    """
    existing = current_tracker()
    if existing is not None:
        return existing
    if not os.environ.get("NOTIFY_SOCKET") or not os.environ.get("RELOADKIT_PID"):
        return None
    excludes = [line for line in os.environ.get(EXCLUDE_ENV, "").split("\n") if line]
    tracker = ImportTracker(
        send or send_watch,
        PathFilter.for_this_process(excludes),
        watch=send is not None or os.environ.get("RELOADKIT_IMPORTS") == "1",
        modules=send_modules if os.environ.get(WARM_REPORT_ENV) == "1" else None,
    )
    tracker.install()
    return tracker


def application_files(excludes: Iterable[str] = ()) -> list[str]:
    """The application's files among the modules imported so far (and the main script)."""
    path_filter = PathFilter.for_this_process(excludes)
    found: dict[str, None] = {}
    for module in list(sys.modules.values()):
        kept = path_filter.keep(module_file(module))
        if kept is not None:
            found[kept] = None
    return list(found)
