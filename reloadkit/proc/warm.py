"""Warm reloads (the parent manager): the next generation is forked from a parent that imported the installed modules.

A reload of a real app costs its cold start, and that is mostly importing the standard
library and installed packages, which do not change between two saves. For a Python command
(an interpreter running a script, ``-m module`` or ``-c code``, or a console script whose
shebang names a Python) the supervisor keeps one *warm parent* (``reloadkit/child/warm_parent.py``): the
command's own interpreter, started with the command's own options, which imported the
installed modules the last generation reported (``RELOADKIT_MODULE`` lines from the import
tracker) and then forks each new generation; the fork runs the command exactly as a cold
child would (see ``reloadkit/child/warm_parent.py`` and ``docs/warm.rst``).

The warm set is learned: the first generation runs cold and reports what it imported; the
warm parent is built in the background while it serves and used from the next reload on.
What it imported must stay as it was: before each warm start the files of the warm modules,
the ``site-packages`` directories they came from, the project's dependency files, the
interpreter and the environment are compared with what they were when it was built (the
files while the burst of changes settles: :meth:`WarmParent.look_ahead`); any
change makes that start cold, with one line saying why, and the parent is rebuilt. Any
failure of the warm path does the same; nothing is lost.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reloadkit.child.protocol import ENVIRON_COPIES
from reloadkit.config.settings import Config
from reloadkit.errors import SpawnError
from reloadkit.proc import process
from reloadkit.proc.importorder import SourceFacts
from reloadkit.proc.process import Child
from reloadkit.proc.warmplan import (
    BOOTSTRAP,
    PER_GENERATION,
    ColdOnlyError,
    Fingerprint,
    ProjectImports,
    PythonCommand,
    eligible,
    parent_environment,
    parse_module_lines,
    python_command,
)

__all__ = [
    "BOOTSTRAP",
    "PER_GENERATION",
    "ColdOnlyError",
    "Fingerprint",
    "PythonCommand",
    "WarmParent",
    "eligible",
    "parent_environment",
    "parse_module_lines",
    "python_command",
]

_REPLY_TIMEOUT = 10.0
_BUILD_QUIET = 0.3  # build this long after the last report of a new module
_CHECKPOINT_QUIET = 0.25  # the checkpoint is rebuilt this long after the reload that made it stale
_BUILD_WAIT = 5.0  # a reload waits this long for a parent being built, then starts cold
_MAX_RETRIES = 12  # modules left out (a thread, a descriptor) before warm is given up
_MAX_BUILDS = 8  # builds that die before warm is given up
_ENVIRON_ROOM = 8192
_MAX_LEARNING_BUILDS = 3  # rebuilds for modules a warm generation imported that its parent had not
_SPARE_TIMEOUT = 1.0  # a spare that has not said its pid by then is not waited for


# --- the warm parent process -----------------------------------------------------------------------


@dataclass
class _Spare:
    """A generation forked ahead from a parent while a burst of changes settles: it waits on
    its own socket for the start's job (environment, fds), which is all a start then costs.
    Its pid comes on that socket once it is forked (``pid`` is None until :meth:`settle` has
    read it: the loop does not wait for the fork)."""

    sock: socket.socket
    pid: int | None = None
    refused: str | None = None  # the parent could not fork one: why

    def settle(self) -> bool:
        """Read the pid if it is not known yet (waiting for the fork, at most
        :data:`_SPARE_TIMEOUT`); False if there is no spare to use."""
        if self.pid is None and self.refused is None:
            message = _message(self.sock, _SPARE_TIMEOUT)
            if message and isinstance(message.get("spare"), int):
                self.pid = int(message["spare"])
            else:
                self.refused = str(message.get("nospare", "")) if message else ""
        return self.pid is not None

    def close(self) -> None:
        """Kill it by pid (read first if need be); a fork that never said its pid finds its
        socket closed and exits."""
        self.settle()
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.pid is not None:
            _kill(self.pid)


#: A warm parent being built: its pid, the supervisor's end of its socket, its fingerprint,
#: and how it was started (for the -v line).
_Build = tuple[int, socket.socket, Fingerprint, str]


@dataclass
class _Parent:
    pid: int
    sock: socket.socket
    env: dict[str, str]
    modules: set[str]
    fingerprint: Fingerprint
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    registered: bool = False
    added: set[str] = field(default_factory=set)  # its modules the parent before it had not
    spare: _Spare | None = None

    def drop_spare(self) -> None:
        if self.spare is not None:
            self.spare.close()
            self.spare = None

    def close(self) -> None:
        self.drop_spare()
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)


class WarmParent:
    """The supervisor's handle on its warm parent: learns the warm set, builds, forks from it.

    :meth:`spawn` returns a :class:`~reloadkit.proc.process.Child` like ``process.spawn``, or
    None when this generation must start cold (said in one line, unless it is the first).
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        enabled: bool,
        cwd: str,
        watch_roots: Sequence[str],
        selector: selectors.BaseSelector,
        environ: Mapping[str, str],
        info: Callable[[str], None],
        debug: Callable[[str], None],
        unsupported: str | None = None,
    ) -> None:
        self.argv = tuple(command)
        self.cwd = cwd
        self.watch_roots = tuple(os.path.realpath(root) for root in watch_roots)
        self.selector = selector
        self.info = info
        self.debug = debug
        self.command: PythonCommand | None = None
        self.modules: dict[str, str] = {}  # name -> file, in the order reported
        self.excluded: dict[str, str] = {}  # name -> why
        self.failed_imports: dict[str, str] = {}  # name -> why its import failed in a warm parent
        # Of those, the ones that failed for a module no cold start found either (bs4's html5lib
        # builder without html5lib): not imported by themselves, but not refused to their
        # importers, which meet the same ModuleNotFoundError as in a cold start.
        self.not_found: set[str] = set()
        self.parent: _Parent | None = None
        self.building: _Parent | None = None
        self.build_at: float | None = None
        self.base_env: dict[str, str] | None = None
        self.failures = 0
        self.tainted_builds = 0  # parents discarded because an import failed in them
        self.learning_builds = 0
        self.given_up: str | None = None
        self._said: set[str] = set()
        self._source_facts: SourceFacts | None = None
        self.spares = True  # False once a parent said it cannot fork one (no clone(2) with CLONE_PARENT)
        #: For the project checkpoint: the installed-modules parent it is forked from when it can be.
        self.origin: WarmParent | None = None
        self.forked_builds = True  # False once that parent said it cannot (as for spares)
        #: Set for the project checkpoint (checkpoint.py): it also holds the project's modules.
        self.project: ProjectImports | None = None
        if enabled and unsupported is not None:
            self.debug(f"--warm: every generation starts cold: {unsupported}")
        elif enabled:
            try:
                self.command = python_command(self.argv, environ, cwd)
            except ColdOnlyError as exc:
                self.debug(f"--warm: the command starts cold every time: {exc}")

    @classmethod
    def for_config(
        cls,
        config: Config,
        selector: selectors.BaseSelector,
        environ: Mapping[str, str],
        info: Callable[[str], None],
        debug: Callable[[str], None],
        *,
        unsupported: str | None = None,
    ) -> WarmParent:
        return cls(
            config.command,
            enabled=config.warm and config.reload,
            cwd=config.cwd,
            watch_roots=config.watch_roots,
            selector=selector,
            environ=environ,
            info=info,
            debug=debug,
            unsupported=unsupported,
        )

    # --- the supervisor's side -------------------------------------------------------------

    @property
    def reporting(self) -> bool:
        """Whether children should report the installed modules they import."""
        return self.command is not None and self.given_up is None

    def pids(self) -> set[int]:
        """Our processes: the parents and a spare (its pid read now if it was not: the clean-up
        of a stopping generation asks, and must not take it for an orphan)."""
        parents = [parent for parent in (self.parent, self.building) if parent is not None]
        for parent in parents:
            self._settle_spare(parent)
        return {parent.pid for parent in parents} | {
            parent.spare.pid for parent in parents if parent.spare is not None and parent.spare.pid is not None}

    def deadline(self) -> float | None:
        return self.build_at

    def learn(self, values: Iterable[str]) -> None:
        """Installed modules a child reported; a new one (re)builds the parent soon."""
        if not self.reporting:
            return
        new = False
        for name, path, importer in parse_module_lines(values):
            if name in self.modules or name in self.excluded:
                continue
            if importer is None:  # an installed module
                if not eligible(path, self.watch_roots):
                    continue
            elif self.project is None or not self.project.learn(name, path, importer):
                continue
            self.modules[name] = path
            current = self.building or self.parent
            if current is None or name not in current.modules:
                new = True
        if new and (self.parent is None or self.learning_builds < _MAX_LEARNING_BUILDS):
            if self.parent is not None and self.build_at is None:
                self.learning_builds += 1
            self.build_at = time.monotonic() + _BUILD_QUIET

    def expect(self, added: Mapping[str, str]) -> None:
        """Variables every later generation has (a socket the command bound is held from now
        on, bind adoption): the parent they fork from is built with them."""
        if self.base_env is None or all(self.base_env.get(key) == value for key, value in added.items()):
            return
        self.base_env = {**self.base_env, **added}
        if (self.parent is not None or self.building is not None) and self.build_at is None:
            self.build_at = time.monotonic() + _BUILD_QUIET

    def look_ahead(self, now: float, *, spare: bool = False) -> None:
        """A start is near: what it will check of the ready parent's files, checked now; with
        ``spare``, the generation is forked meanwhile too (the parent forks while this process
        goes on), and :meth:`_fork` only hands it its job."""
        parent = self.parent
        if parent is None or self.given_up is not None:
            return
        if spare and self.spares and parent.spare is None:
            sock = self._ask_spare(parent)
            if sock is not None:
                parent.spare = _Spare(sock)
        parent.fingerprint.look_ahead(now)

    def drop_spare(self) -> None:
        """The start went elsewhere (or cold): the spare forked ahead is not left waiting."""
        if self.parent is not None:
            self._end_spare(self.parent)

    def _end_spare(self, parent: _Parent) -> None:
        self._settle_spare(parent)
        if parent.spare is not None:
            self.debug(f"--warm: the generation forked ahead as pid {parent.spare.pid} is not used; ending it")
            parent.drop_spare()

    def tick(self, now: float) -> None:
        if self.build_at is not None and now >= self.build_at:
            self.build_at = None
            self._build()

    def spawn(
        self,
        env: Mapping[str, str],
        socket_fds: Sequence[int],
        *,
        generation: int,
        own_group: bool,
        stderr_fd: int | None,
    ) -> Child | None:
        """The next generation forked warm, or None (start it cold)."""
        if self.command is None or self.given_up is not None:
            return None
        self.base_env = parent_environment(env)
        if self.building is not None and (self.parent is None or self._stale(self.parent) is not None):
            self._wait_for_build()
        if self.parent is None and self.building is None and self.modules:
            self.build_at = None  # the reload came before the build was due: build now, and wait
            self._build()
            self._wait_for_build()
        parent = self.parent
        if parent is None:
            if generation > 0:
                self._say("no warm parent is ready yet")
            return None
        reason = self._stale(parent)
        if reason is not None:
            self._discard(parent)
            self.info(f"generation {generation} starts cold: {reason}; rebuilding the warm parent")
            self._build()
            return None
        started = time.monotonic()
        try:
            pid, ahead = self._fork(parent, env, socket_fds, own_group, stderr_fd)
        except OSError as exc:
            self._discard(parent)
            self.info(f"generation {generation} starts cold: {exc}; rebuilding the warm parent")
            self._build()
            return None
        self.debug(f"generation {generation} forked warm from pid {parent.pid} in {(time.monotonic() - started) * 1000:.1f} ms{ahead}")
        return Child(pid=pid, generation=generation, argv=self.argv)

    def spawn_checkpoint(
        self,
        env: Mapping[str, str],
        socket_fds: Sequence[int],
        *,
        generation: int,
        own_group: bool,
        stderr_fd: int | None,
        changed: Sequence[str],
    ) -> Child | None:
        """The next generation forked from the project checkpoint, or None (never waits):
        not built yet, or ``changed`` touches what it holds; then the edited modules turn hot
        and it is rebuilt in the background."""
        project = self.project
        if project is None or self.command is None or self.given_up is not None:
            return None
        self.base_env = parent_environment(env)
        if generation == 0:
            return None  # it learns from this one
        names, _unknown = project.names_of(changed)
        parent = self.parent
        reason = "it is not built yet" if parent is None else (
            project.unusable(parent.modules, changed) or self._reordered(parent, names) or self._stale(parent))
        rebuild = False
        if project.heat(names) and self.building is not None:
            self._discard(self.building)  # built for the hot set before these edits
            rebuild = True
        if reason is not None:
            if parent is not None:
                self._discard(parent)
            self.debug(f"generation {generation} does not start from the project checkpoint: {reason}")
            rebuild = rebuild or self.building is None  # one being built for this hot set will do
        if rebuild and self.build_at is None:
            self.build_at = time.monotonic() + _CHECKPOINT_QUIET
        if reason is not None or parent is None:
            return None
        started = time.monotonic()
        try:
            pid, ahead = self._fork(parent, env, socket_fds, own_group, stderr_fd)
        except OSError as exc:
            self._discard(parent)
            self.debug(f"generation {generation} does not start from the project checkpoint: {exc}")
            self.build_at = self.build_at or time.monotonic() + _CHECKPOINT_QUIET
            return None
        self.debug(f"generation {generation} forked warm from pid {parent.pid} (the project checkpoint)"
                   f" in {(time.monotonic() - started) * 1000:.1f} ms{ahead}")
        return Child(pid=pid, generation=generation, argv=self.argv)

    def failed(self, generation: int, *, off: str | None = None) -> None:
        """A generation forked from the parent failed where cold ones served (the supervisor's
        machine decides): rebuild the parent without the modules it imported first, or, with
        ``off``, give warm up for the session."""
        if off is not None:
            if self.given_up is None:
                self._give_up(off)
            return
        parent = self.parent
        if parent is None or self.given_up is not None:
            return
        self._discard(parent)
        for name in parent.added:
            self.failed_imports.setdefault(name, f"generation {generation} failed warm with it")
        without = f" without the {len(parent.added)} modules it imported first" if parent.added else ""
        self.info(f"--warm: generation {generation} failed warm; rebuilding the warm parent{without}")
        self.build_at = time.monotonic() + _BUILD_QUIET

    def close(self) -> None:
        for parent in (self.parent, self.building):
            if parent is not None:
                self._discard(parent)

    def __enter__(self) -> WarmParent:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- building --------------------------------------------------------------------------------

    @property
    def label(self) -> str:
        return "the project checkpoint" if self.project is not None else "the warm parent"

    def _say(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            self.info(f"--warm: {message}")

    def _build(self) -> None:
        """Start a warm parent in the background (the previous one serves until it is ready)."""
        if self.command is None or self.base_env is None or self.given_up is not None or not self.modules:
            return
        if self.building is not None:
            self._discard(self.building)
            self.building = None
        # Skipped: not imported by themselves. Refused: not imported at all; the checkpoint's
        # django.setup() imports installed modules that failed alone (no settings then).
        project_skip: set[str] = set()
        if self.project is not None:
            project_skip, stop = self.project.plan(self._facts())
            if stop is not None:
                self.debug(f"the project checkpoint holds nothing imported after this: {stop}")
        skip = set(self.failed_imports) | project_skip
        refuse = project_skip if self.project is not None else skip - self.not_found
        # The checkpoint imports a copy of the environment at its place (protocol.py).
        copies = set(ENVIRON_COPIES) if self.project is not None else set()
        names = [name for name in self.modules if name not in self.excluded or name in copies]
        held = [name for name in names if name not in skip]
        plan = {
            "modules": names,
            "exclude": sorted(set(self.excluded) - copies),
            "copies": sorted(copies),
            "skip": sorted(skip),
            "refuse": sorted(refuse),
            "quiet": self.project is not None,
            "path": self.project.roots(held) if self.project is not None else [],
            "project": [name for name in held if self.project is not None and name in self.project.files],
            "mode": self.command.mode,
            "target": self.command.file or self.command.target,
            "argv": list(self.command.argv),
        }
        started = self._fork_build(plan, held) or self._spawn_build(plan, held)
        if started is None:
            return
        pid, mine, fingerprint, how = started
        parent = _Parent(pid, mine, dict(self.base_env), set(held), fingerprint)
        if self.parent is not None:
            parent.added = parent.modules - self.parent.modules
        self.building = parent
        self.selector.register(mine, selectors.EVENT_READ, self._on_building)
        parent.registered = True
        what = "the project checkpoint" if self.project is not None else "a warm parent"
        self.debug(f"building {what} (pid {pid}{how}): {len(held)} modules")

    def _spawn_build(self, plan: dict[str, Any], held: Sequence[str]) -> _Build | None:
        """A fresh interpreter that imports the plan."""
        assert self.command is not None and self.base_env is not None
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        theirs.set_inheritable(True)
        env = dict(self.base_env)
        # Room for each generation's own environment in /proc/PID/environ (warm_parent.py).
        env["RELOADKIT_WARM_FD"] = str(theirs.fileno()) + " " * _ENVIRON_ROOM
        try:
            child = process.spawn(
                self.command.parent_argv(), env, keep_fds=[theirs.fileno()], own_group=True, generation=-1
            )
        except SpawnError as exc:
            mine.close()
            self._give_up(f"cannot start the warm parent: {exc}")
            return None
        finally:
            theirs.close()
        fingerprint = Fingerprint.take([self.modules[name] for name in held], self.cwd, self.command.interpreter)
        try:
            mine.send(json.dumps(plan).encode())
        except OSError as exc:
            mine.close()
            _kill(child.pid)
            self._failed(f"the warm parent did not take its plan ({exc})")
            return None
        return child.pid, mine, fingerprint, ""

    def _fork_build(self, plan: dict[str, Any], held: Sequence[str]) -> _Build | None:
        """The project checkpoint forked from the installed-modules parent (:attr:`origin`),
        which already holds the installed modules it would import: it imports only the
        project's own, so a checkpoint a first edit made stale is back in the time of the
        project's import (0.14 s for the FastAPI app), not a fresh interpreter's (0.55 s).
        The order it imports in is then what a generation forked from that parent has: the
        installed modules first. None where it cannot be forked so (then a fresh interpreter
        builds it): no ready parent that is current and has the same environment, or a parent
        that cannot fork with the supervisor as its parent."""
        origin = self.origin
        if origin is None or not self.forked_builds or self.command is None:
            return None
        source = origin.parent
        if (source is None or not source.ready or origin.building is not None or origin.build_at is not None
                or origin.given_up is not None or source.env != self.base_env or origin._stale(source) is not None):
            return None
        mine = _ask_fork(source, {"build": plan, "supervisor": os.getpid()})
        if mine is None:
            return None
        message = _message(mine, _SPARE_TIMEOUT)
        if message is None or not isinstance(message.get("building"), int):
            # A fork that comes later finds this socket closed, and exits.
            mine.close()
            if message is not None and "nobuild" in message:
                self.forked_builds = False
                self.debug(f"--warm: the project checkpoint is built by a fresh interpreter: {message['nobuild']}")
            return None
        # What the installed-modules parent's imports depend on, as it saw it when it imported
        # them (a change since is a change for this one too); the rest as it is now.
        fingerprint = Fingerprint.take(
            [self.modules[name] for name in held if name not in source.modules], self.cwd, self.command.interpreter)
        fingerprint.stats.update(source.fingerprint.stats)
        return int(message["building"]), mine, fingerprint, f", forked from pid {source.pid}"

    def _on_building(self) -> None:
        parent = self.building
        if parent is None:
            return
        message = _message(parent.sock, 0.0)
        if message is None:
            return
        self._unregister(parent)
        self.building = None
        if "ready" in message and self._left_out(message.get("failed")):
            # An import that failed there may have changed a module that stays (Django 6 raises
            # for a URL converter registered twice): never fork from it; the next parent does
            # not attempt those modules at all.
            self._discard(parent)
            self.tainted_builds += 1
            if self.tainted_builds > _MAX_BUILDS:
                self._give_up("imports kept failing in the warm parent")
            else:
                self.debug(f"--warm: discarded {self.label} pid {parent.pid}: an import failed in it; building one without")
                self._build()
        elif "ready" in message:
            parent.ready = True
            old, self.parent = self.parent, parent
            if old is not None:
                self._discard(old)
            self.failures = 0
            self.tainted_builds = 0
            mine = f" ({message.get('project', 0)} of the project's)" if self.project is not None else ""
            self.info(
                f"{self.label.removeprefix('the ')} pid {parent.pid} ready: {message.get('imported', 0)} modules imported{mine}"
                f" in {message.get('ms', 0)} ms; the next generations start from it"
            )
        elif "retry" in message:
            name, why = str(message["retry"]), str(message.get("why", ""))
            parent.close()
            self.excluded[name] = why
            self.info(f"--warm: {name} is left out of {self.label}: it {why}")
            if len(self.excluded) > _MAX_RETRIES:
                self._give_up("too many modules left out")
                return
            self._build()
        else:
            parent.close()
            self._failed(str(message.get("error") or "the warm parent exited while importing"))

    def _left_out(self, failed: object) -> bool:
        """Whether imports raised in the parent (``[name, why, the module it did not find or
        None]``): they are skipped by every later build (each generation imports them itself,
        as a cold one does). What one first imported was undone with it and tried by itself in
        the same build, which reports it if it fails alone: a failure that takes half of the
        installed packages along (Wagtail's app modules need settings) must not leave them all
        out. The first is said in one line, all at ``-v``."""
        new: dict[str, str] = {}
        tainted = False
        for entry in failed if isinstance(failed, list) else ():
            if not (isinstance(entry, list) and len(entry) == 3):
                continue
            name, why, missing = str(entry[0]), str(entry[1]), entry[2]
            tainted = True
            if self.project is not None and name in self.project.files:
                # A project module fails because it imports a hot one, or needs what only the
                # program sets up (Django's models): for this hot set only, and alone (what it
                # imported first is tried by itself).
                self.project.failed.add(name)
                self.debug(f"--warm: {name} stays out of the project checkpoint: {_first_sentence(why)}")
                continue
            new.setdefault(name, why)
            if isinstance(missing, str) and missing not in self.modules:
                self.not_found.add(name)
        if not new:
            return tainted
        fresh = [name for name in new if name not in self.failed_imports]
        self.failed_imports.update((name, new[name]) for name in fresh)
        if fresh:
            first = fresh[0]
            others = f"; so are {len(fresh) - 1} more modules (-v names them)" if len(fresh) > 1 else ""
            self.info(f"--warm: {first} is left out of {self.label}: its import failed there"
                      f" ({_first_sentence(new[first])}); each generation imports it itself, as a cold"
                      f" one does{others}")
            self.debug(f"--warm: left out: {', '.join(fresh)}")
        return True

    def _failed(self, why: str) -> None:
        self.failures += 1
        if self.failures >= _MAX_BUILDS:
            self._give_up(why)
        else:
            self.info(f"--warm: {why}")

    def _give_up(self, why: str) -> None:
        self.given_up = why
        self.info(f"--warm: {why}; every generation starts cold")
        self.close()

    def _wait_for_build(self) -> None:
        deadline = time.monotonic() + _BUILD_WAIT
        while self.building is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            ready, _, _ = _select([self.building.sock], remaining)
            if ready:
                self._on_building()

    def _unregister(self, parent: _Parent) -> None:
        if parent.registered:
            parent.registered = False
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(parent.sock)

    def _discard(self, parent: _Parent) -> None:
        self._end_spare(parent)
        self._unregister(parent)
        parent.close()
        if parent is self.parent:
            self.parent = None
        if parent is self.building:
            self.building = None

    # --- starting a generation from it -----------------------------------------------------------

    def _facts(self) -> SourceFacts:
        if self._source_facts is None or self._source_facts.project is not self.project:
            assert self.project is not None
            self._source_facts = SourceFacts(self.project)
        return self._source_facts

    def _reordered(self, parent: _Parent, names: Sequence[str]) -> str | None:
        """An edited module the checkpoint runs after modules a cold start runs after it may
        no longer allow that (it now registers on what they use: importorder.py)."""
        assert self.project is not None
        why = self.project.reordered(parent.modules, names, self._facts())
        return None if why is None else f"it holds modules imported after this: {why}"

    def _stale(self, parent: _Parent) -> str | None:
        if self.base_env is not None and self.base_env != parent.env:
            keys = sorted(set(self.base_env.items()) ^ set(parent.env.items()))
            return f"the environment changed ({keys[0][0]})"
        changed = parent.fingerprint.changed_by(time.monotonic())
        if changed is not None:
            return changed
        try:
            os.kill(parent.pid, 0)
        except OSError:
            return f"the warm parent (pid {parent.pid}) is gone"
        return None

    def _ask_spare(self, parent: _Parent) -> socket.socket | None:
        """Ask ``parent`` to fork a spare now; the socket it will talk on, or None."""
        return _ask_fork(parent, {"spare": True, "supervisor": os.getpid()})

    def _settle_spare(self, parent: _Parent) -> None:
        """The spare's pid, read if it was not; a parent that could not fork one is not asked again."""
        spare = parent.spare
        if spare is None or spare.settle():
            return
        parent.spare = None
        spare.close()
        if spare.refused:
            self.spares = False
            self.debug(f"--warm: no generation is forked ahead: {spare.refused}")
        else:
            self.debug(f"--warm: {self.label} (pid {parent.pid}) did not fork a generation ahead")

    def _fork(
        self,
        parent: _Parent,
        env: Mapping[str, str],
        socket_fds: Sequence[int],
        own_group: bool,
        stderr_fd: int | None,
    ) -> tuple[int, str]:
        """The generation's pid, and how it was forked: by the parent now, or ahead (a spare)."""
        assert self.command is not None
        command = self.command
        job = {
            "supervisor": os.getpid(),
            "pgid": os.getpgrp(),
            "own_group": own_group,
            "env": dict(env),
            "listen_pid": bool(socket_fds),
            "cwd": os.getcwd(),
            "mode": command.mode,
            "target": command.file or command.target,
            "file": command.file,
            "argv": list(command.argv),
            "orig_argv": list(command.orig_argv),
        }
        fds = [0, 1, 2 if stderr_fd is None else stderr_fd, *socket_fds]
        for fd in fds[:3]:
            try:
                os.fstat(fd)
            except OSError:
                raise OSError(f"fd {fd} is closed and cannot be passed on") from None
        self._settle_spare(parent)
        spare, parent.spare = parent.spare, None
        if spare is not None:
            try:
                pid = self._start(spare.sock, job, fds, f"the generation forked ahead from pid {parent.pid}")
            except OSError as exc:
                spare.close()  # killed by its pid
                self.debug(f"--warm: {exc}; forking the generation now")
            else:
                spare.sock.close()  # it is the generation now: not killed
                return pid, f" (forked ahead as pid {spare.pid})"
        # Replies left from a start that failed half-way are not this start's.
        while _message(parent.sock, 0.0) not in (None, {}):
            pass
        return self._start(parent.sock, job, fds, f"the warm parent (pid {parent.pid})"), ""

    def _start(self, sock: socket.socket, job: dict[str, Any], fds: Sequence[int], who: str) -> int:
        """Send the job; the generation's pid once it says it started (a fork it reported
        before it failed is killed)."""
        try:
            sock.sendmsg([json.dumps(job).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        except OSError as exc:
            raise OSError(f"{who} is gone ({exc.strerror or exc})") from None
        forked: int | None = None
        deadline = time.monotonic() + _REPLY_TIMEOUT
        while True:
            message = _message(sock, max(0.0, deadline - time.monotonic()))
            if message is None or message == {}:
                if forked is not None:
                    _kill(forked)
                raise OSError(f"{who} " + ("did not answer" if message is None else "died"))
            if "error" in message:
                if forked is not None:
                    _kill(forked)
                raise OSError(f"the warm start failed: {message['error']}")
            if "forked" in message:
                forked = int(message["forked"])
            elif "started" in message:
                return int(message["started"])


def _ask_fork(parent: _Parent, request: dict[str, Any]) -> socket.socket | None:
    """Ask ``parent`` for a fork that talks on a socket of its own (a spare, a checkpoint):
    the supervisor's end of that socket, or None if the parent is gone (the next start's
    checks find that)."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        parent.sock.sendmsg(
            [json.dumps(request).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [theirs.fileno()]))]
        )
    except OSError:
        mine.close()
        return None
    finally:
        theirs.close()
    return mine


def _first_sentence(text: str) -> str:
    sentence = text.split(". ", 1)[0]
    return sentence if len(sentence) <= 120 else sentence[:117] + "..."


def _message(sock: socket.socket, timeout: float) -> dict[str, Any] | None:
    """One JSON message from a warm parent (or a generation forked ahead), {} on the other
    end's close, None if nothing came in ``timeout``."""
    if not _select([sock], timeout)[0]:
        return None
    try:
        data = sock.recv(65536)
    except OSError:
        return {}
    if not data:
        return {}
    try:
        message = json.loads(data)
    except ValueError:
        return {"error": "the warm parent said something unreadable"}
    return message if isinstance(message, dict) else {}


def _select(socks: list[socket.socket], timeout: float) -> tuple[list[Any], list[Any], list[Any]]:
    import select

    while True:
        try:
            return select.select(socks, [], [], timeout)
        except InterruptedError:
            continue


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
