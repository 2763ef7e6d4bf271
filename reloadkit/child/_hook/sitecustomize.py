"""reloadkit's ``--imports`` (and ``--through-wrapper``) hook, on the child's ``PYTHONPATH``.

In the process reloadkit started (``RELOADKIT_PID`` is this pid) with ``RELOADKIT_IMPORTS=1``
(or ``RELOADKIT_WARM_REPORT=1``: report the installed modules for ``--warm``), it starts the
import tracker before the program runs, so every module the program imports is
reported to the supervisor, without any change to the program. Anywhere else (the program's
own Python subprocesses inherit ``PYTHONPATH``) it does nothing. Either way it then removes
its directory from ``sys.path`` and runs the ``sitecustomize`` this one shadows, if any.

The tracker is loaded by path under a private name: the child may have no reloadkit
installed, or another version of it, which must stay the one the program imports. Errors
never stop the program: tracking is then off, with one line on stderr.

With ``RELOADKIT_BINDS_ASK`` set, in every Python process of the generation (the command and the
Python programs it starts), it also patches ``bind()`` to take the sockets reloadkit holds
(``adopt.py`` beside the tracker); with ``RELOADKIT_ONE_RELOADER=1``, it turns the framework's
own reloader off (``reloaders.py``).
"""

import os
import sys


def _reloadkit_start_tracking(here: str) -> None:
    if os.environ.get("RELOADKIT_WARM_FD") or os.environ.get("RELOADKIT_PID") != str(os.getpid()) or "1" not in (
        os.environ.get("RELOADKIT_IMPORTS"),
        os.environ.get("RELOADKIT_WARM_REPORT"),
    ):
        return
    try:
        _reloadkit_load(here, "_reloadkit_import_tracker", "tracker.py").start_tracking()  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - never stop the program for the tracker
        sys.stderr.write(f"reloadkit: not tracking imports in this process: {type(exc).__name__}: {exc}\n")


def _reloadkit_load(here: str, name: str, filename: str) -> object:
    """A module of reloadkit's child side, by path under a private name (see above)."""
    module = sys.modules.get(name)
    if module is None:
        import importlib.util

        path = os.path.join(os.path.dirname(here), filename)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError("cannot load " + path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return module


def _reloadkit_adopt_binds(here: str) -> None:
    """A ``bind()`` to an address reloadkit holds takes the held socket (child/adopt.py), in
    every Python process of the generation; not in the warm parent (its children install it)."""
    if not os.environ.get("RELOADKIT_BINDS_ASK") or os.environ.get("RELOADKIT_WARM_FD"):
        return
    if not os.environ.get("RELOADKIT_BINDS_HELD") and os.environ.get("RELOADKIT_BINDS_LEARN") != "1":
        return  # nothing held, nothing to learn: not even loaded

    def install() -> None:
        try:
            _reloadkit_load(here, "_reloadkit_adopt", "adopt.py").install()  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - never stop the program for adoption
            sys.stderr.write(f"reloadkit: not adopting binds in this process: {type(exc).__name__}: {exc}\n")

    if "socket" in sys.modules:
        install()
    else:  # a program that never imports socket binds nothing: it pays nothing
        sys.meta_path.insert(0, _ReloadkitAfterSocket(install))  # type: ignore[arg-type]


class _ReloadkitAfterSocket:
    """Runs ``then`` right after the ``socket`` module is imported (its bind is what adoption patches)."""

    def __init__(self, then: object) -> None:
        self.then = then

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        if name != "socket":
            return None
        sys.meta_path.remove(self)  # type: ignore[arg-type]
        import importlib.util

        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        real = getattr(loader, "exec_module", None)
        if real is not None:
            then = self.then

            def exec_module(module: object) -> None:
                real(module)
                then()  # type: ignore[operator]

            loader.exec_module = exec_module  # type: ignore[union-attr]
        return spec

    def invalidate_caches(self) -> None:
        pass


def _reloadkit_one_reloader(here: str) -> None:
    """The framework's own reloader is off in a generation (child/reloaders.py)."""
    if os.environ.get("RELOADKIT_ONE_RELOADER") != "1" or os.environ.get("RELOADKIT_WARM_FD"):
        return
    try:
        _reloadkit_load(here, "_reloadkit_reloaders", "reloaders.py").install()  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - never stop the program for this
        sys.stderr.write(f"reloadkit: cannot turn off the framework's reloader: {type(exc).__name__}: {exc}\n")


def _reloadkit_chain(here: str) -> None:
    """Leave ``sys.path`` as if this directory was never there, and run the next sitecustomize."""
    def real(entry: str) -> str:
        try:
            return os.path.realpath(entry or os.curdir)
        except (OSError, ValueError):
            return entry

    sys.path[:] = [entry for entry in sys.path if real(entry) != here]
    import importlib.machinery

    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None or spec.origin is None or real(os.path.dirname(spec.origin)) == here:
        return
    import importlib.util

    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


def _reloadkit_adopt_sockets() -> None:
    """``--through-wrapper``: the first Python process that finds the held sockets at fds 3..
    (a wrapper that did not exec started it) makes ``LISTEN_PID`` its own pid, so that
    gunicorn and ``reloadkit.sockets()`` take them. Only the presence of real sockets counts:
    a Python process that did not inherit them leaves the variables alone."""
    if os.environ.get("RELOADKIT_ADOPT_SOCKETS") != "1" or os.environ.get("LISTEN_PID") == str(os.getpid()):
        return
    count = os.environ.get("LISTEN_FDS", "")
    first = os.environ.get("LISTEN_FDS_FIRST_FD", "3") or "3"
    if not count.isdigit() or not first.isdigit() or int(count) < 1:
        return
    for fd in range(int(first), int(first) + int(count)):
        try:
            if os.fstat(fd).st_mode & 0o170000 != 0o140000:  # S_IFSOCK
                return
        except OSError:
            return
    os.environ["LISTEN_PID"] = str(os.getpid())


def _reloadkit_main() -> None:
    here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
    _reloadkit_adopt_sockets()
    _reloadkit_adopt_binds(here)
    _reloadkit_one_reloader(here)
    _reloadkit_start_tracking(here)
    _reloadkit_chain(here)


_reloadkit_main()
