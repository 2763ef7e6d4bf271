"""What the import tracker reports for ``--warm``: installed modules the warm parent can import
by name, never reloadkit's own child side, which is loaded by path under private names."""

from __future__ import annotations

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
