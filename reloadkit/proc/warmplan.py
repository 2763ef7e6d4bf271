"""Which commands start warm, and what may stay warm: the pure half of warm reloads.

:mod:`reloadkit.proc.warm` runs the warm parent; this module only reads: how a Python command
starts (:func:`python_command`: an interpreter with a script, ``-m`` or ``-c``, or a console
script whose ``#!`` names a Python), which reported modules may stay warm (:func:`eligible`),
and what a warm parent's imports depend on (:class:`Fingerprint`: a change makes the next
start cold). See docs/warm.rst.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from reloadkit.child.protocol import GENERATION_VARIABLES
from reloadkit.errors import SpawnError
from reloadkit.proc import process
from reloadkit.proc.importorder import ImportFacts, conflict

__all__ = [
    "BOOTSTRAP",
    "LOOK_AHEAD_FOR",
    "PER_GENERATION",
    "PROJECT_FILES",
    "ColdOnlyError",
    "Fingerprint",
    "PythonCommand",
    "eligible",
    "parent_environment",
    "ProjectImports",
    "parse_module_lines",
    "python_command",
    "warm_unsupported",
]

BOOTSTRAP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "child", "warm_parent.py")
#: The variables that differ from one generation to the next: not the warm parent's own.
#: The others are (its ``/proc/PID/environ`` is what a warm generation's shows there), and
#: the hook does nothing in a process with ``RELOADKIT_WARM_FD``.
PER_GENERATION = (*GENERATION_VARIABLES, "RELOADKIT_WARM_FD")
#: Files whose change means the installed packages may have changed.
PROJECT_FILES = (
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "requirements.txt",
    "requirements-dev.txt",
    "Pipfile",
    "Pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "pdm.lock",
)
#: Seconds a look ahead at the parents' files (:meth:`Fingerprint.look_ahead`) stands for a
#: look at the start: a save's burst ends 5 ms after its first change; a longer one is looked
#: at again.
LOOK_AHEAD_FOR = 0.02
_PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)*)?$")
_OPTIONS_WITH_VALUE = frozenset("WX")
_NO_WARM_FLAGS = frozenset("ihV?")  # interactive, help, version: nothing to keep warm
_BOOT_CODE = (
    "import importlib.util as u,sys;s=u.spec_from_file_location('_reloadkit_warm',{path!r});"
    "m=u.module_from_spec(s);sys.modules[s.name]=m;s.loader.exec_module(m);del u,s;m.run(m.main())"
)


def warm_unsupported(*, subreaper: bool, proc: str = "/proc") -> str | None:
    """Why this platform cannot start generations warm, or None.

    A warm generation is the warm parent's grandchild and must re-parent to the supervisor
    (``PR_SET_CHILD_SUBREAPER``: Linux only) to be reaped, stopped and tree-killed as a cold
    one; the parent tells threads and descriptors opened by an import from ``/proc/self``.
    Without them every reload would wait for a re-parenting that never comes, then start cold.
    """
    if not subreaper:
        return "this platform has no child subreaper (PR_SET_CHILD_SUBREAPER) for warm generations to re-parent to"
    if not os.path.isdir(os.path.join(proc, "self", "fd")):
        return f"no {proc} to see the warm parent's threads and descriptors in"
    return None


class ColdOnlyError(Exception):
    """The command cannot start warm (the message says why); it runs cold."""


@dataclass(frozen=True)
class PythonCommand:
    """How a Python command starts, to start it from a warm parent the same way."""

    interpreter: str  # the executable to run the warm parent with
    argv0: str  # sys.orig_argv[0] of a cold child (the interpreter as the command names it)
    options: tuple[str, ...]  # interpreter options before the script / -m / -c
    mode: str  # "script", "-m" or "-c"
    target: str  # the script as run, the module name or the code
    file: str  # the script's absolute path ("" for -m and -c)
    argv: tuple[str, ...]  # sys.argv of a cold child
    orig_argv: tuple[str, ...]  # sys.orig_argv of a cold child

    def parent_argv(self) -> list[str]:
        return [self.argv0, *self.options, "-c", _BOOT_CODE.format(path=BOOTSTRAP)]


def _is_python(path: str) -> bool:
    if _PYTHON_NAME.match(os.path.basename(path)):
        return True
    try:
        return bool(_PYTHON_NAME.match(os.path.basename(os.path.realpath(path))))
    except OSError:
        return False


def _shebang(path: str) -> tuple[str, str | None] | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode(errors="replace").strip()
    parts = line.split(None, 1)
    if not parts:
        return None
    return parts[0], (parts[1].strip() if len(parts) == 2 else None)


def python_command(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> PythonCommand:
    """What the command runs, when it is a Python one we can start warm; else :class:`ColdOnlyError`."""
    try:
        path = process.resolve_command(argv, env)
    except SpawnError as exc:
        raise ColdOnlyError(str(exc)) from None
    if _is_python(path):
        return _interpreter_command(path, argv, cwd)
    shebang = _shebang(path)
    if shebang is None:
        raise ColdOnlyError(f"{argv[0]} is not a Python interpreter or a Python script")
    interpreter, argument = shebang
    options: tuple[str, ...] = ()
    if os.path.basename(interpreter) == "env":
        if argument is None or argument.startswith("-") or " " in argument:
            raise ColdOnlyError(f"{argv[0]}: cannot tell the interpreter from its #! line")
        argv0 = argument
        found = shutil.which(argument, path=env.get("PATH", os.defpath))
        if found is None:
            raise ColdOnlyError(f"{argv[0]}: {argument} not found")
        interpreter = found
    else:
        argv0 = interpreter
        if argument is not None:
            options = (argument,)
    if not _is_python(interpreter):
        raise ColdOnlyError(f"{argv[0]} is not a Python script")
    if any(not option.startswith("-") or set(option[1:]) & _NO_WARM_FLAGS for option in options):
        raise ColdOnlyError(f"{argv[0]}: its #! line has options reloadkit cannot repeat")
    script = os.path.join(cwd, path)
    return PythonCommand(
        interpreter=interpreter,
        argv0=argv0,
        options=options,
        mode="script",
        target=path,
        file=os.path.abspath(script),
        argv=(path, *argv[1:]),
        orig_argv=(argv0, *options, path, *argv[1:]),
    )


def _interpreter_command(path: str, argv: Sequence[str], cwd: str) -> PythonCommand:
    index = 1
    options: list[str] = []
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            index += 1
            break
        if arg == "-" or not arg.startswith("-"):
            break
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs":
                options += argv[index : index + 2]
                index += 2
                continue
            raise ColdOnlyError(f"{arg}: nothing to keep warm")
        flags = arg[1:]
        if flags[0] in "mc":
            mode = "-" + flags[0]
            target = flags[1:] if len(flags) > 1 else (argv[index + 1] if index + 1 < len(argv) else None)
            if target is None:
                raise ColdOnlyError(f"{arg} without an argument")
            rest = argv[index + (1 if len(flags) > 1 else 2) :]
            return PythonCommand(
                interpreter=path,
                argv0=argv[0],
                options=tuple(options),
                mode=mode,
                target=target,
                file="",
                argv=(mode, *rest),
                orig_argv=tuple(argv),
            )
        if flags[0] in _OPTIONS_WITH_VALUE:
            width = 1 if len(flags) > 1 else 2
            options += argv[index : index + width]
            index += width
            continue
        if set(flags) & set("mcWX"):
            raise ColdOnlyError(f"{arg}: combined options reloadkit cannot repeat")
        if set(flags) & _NO_WARM_FLAGS:
            raise ColdOnlyError(f"{arg}: nothing to keep warm")
        options.append(arg)
        index += 1
    if index >= len(argv):
        raise ColdOnlyError("an interactive interpreter")
    script = argv[index]
    if script == "-":
        raise ColdOnlyError("a program read from stdin")
    file = os.path.abspath(os.path.join(cwd, script))
    if not os.path.isfile(file) or file.endswith((".pyc", ".pyz", ".zip")):
        raise ColdOnlyError(f"{script} is not a Python source file")
    return PythonCommand(
        interpreter=path,
        argv0=argv[0],
        options=tuple(options),
        mode="script",
        target=script,
        file=file,
        argv=tuple(argv[index:]),
        orig_argv=tuple(argv),
    )


# --- what stays warm ---------------------------------------------------------------------------


def parse_module_lines(values: Iterable[str]) -> Iterator[tuple[str, str, str | None]]:
    """``NAME PATH`` (an installed module) or ``NAME:IMPORTER PATH`` (the project's; IMPORTER,
    the module whose body imported it, may be empty) report lines (``RELOADKIT_MODULE``) as
    (name, path, importer): None for an installed module."""
    for value in values:
        head, _, path = value.partition(" ")
        name, colon, importer = head.partition(":")
        if name and path and os.path.isabs(path):
            yield name, path, importer if colon else None


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def eligible(path: str, watch_roots: Sequence[str]) -> bool:
    """An installed module's file may stay warm unless it lies in a watched tree (a virtualenv
    inside the project, whose directory the watcher skips, is not the project's code)."""
    for root in watch_roots:
        if _under(path, root):
            relative = os.path.relpath(path, root).split(os.sep)
            return "site-packages" in relative or "dist-packages" in relative
    return True


def _packages_dir(path: str) -> str | None:
    parts = path.split(os.sep)
    for index in range(len(parts) - 1, 0, -1):
        if parts[index] in ("site-packages", "dist-packages", "lib-dynload"):
            return os.sep.join(parts[: index + 1])
    return None


def _stat(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


@dataclass
class Fingerprint:
    """What a warm parent's imports depend on; :meth:`changed` says what changed since."""

    stats: dict[str, tuple[str, tuple[int, int] | None]] = field(default_factory=dict)
    ahead: tuple[float, str | None] | None = None  # (when, what changed) of the last look ahead

    @classmethod
    def take(cls, module_files: Iterable[str], project_dir: str, interpreter: str) -> Fingerprint:
        items: dict[str, str] = {}
        for path in module_files:
            items[path] = "module"
            directory = _packages_dir(path)
            if directory is not None:
                items[directory] = "packages"
        for name in PROJECT_FILES:
            items[os.path.join(project_dir, name)] = "project"
        items[interpreter] = "interpreter"
        with contextlib.suppress(OSError):
            items[os.path.realpath(interpreter)] = "interpreter"
        return cls({path: (kind, _stat(path)) for path, kind in items.items()})

    def look_ahead(self, now: float) -> None:
        """Check now, while the supervisor waits out a burst of changes: a look stats every
        file the parent imported, which grows with the project (2 ms at 640 models), and the
        start that follows the burst should not wait for it."""
        self.ahead = (now, self.changed())

    def changed_by(self, now: float) -> str | None:
        """What changed, from the look ahead if it is at most :data:`LOOK_AHEAD_FOR` old: a file
        changed since is one a cold start would import too, and the watcher says so if it is
        the project's (a burst that lasts longer is looked at again)."""
        if self.ahead is not None and 0.0 <= now - self.ahead[0] <= LOOK_AHEAD_FOR:
            return self.ahead[1]
        return self.changed()

    def changed(self) -> str | None:
        for path, (kind, seen) in self.stats.items():
            if _stat(path) != seen:
                if kind == "packages":
                    return f"installed packages changed ({path})"
                if kind == "interpreter":
                    return f"the interpreter changed ({path})"
                if kind == "project":
                    return f"{os.path.basename(path)} changed"
                return f"a warm module changed ({path})"
        return None


def parent_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The generation's environment without what differs between generations."""
    return {key: value for key, value in env.items() if key not in PER_GENERATION}


# --- the project checkpoint (checkpoint.py) -------------------------------------------------------

#: The tracker's importer for what ``django.setup()`` imports (child/tracker.py).
DJANGO_SETUP = "@django.setup/"
#: Distinct modules kept hot (most recently edited): an older one is held again.
HOT_LIMIT = 8


@dataclass
class ProjectImports:
    """The project's modules in first-import order, who imported each, and what is hot."""

    files: dict[str, str] = field(default_factory=dict)  # name -> file
    importer: dict[str, str] = field(default_factory=dict)  # name -> the module whose body imported it
    hot: list[str] = field(default_factory=list)  # most recent last
    failed: set[str] = field(default_factory=set)  # failed in a checkpoint with this hot set
    # Real path -> name of files, kept as it grows: resolving every file's path again on
    # each reload grows with the project (6 ms at 640 models).
    _by_real: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, path in self.files.items():
            self._by_real[os.path.realpath(path)] = name

    def learn(self, name: str, path: str, importer: str) -> bool:
        """A project module a generation imported; True if it is new."""
        if name in self.files or name == "__main__" or name.startswith("__main__."):
            return False
        self.files[name] = path
        self._by_real[os.path.realpath(path)] = name
        if importer:
            self.importer[name] = importer
        return True

    def roots(self, names: Iterable[str]) -> list[str]:
        """The directories these modules were imported from (``/p`` for ``shop.main`` at
        ``/p/shop/main.py``): the program may add them to ``sys.path`` only when it runs
        (uvicorn, gunicorn and flask add the working directory), the checkpoint needs them
        from the start."""
        found: list[str] = []
        for name in names:
            path = self.files.get(name)
            if path is None or name.startswith(DJANGO_SETUP):
                continue
            parts = name.split(".")
            directory = os.path.dirname(path)
            if os.path.splitext(os.path.basename(path))[0] == "__init__":
                directory = os.path.dirname(directory)
            for _ in parts[:-1]:
                directory = os.path.dirname(directory)
            if directory not in found:
                found.append(directory)
        return found

    def names_of(self, paths: Iterable[str]) -> tuple[list[str], list[str]]:
        """(the modules whose files these are, the paths that are no known module's file)."""
        names: list[str] = []
        unknown: list[str] = []
        for path in paths:
            name = self._by_real.get(os.path.realpath(path))
            if name is None:
                unknown.append(path)
            elif name not in names:
                names.append(name)
        return names, unknown

    def heat(self, names: Iterable[str]) -> bool:
        """Make ``names`` hot (the oldest beyond :data:`HOT_LIMIT` cool down); True if the
        hot set changed, which also forgets the failures seen with the old one."""
        before = set(self.hot)
        for name in names:
            if name in self.hot:
                self.hot.remove(name)
            self.hot.append(name)
        del self.hot[:-HOT_LIMIT]
        if set(self.hot) == before:
            return False
        self.failed.clear()
        return True

    def closure(self, name: str) -> set[str]:
        """The modules first imported while ``name`` was imported (their importers lead to it)."""
        inside: set[str] = set()
        for other in self.files:
            importer = self.importer.get(other, "")
            hops = 0
            while importer and hops < len(self.files):
                if importer == name:
                    inside.add(other)
                    break
                importer = self.importer.get(importer, "")
                hops += 1
        return inside

    def owner(self, dotted: str) -> str | None:
        """The project module a dotted name is of (``shop.db`` for ``shop.db.Base.metadata``)."""
        name = dotted
        while name:
            if name in self.files:
                return name
            name = name.rpartition(".")[0]
        return None

    def _modules_of(self, dotted: str) -> list[str]:
        """The known modules an import of ``dotted`` imports, packages first (``shop``,
        ``shop.models``, ``shop.models.m1`` for ``shop.models.m1.User``)."""
        parts = dotted.split(".")
        return [prefix for end in range(1, len(parts) + 1) if (prefix := ".".join(parts[:end])) in self.files]

    def misplaced(self, name: str, held: Iterable[str], facts: Callable[[str], ImportFacts]) -> str | None:
        """Why ``name`` may not be imported after ``held`` (modules the checkpoint holds that a
        cold start imports after it); None if the order is invisible (importorder.py)."""
        mine = facts(name)
        if mine.bound is not None:
            return f"{name} {mine.bound}"
        inside = self.closure(name)  # imported during its own import in a cold start too
        held = list(held)
        # What a cold start of its source now imports, in that order: the modules it imported
        # first when the order was recorded, in the same order, and none that came after it.
        imported = list(dict.fromkeys(module for dotted in mine.imports for module in self._modules_of(dotted)))
        children = [other for other in held if self.importer.get(other) == name]
        missing = next((child for child in children if child not in imported), None)
        if missing is not None:
            return f"{name} no longer imports {missing}, which it imported first"
        if [module for module in imported if module in children] != children:
            return f"{name} imports {', '.join(children)} in another order now"
        for other in held:
            if other in inside:
                continue
            if other in imported:
                return f"{name} now imports {other}, which a cold start imported after it"
            why = conflict(mine, facts(other), self.owner)
            if why is not None:
                return f"{name} {why} ({other})"
        return None

    def plan(self, facts: Callable[[str], ImportFacts] | None = None) -> tuple[set[str], str | None]:
        """What a checkpoint never imports, and why it holds no module after the point it stops at.

        Every hot (or failed) module and the modules whose import imported one stay out: the
        generation imports them itself, after what the checkpoint holds. A module of these
        that a cold start imports before some the checkpoint holds runs later than in a cold
        start: with ``facts`` (what each import reads and writes), that is allowed where it is
        invisible (:meth:`misplaced`), and the checkpoint stops at the first module where it
        is not: from there on, nothing is held. Without ``facts`` it stops at the first hot
        module: the order in which model modules register their tables (SQLAlchemy's
        metadata, Django's app registry) is what a cold start's is.
        """
        poison = [name for name in [*self.hot, *self.failed] if name in self.files]
        order = list(self.files)
        seen: set[str] = set()
        for name in poison:
            importer = self.importer.get(name, "")
            while importer in self.files and importer not in seen:
                seen.add(importer)
                importer = self.importer.get(importer, "")
        moved = set(poison) | seen
        place = {name: index for index, name in enumerate(order)}
        why: str | None = None
        if facts is None:
            cut = min((place[name] for name in poison), default=len(order))
        else:
            cut = len(order)
            for name in sorted(moved, key=place.__getitem__):
                if place[name] >= cut:
                    break
                later = [other for other in order[place[name] + 1 : cut] if other not in moved]
                why = self.misplaced(name, later, facts) if later else None
                if why is not None:
                    cut = place[name]
        return moved | set(order[cut:]), why

    def skipped(self, facts: Callable[[str], ImportFacts] | None = None) -> set[str]:
        return self.plan(facts)[0]

    def reordered(self, held: Iterable[str], names: Iterable[str], facts: Callable[[str], ImportFacts]) -> str | None:
        """Why edited modules a checkpoint holding ``held`` does not hold may no longer be
        imported after the modules it holds that follow them; None if they still may."""
        held_set = set(held)
        order = list(self.files)
        for name in names:
            if name in held_set or name not in self.files:
                continue
            later = [other for other in order[order.index(name) + 1 :] if other in held_set]
            why = self.misplaced(name, later, facts) if later else None
            if why is not None:
                return why
        return None

    def unusable(self, held: Iterable[str], changed: Iterable[str]) -> str | None:
        """Why a checkpoint holding ``held`` cannot start the next generation after
        ``changed``; None if every changed file is a module it does not hold."""
        names, unknown = self.names_of(changed)
        if unknown:
            return f"{os.path.basename(unknown[0])} changed, which it may have read"
        held_set = set(held)
        stale = [name for name in names if name in held_set]
        if stale:
            return f"it holds {stale[0]}, which changed"
        return None
