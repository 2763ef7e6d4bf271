"""Fixtures shared by the integration tests (helpers that are plain functions live in
support.py, which test files import by name: ``pythonpath = tests/integration``)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import SERVER_APPS, write_file


@pytest.fixture
def server_project(tmp_path: Path) -> Path:
    """A copy of the real servers' apps (apps/servers) where version.py says v0, with a
    runtime directory beside it (see support.server_env)."""
    root = tmp_path / "app"
    shutil.copytree(SERVER_APPS, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    write_file(root / "version.py", "VERSION = 'v0'\n")
    (tmp_path / "run").mkdir()
    return root


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for Unix sockets (pytest's tmp_path can exceed the 107 bytes of a
    socket's path)."""
    path = Path(tempfile.mkdtemp(prefix="rk-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
