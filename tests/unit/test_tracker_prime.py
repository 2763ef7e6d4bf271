"""A warm parent decides once which of its modules' files are the application's
(tracker.prime), so that each generation it forks starts its tracker without going through
every module again (which, after a fork, copies most of the parent's memory)."""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from reloadkit.child import tracker

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def project_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "rk_test_primed_app.py"
    path.write_text("")
    module = types.ModuleType("rk_test_primed_app")
    module.__file__ = str(path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(tracker.EXCLUDE_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "rk_test_primed_app", module)
    monkeypatch.setattr(tracker, "_PRIMED", tracker._PRIMED)
    monkeypatch.setattr(tracker, "WARM_MODULES", tracker.WARM_MODULES)
    yield path


def test_a_filter_like_the_primed_one_takes_its_verdicts_and_another_decides_itself(project_module: Path) -> None:
    tracker.prime()
    real = os.path.realpath(project_module)
    project_module.unlink()  # a verdict looked up, not a file looked at
    assert tracker.PathFilter.for_this_process().keep(str(project_module)) == real
    assert tracker.PathFilter.for_this_process(["*.txt"]).keep(str(project_module)) is None


def test_a_forked_generations_tracker_reports_the_primed_files_without_a_scan(project_module: Path) -> None:
    tracker.prime()
    tracker.WARM_MODULES = frozenset(sys.modules)
    batches: list[Sequence[str]] = []
    imports = tracker.ImportTracker(batches.append, tracker.PathFilter.for_this_process(), watch=True)
    imports.scan = lambda: pytest.fail("scanned sys.modules")  # type: ignore[method-assign]
    imports.install()
    try:
        assert os.path.realpath(project_module) in [path for batch in batches for path in batch]
    finally:
        imports.uninstall()
