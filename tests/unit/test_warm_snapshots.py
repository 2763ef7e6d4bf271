"""A copy of the environment taken in the warm parent, corrected in a generation to the copy
a cold import would have taken (``child/warm_imports.py``)."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import ClassVar

import pytest

from reloadkit.child import warm_imports


@pytest.fixture
def handlers() -> Iterator[type]:
    """A stand-in ``wsgiref.handlers`` whose copy the test sets (the real one is shared)."""
    module = types.ModuleType("wsgiref.handlers")

    class BaseHandler:
        os_environ: ClassVar[dict[str, str]] = {}

    module.BaseHandler = BaseHandler  # type: ignore[attr-defined]
    saved = sys.modules.get("wsgiref.handlers")
    sys.modules["wsgiref.handlers"] = module
    try:
        yield BaseHandler
    finally:
        if saved is None:
            del sys.modules["wsgiref.handlers"]
        else:
            sys.modules["wsgiref.handlers"] = saved


def test_the_generations_values_replace_the_parents(handlers: type) -> None:
    parent = {"HOME": "/root", "RELOADKIT_WARM_FD": "5", "RELOADKIT_GENERATION": "-1"}
    generation = {"HOME": "/root", "RELOADKIT_GENERATION": "3", "LISTEN_PID": "42"}
    handlers.os_environ = dict(parent)  # type: ignore[attr-defined]
    warm_imports.correct_snapshots(parent, generation)
    assert handlers.os_environ == generation  # type: ignore[attr-defined]


def test_what_the_program_changed_before_the_import_stays(handlers: type) -> None:
    """The copy disagrees with the parent's environment on a key: the program set it (Django's
    manage.py sets DJANGO_SETTINGS_MODULE before importing): a cold copy has that value too."""
    parent = {"DJANGO_SETTINGS_MODULE": "", "RELOADKIT_PID": "7"}
    generation = {"DJANGO_SETTINGS_MODULE": "other", "RELOADKIT_PID": "9"}
    handlers.os_environ = {"DJANGO_SETTINGS_MODULE": "mysite.settings", "RELOADKIT_PID": "7"}  # type: ignore[attr-defined]
    warm_imports.correct_snapshots(parent, generation)
    assert handlers.os_environ == {"DJANGO_SETTINGS_MODULE": "mysite.settings", "RELOADKIT_PID": "9"}  # type: ignore[attr-defined]


def test_nothing_to_correct_without_the_module() -> None:
    saved = sys.modules.pop("wsgiref.handlers", None)
    try:
        warm_imports.correct_snapshots({"A": "1"}, {"A": "2"})  # no error, nothing imported
        assert "wsgiref.handlers" not in sys.modules
    finally:
        if saved is not None:
            sys.modules["wsgiref.handlers"] = saved
