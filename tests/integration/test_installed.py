"""Under tox the tests test the installed package, not the checkout beside them.

tox installs reloadkit from the sdist it builds (so a file the sdist or the wheel misses is
missing here too), runs pytest in ``tests/`` with ``--import-mode=importlib`` (neither the
working directory nor pytest's rootdir insertion puts the checkout on ``sys.path``), and sets ``TEST_INSTALLED_PACKAGE=1``. Without it (a
developer's ``python -m pytest`` in the checkout, an editable install) these are skipped.
A file missing from the built package then fails the tests that use it: removing
``child/_hook/sitecustomize.py`` or ``child/warm_parent.py`` from the wheel fails the bind
adoption and warm tests (``tox --installpkg`` with such a wheel).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from support import ROOT, SOURCE_PATH, reloadkit_env

import reloadkit

pytestmark = pytest.mark.skipif(
    os.environ.get("TEST_INSTALLED_PACKAGE") != "1",
    reason="tests the checkout (TEST_INSTALLED_PACKAGE=1 is set by tox, which tests the installed package)",
)


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def test_reloadkit_is_imported_from_site_packages_not_the_checkout() -> None:
    package = Path(reloadkit.__file__).parent
    # (tox's environments may live inside the checkout, in .tox/)
    assert package.resolve() != (ROOT / "reloadkit").resolve(), f"reloadkit was imported from the checkout: {package}"
    assert _inside(package, Path(sysconfig.get_paths()["purelib"])), f"not installed: {package}"
    assert SOURCE_PATH == []


def test_the_checkout_is_not_on_sys_path() -> None:
    on_path = [entry for entry in sys.path if Path(entry or os.getcwd()).resolve() == ROOT.resolve()]
    assert not on_path, f"the checkout is on sys.path: {sys.path}"


def test_children_import_the_installed_package_too(tmp_path: Path) -> None:
    """The processes the tests start (this interpreter, :func:`support.reloadkit_env`) import
    the same installed files."""
    result = subprocess.run(
        [sys.executable, "-c", "import reloadkit; print(reloadkit.__file__)"],
        env=reloadkit_env(), cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == Path(reloadkit.__file__)
