"""What the import tracker reports for ``--warm``: installed modules the warm parent can import
by name, never reloadkit's own child side, which is loaded by path under private names."""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from reloadkit.child import tracker


@pytest.fixture
def site_packages(tmp_path: Path) -> Path:
    root = tmp_path / "lib" / "site-packages"
    root.mkdir(parents=True)
    return root


@pytest.fixture
def fake_modules(site_packages: Path) -> Iterator[dict[str, Path]]:
    """Two modules in sys.modules with files in an installed tree: a package's and one loaded
    by path under the private name (as the installed reloadkit's hook loads reloaders.py)."""
    files = {
        "rk_test_installed_pkg": site_packages / "rk_test_installed_pkg.py",
        "_reloadkit_reloaders": site_packages / "reloadkit" / "child" / "reloaders.py",
    }
    for name, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        module = types.ModuleType(name)
        module.__file__ = str(path)
        sys.modules[name] = module
    yield files
    for name in files:
        sys.modules.pop(name, None)


@pytest.mark.timeout(10)
def test_the_warm_report_names_installed_modules_but_not_the_private_by_path_ones(
    site_packages: Path, fake_modules: dict[str, Path]
) -> None:
    reported: list[str] = []

    def modules(lines: Sequence[str]) -> None:
        reported.extend(lines)

    path_filter = tracker.PathFilter([str(site_packages)])
    imports = tracker.ImportTracker(lambda lines: None, path_filter, watch=False, modules=modules)
    imports.scan()
    imports.flush()
    names = {line.split("=", 1)[1].split(" ", 1)[0] for line in reported}
    assert "rk_test_installed_pkg" in names
    assert not {name for name in names if name.startswith("_reloadkit_")}


SETUP_SCRIPT = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("_rk_tracker", sys.argv[1])
tracker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tracker)
lines = []
path_filter = tracker.PathFilter([sys.argv[2]], base=os.getcwd())
imports = tracker.ImportTracker(lambda batch: None, path_filter, watch=False, modules=lines.extend)
imports.install()
os.environ["DJANGO_SETTINGS_MODULE"] = "proj.settings"
import proj.wsgi
imports.flush()
print("\\n".join(lines))
"""


@pytest.mark.timeout(30)
def test_what_django_setup_imports_is_reported_as_imported_by_that_call(tmp_path: Path, site_packages: Path) -> None:
    """The checkpoint can make the same call only if it knows which modules the call brings in
    (settings, apps, models: none of them importable alone) and who called it."""
    import subprocess

    (site_packages / "django").mkdir()
    (site_packages / "django" / "__init__.py").write_text(
        "import importlib\nimport os\n\n\ndef setup(set_prefix=True):\n"
        "    importlib.import_module(os.environ['DJANGO_SETTINGS_MODULE'])\n    importlib.import_module('proj.models')\n"
    )
    project = tmp_path / "project"
    (project / "proj").mkdir(parents=True)
    (project / "proj" / "__init__.py").write_text("")
    (project / "proj" / "settings.py").write_text("")
    (project / "proj" / "models.py").write_text("from proj import fields\n")
    (project / "proj" / "fields.py").write_text("")
    (project / "proj" / "wsgi.py").write_text("import django\n\ndjango.setup(set_prefix=False)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site_packages), str(project)])}
    result = subprocess.run(
        [sys.executable, "-c", SETUP_SCRIPT, tracker.__file__, str(site_packages)],
        cwd=project, env=env, capture_output=True, text=True, timeout=20, check=True,
    )
    reported = [line.partition("=")[2].partition(" ")[0] for line in result.stdout.splitlines()]
    setup = "@django.setup/proj.settings"
    assert reported[reported.index(f"{setup}:proj.wsgi"):] == [
        f"{setup}:proj.wsgi",
        f"proj.settings:{setup}",
        f"proj.models:{setup}",
        "proj.fields:proj.models",
    ], result.stdout


def test_a_lazy_modules_file_is_read_without_running_it(tmp_path: Path) -> None:
    """importlib.util.LazyLoader runs a module at its first attribute lookup: reloadkit reads
    its ``__file__`` from its namespace, and it stays unrun, as the program left it."""
    import importlib.util

    path = tmp_path / "lazy_probe_mod.py"
    path.write_text("RAN = True\n")
    spec = importlib.util.spec_from_file_location("lazy_probe_mod", path)
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert tracker.module_file(module) == str(path)
    assert type(module).__name__ == "_LazyModule"  # not run
    assert tracker.module_file(None) is None
    assert module.RAN  # the lookup runs it
    assert type(module).__name__ == "module"
