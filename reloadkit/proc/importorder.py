"""What a module's import reads from and writes into other modules: whether the project
checkpoint may run it later than a cold start does (warmplan.ProjectImports.skipped).

A checkpoint that holds every module but the edited ones and their importers runs those after
modules that ran after them in a cold start. That is invisible unless the two imports touch
the same module's state and one of them writes it: a model class registering on the
project's declarative base (the order of the tables changes), a view registering on the
project's app, a call into the project. Read from the source, conservatively, at import time
only (decorators, class bodies, default values; not function bodies):

* reads: every project name it binds (``from shop.models import User`` reads ``shop.models.User``);
* writes: a class based on a project name, a project name called or decorated with, an
  attribute or item of one assigned or deleted (``Base``, ``app.route``, ``registry[k] = v``).

Not seen: writes into installed libraries' state (Django's app registry: Django's models are
imported by ``django.setup()``, which the checkpoint never moves), an object reached through
another module's re-export, imports made by calling ``importlib``.
"""

from __future__ import annotations

import ast
import dataclasses
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ImportFacts", "SourceFacts", "conflict", "import_facts"]


@dataclass(frozen=True)
class ImportFacts:
    """The dotted project names a module's import reads and writes (``shop.db.Base``), or
    ``bound``: why it must keep its place whatever the others do."""

    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    bound: str | None = None
    imports: tuple[str, ...] = ()  # the project names its import statements name, in their order


def _absolute(module: str | None, level: int, package: str) -> str | None:
    if level == 0:
        return module
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base) or None


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as [a, b, c]; calls and items end the chain (``a.b(x).c`` is [a, b])."""
    chain: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            chain.insert(0, node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            return [node.id, *chain]
        elif isinstance(node, (ast.Call, ast.Subscript)):
            node = node.func if isinstance(node, ast.Call) else node.value
            chain.clear()
        else:
            return None


class _Reader(ast.NodeVisitor):
    def __init__(self, package: str, project: Callable[[str], bool]) -> None:
        self.package = package
        self.project = project
        self.names: dict[str, str] = {}  # a local name -> the project name it is bound to
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        self.bound: str | None = None
        self.imports: list[str] = []
        self.in_class = 0

    def _project_name(self, node: ast.expr) -> str | None:
        chain = _dotted(node)
        if not chain or chain[0] not in self.names:
            return None
        return ".".join([self.names[chain[0]], *chain[1:]])

    def _write(self, node: ast.expr) -> None:
        name = self._project_name(node)
        if name is not None:
            self.writes.add(name)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self.project(alias.name):
                local = alias.asname or alias.name.split(".")[0]
                self.names[local] = alias.name if alias.asname else local
                self.reads.add(alias.name)
                self.imports.append(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = _absolute(node.module, node.level, self.package)
        if module is None or not self.project(module):
            return
        for alias in node.names:
            if alias.name == "*":
                self.bound = self.bound or f"star-imports {module}"
                continue
            self.names[alias.asname or alias.name] = f"{module}.{alias.name}"
            self.reads.add(f"{module}.{alias.name}")
            self.imports.append(f"{module}.{alias.name}")

    def _arguments(self, args: ast.arguments) -> None:
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self._write(decorator)
            self.visit(decorator)
        self._arguments(node.args)  # the body runs later, if ever

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 - the visitor's naming

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._arguments(node.args)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expression in [*node.decorator_list, *node.bases, *(keyword.value for keyword in node.keywords)]:
            self._write(expression)
            self.visit(expression)
        self.in_class += 1
        for statement in node.body:
            self.visit(statement)
        self.in_class -= 1

    def visit_Call(self, node: ast.Call) -> None:
        self._write(node.func)
        self.generic_visit(node)

    def _targets(self, targets: Iterable[ast.expr]) -> None:
        for target in targets:
            if isinstance(target, (ast.Attribute, ast.Subscript)):
                self._write(target)
            elif isinstance(target, (ast.Tuple, ast.List)):
                self._targets(target.elts)
            elif isinstance(target, ast.Name) and not self.in_class:
                self.names.pop(target.id, None)  # rebound: no longer the project's name

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)  # first: ``x = x.y`` reads the old x
        self._targets(node.targets)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name) and node.target.id in self.names:
            self.writes.add(self.names[node.target.id])  # ``ITEMS += [x]`` extends the project's list
        self._targets([node.target])

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._targets([node.target])

    def visit_Delete(self, node: ast.Delete) -> None:
        self._targets(node.targets)


def import_facts(source: str | bytes, name: str, *, is_package: bool, project: Callable[[str], bool]) -> ImportFacts:
    """What importing ``name`` (this source) reads and writes of the modules ``project``
    says are the project's (dotted names, from which module they come is the caller's)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ImportFacts(bound="does not compile")
    reader = _Reader(name if is_package else name.rpartition(".")[0], project)
    for statement in tree.body:
        reader.visit(statement)
    return ImportFacts(frozenset(reader.reads), frozenset(reader.writes), reader.bound, tuple(reader.imports))


def conflict(moved: ImportFacts, other: ImportFacts, owner: Callable[[str], str | None]) -> str | None:
    """Why ``moved`` may not run after ``other`` when a cold start runs it first: one writes
    into a module whose state the other reads or writes (``owner``: the module a name is of)."""
    def owners(names: frozenset[str]) -> set[str]:
        return {found for name in names if (found := owner(name)) is not None}

    moved_writes, other_writes = owners(moved.writes), owners(other.writes)
    for module in sorted(moved_writes & (owners(other.reads) | other_writes)):
        return f"writes into {module}, which a later import uses"
    for module in sorted(other_writes & owners(moved.reads)):
        return f"uses {module}, which a later import writes into"
    return None


class KnownModules(Protocol):
    """What :class:`SourceFacts` needs of warmplan.ProjectImports."""

    files: dict[str, str]

    def roots(self, names: Iterable[str]) -> list[str]: ...


class SourceFacts:
    """:func:`import_facts` of the project's modules as their files stand now (a file is read
    again when it changes). A module that imports a project module no generation imported
    yet is bound: a cold start runs that one at its place, which nobody recorded."""

    def __init__(self, project: KnownModules) -> None:
        self.project = project
        self._read: dict[str, tuple[tuple[str, int, int], ImportFacts]] = {}
        self._roots: tuple[int, list[str], set[str]] = (-1, [], set())

    def _known(self) -> tuple[list[str], set[str]]:
        count, roots, tops = self._roots
        if count != len(self.project.files):
            names = [name for name in self.project.files if not name.startswith("@")]
            roots, tops = self.project.roots(names), {name.split(".")[0] for name in names}
            self._roots = (len(self.project.files), roots, tops)
        return roots, tops

    def _module_file(self, dotted: str) -> bool:
        relative = os.path.join(*dotted.split("."))
        return any(os.path.isfile(os.path.join(root, relative + ".py"))
                   or os.path.isfile(os.path.join(root, relative, "__init__.py")) for root in self._known()[0])

    def __call__(self, name: str) -> ImportFacts:
        path = self.project.files.get(name)
        if path is None or name.startswith("@"):
            return ImportFacts(bound="is not a module's file (django.setup())")
        try:
            info = os.stat(path)
            key = (path, info.st_mtime_ns, info.st_size)
            cached = self._read.get(name)
            if cached is not None and cached[0] == key:
                return cached[1]
            with open(path, "rb") as handle:
                source = handle.read()
        except OSError as exc:
            return ImportFacts(bound=f"cannot be read ({exc.strerror or exc})")
        tops = self._known()[1]
        facts = import_facts(source, name, is_package=os.path.basename(path).startswith("__init__."),
                             project=lambda module: module.split(".")[0] in tops)
        new = next((read for read in sorted(facts.reads) if read not in self.project.files and self._module_file(read)), None)
        if new is not None and facts.bound is None:
            facts = dataclasses.replace(facts, bound=f"imports {new}, which no generation imported yet")
        self._read[name] = (key, facts)
        return facts
