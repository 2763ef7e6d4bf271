"""The package's layout rule (docs/architecture.rst), enforced.

Every ``import`` in reloadkit, at module level or inside a function, is read with :mod:`ast`
and checked against the table of what each layer may import; the module graph must have no
cycle; the child's modules and ``import reloadkit`` must load only the standard library and
the child's side; the modules loaded by path into the user's interpreter must not import the
package at all; and the copies of the contract's names those must keep equal the one
definition in :mod:`reloadkit.child.protocol`.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import reloadkit
from reloadkit.child import protocol

pytestmark = pytest.mark.timeout(60)

PACKAGE = Path(reloadkit.__file__).parent
SOURCE_ROOT = PACKAGE.parent

#: The layers, bottom to top, and what each may import besides itself and the standard
#: library (third-party packages are not the rule's business). Everything not in a
#: subpackage here (``__init__``, ``cli``, ``reloader``, ``wsgi``, ``devserver``, ``doctor``,
#: ``demo``, ``middleware``, ``__main__``) is a face: it may import any layer, and no layer
#: may import it.
ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "child": frozenset({"errors"}),
    "watch": frozenset({"errors"}),
    "net": frozenset({"errors", "child"}),
    "config": frozenset({"errors", "child", "net", "watch"}),
    "proc": frozenset({"errors", "child", "net", "config"}),
    "browser": frozenset({"errors", "child", "net", "config", "watch"}),
    "supervisor": frozenset({"errors", "child", "net", "config", "watch", "proc", "browser"}),
}
#: Loaded by path into the user's interpreter (which may have no reloadkit, or another
#: version): they import nothing of the package.
BY_PATH = ("tracker.py", "adopt.py", "reloaders.py", "warm_parent.py", "warm_imports.py", "_hook/sitecustomize.py")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    """``child`` for reloadkit.child.x, ``errors`` for reloadkit.errors, ``face`` otherwise."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ALLOWED:
        return parts[1]
    return "face"


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield _module_name(path), path


def _imports(module: str, path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, imported reloadkit module, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                keep = len(base) - node.level + (1 if path.name == "__init__.py" else 0)
                prefix = base[:keep]
                name = ".".join([*prefix, node.module] if node.module else prefix)
            else:
                name = node.module or ""
            # ``from reloadkit.proc import process`` imports the module reloadkit.proc.process
            targets = [f"{name}.{alias.name}" if _is_module(f"{name}.{alias.name}") else name for alias in node.names]
        for target in targets:
            if target == "reloadkit" or target.startswith("reloadkit."):
                yield node.lineno, target, id(node) in top_level


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (SOURCE_ROOT / relative).with_suffix(".py").is_file() or (SOURCE_ROOT / relative / "__init__.py").is_file()


def test_every_import_follows_the_layering_rule() -> None:
    broken = []
    for module, path in _modules():
        layer = _layer(module)
        if layer == "face":
            continue
        for line, target, _ in _imports(module, path):
            other = _layer(target)
            if other == layer:
                continue
            if other == "face" or other not in ALLOWED[layer]:
                broken.append(f"{path.relative_to(SOURCE_ROOT)}:{line}: {layer}/ imports {target}")
    assert not broken, "imports that break the rule of docs/architecture.rst:\n" + "\n".join(broken)


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    """The checker itself: an import of the supervisor from watch/ is seen, at any depth."""
    source = "def f():\n    if True:\n        from reloadkit.supervisor import loop\n"
    fake = tmp_path / "base.py"
    fake.write_text(source)
    found = [target for _, target, top in _imports("reloadkit.watch.base", fake) if not top]
    assert found == ["reloadkit.supervisor.loop"]
    assert _layer(found[0]) not in ALLOWED[_layer("reloadkit.watch.base")]


def test_no_import_cycle() -> None:
    """Between modules, counting imports inside functions too (a deferred import that only
    breaks a cycle at import time still ties the two modules together)."""
    graph: dict[str, set[str]] = {}
    for module, path in _modules():
        graph[module] = {target for _, target, _ in _imports(module, path) if target != module}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert cycles == []


def test_modules_loaded_by_path_import_nothing_of_the_package() -> None:
    broken = []
    for relative in BY_PATH:
        path = PACKAGE / "child" / relative
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = _type_checking_nodes(tree)
        for line, target, top in _imports(_module_name(path), path):
            # tracker.child_argv is also called by the supervisor (run_with_reloader), which
            # has the package: a function-level import of the errors there is fine
            if not top and target == "reloadkit.errors":
                continue
            if line not in guarded:
                broken.append(f"child/{relative}:{line}: {target}")
    assert not broken


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


_LOADED = """
import json, sys
before = set(sys.modules)
import importlib
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _child_modules() -> list[str]:
    names = ["reloadkit", "reloadkit.middleware"]
    for path in sorted((PACKAGE / "child").glob("*.py")):
        if path.name != "__init__.py":
            names.append(f"reloadkit.child.{path.stem}")
    return names


@pytest.mark.parametrize("module", _child_modules())
def test_the_childs_side_loads_only_the_standard_library(module: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(SOURCE_ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", _LOADED, module], capture_output=True, text=True, timeout=30, env=env, cwd=SOURCE_ROOT
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    assert module in loaded
    outside = [name for name in loaded if name.split(".")[0] not in sys.stdlib_module_names]
    ours = {"reloadkit", "reloadkit.errors", "reloadkit.middleware", "reloadkit.child"}
    foreign = [name for name in outside if name not in ours and not name.startswith("reloadkit.child.")]
    assert foreign == [], f"importing {module} loads {foreign}"


_BY_PATH_LOAD = """
import importlib.abc, importlib.util, sys
class NoReloadkit(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "reloadkit" or name.startswith("reloadkit."):
            raise ImportError(f"{name} imported by a module loaded by path")
        return None
sys.meta_path.insert(0, NoReloadkit())
for i, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"_reloadkit_by_path_{i}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
print("ok")
"""


def test_modules_loaded_by_path_load_without_the_package() -> None:
    paths = [str(PACKAGE / "child" / relative) for relative in BY_PATH if relative != "_hook/sitecustomize.py"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELOADKIT_")}
    proc = subprocess.run(
        [sys.executable, "-c", _BY_PATH_LOAD, *paths], capture_output=True, text=True, timeout=30, env=env, cwd="/"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# --- the contract's names: one definition, and the copies tied to it ---------------------


def _assigned(path: Path, name: str) -> object:
    """The literal value assigned to ``name`` at module level in ``path`` (without importing it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "frozenset" and value.args:
                value = value.args[0]
            return ast.literal_eval(value)
    raise AssertionError(f"{name} not assigned in {path}")


def test_the_trackers_copy_of_the_watch_key() -> None:
    assert _assigned(PACKAGE / "child" / "tracker.py", "WATCH_KEY") == protocol.WATCH_KEY


def test_the_warm_imports_copy_of_the_generation_variables() -> None:
    copy = _assigned(PACKAGE / "child" / "warm_imports.py", "PER_GENERATION")
    assert isinstance(copy, (set, frozenset))
    assert set(copy) == set(protocol.GENERATION_VARIABLES)


def test_the_warm_imports_copy_of_the_environment_copies() -> None:
    copy = _assigned(PACKAGE / "child" / "warm_imports.py", "SNAPSHOTS")
    assert isinstance(copy, tuple)
    assert tuple(entry[0] for entry in copy) == protocol.ENVIRON_COPIES


def test_the_single_sources_are_used() -> None:
    from reloadkit.browser import livereload
    from reloadkit.child import middleware, notify
    from reloadkit.net import binding
    from reloadkit.proc import warmplan

    assert livereload.URL_VARIABLE is protocol.URL_VARIABLE
    assert middleware.URL_VARIABLE is protocol.URL_VARIABLE
    assert notify.WATCH_KEY is protocol.WATCH_KEY
    assert binding.CONTRACT_VARIABLES is protocol.CONTRACT_VARIABLES
    assert set(warmplan.PER_GENERATION) == {*protocol.GENERATION_VARIABLES, "RELOADKIT_WARM_FD"}
