"""The user's part of a Python traceback in a child's stderr: the exception and the frames of
the user's own code, for the top of the error page.

A ``SyntaxError`` in a Django model sits below some forty frames of Django, importlib and the
server; the page shows the exception and the user's frames first (innermost first), the whole
stderr below. A frame is the user's when its file is not in the standard library, not in a
``site-packages``/``dist-packages`` directory, not in a virtual environment (its scripts),
not reloadkit's own and not a ``<frozen ...>`` module, and (when the watched roots are known)
lies under one of them.
"""

from __future__ import annotations

import os
import re
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Frame", "Summary", "is_user_file", "load_failure", "summarize"]

#: Exceptions that say a module of the user's cannot be compiled: never a request's own fault.
COMPILE_ERRORS = ("SyntaxError", "IndentationError", "TabError")
#: Exceptions that say a module cannot be imported: the app's when raised in a changed file.
IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")

_TRACEBACK = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<name>.+))?\s*$')
_REPEATED = re.compile(r"^\s*\[Previous line repeated \d+ more times?\]")
_RELOADKIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    name: str | None  # None: the place a SyntaxError names
    source: tuple[str, ...]  # the lines printed below it (the code, the carets)

    def display(self, base: str) -> str:
        shown = self.file
        if os.path.isabs(shown):
            relative = os.path.relpath(shown, base)
            shown = shown if relative.startswith("..") else relative
        head = f"{shown}, line {self.line}" + (f", in {self.name}" if self.name else "")
        return "\n".join([head, *self.source])


@dataclass(frozen=True)
class Summary:
    exception: str  # ``SyntaxError: invalid syntax``
    frames: tuple[Frame, ...]  # the user's frames, innermost first


def _system_dirs() -> tuple[str, ...]:
    dirs = {_RELOADKIT}
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(os.path.realpath(path))
    return tuple(sorted(dirs))


_SYSTEM = _system_dirs()


def _in_virtualenv(path: str) -> bool:
    """Is ``path`` inside a virtual environment (a directory above it has ``pyvenv.cfg``):
    a ``.venv/bin/uvicorn`` script inside the project is not the user's code."""
    directory = os.path.dirname(path)
    while True:
        if os.path.exists(os.path.join(directory, "pyvenv.cfg")):
            return True
        parent = os.path.dirname(directory)
        if parent == directory:
            return False
        directory = parent


def is_user_file(path: str, roots: Sequence[str], base: str) -> bool:
    """Is ``path`` (as a traceback names it) the user's code?"""
    if path.startswith("<"):
        return False
    full = os.path.realpath(os.path.join(base, path))
    parts = full.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    if any(full == top or full.startswith(top + os.sep) for top in _SYSTEM) or _in_virtualenv(full):
        return False
    if roots:
        return any(full == top or full.startswith(top.rstrip(os.sep) + os.sep)
                   for top in (os.path.realpath(os.path.join(base, root)) for root in roots))
    return True


def _parse(lines: Sequence[str]) -> tuple[list[Frame], str | None]:
    """The frames and the exception line of the traceback that starts at ``lines[0]``."""
    frames: list[Frame] = []
    index = 1
    while index < len(lines):
        if _REPEATED.match(lines[index]):
            index += 1
            continue
        match = _FRAME.match(lines[index])
        if match is None:
            break
        index += 1
        source: list[str] = []
        while index < len(lines) and lines[index].startswith("    ") and not _FRAME.match(lines[index]):
            source.append(lines[index].rstrip())
            index += 1
        frames.append(Frame(match["file"], int(match["line"]), match["name"], tuple(source)))
    while index < len(lines) and not lines[index].strip():
        index += 1
    exception = lines[index].strip() if index < len(lines) else None
    return frames, exception or None


def summarize(stderr: Sequence[str], roots: Sequence[str], base: str) -> Summary | None:
    """The last traceback's exception and its user frames (from an earlier traceback of the
    chain when the last has none); None when there is no traceback or no frame is the user's."""
    starts = [number + 1 for number, line in enumerate(stderr) if line.rstrip().endswith(_TRACEBACK)]
    if not starts:  # a long traceback's start can be out of the tail: from its first frame then
        starts = [number for number, line in enumerate(stderr) if _FRAME.match(line)][:1]
    exception: str | None = None
    for start in reversed(starts):
        frames, raised = _parse([_TRACEBACK, *stderr[start:]])
        exception = exception or raised
        mine = [frame for frame in frames if is_user_file(frame.file, roots, base)]
        if mine and exception:
            return Summary(exception, tuple(reversed(mine)))
    return None


def load_failure(stderr: Sequence[str], changed: Sequence[str], roots: Sequence[str], base: str) -> str | None:
    """Does the running server's stderr say its app cannot load? The reason, or None.

    True of a traceback (a request's, a worker's boot) whose exception is a compile error in
    the user's code, or an import error raised in a file of the change that started this
    generation: gunicorn then answers every request with a bare 500, a worker that cannot
    boot is retried for ever, Django answers with an error page of its own that fails too.
    Any other exception is left to the app: servers log them and go on.
    """
    summary = summarize(stderr, roots, base)
    if summary is None:
        return None
    kind = summary.exception.split(":", 1)[0].strip().rsplit(".", 1)[-1]
    frame = summary.frames[0]
    full = os.path.realpath(os.path.join(base, frame.file))
    if kind in COMPILE_ERRORS or (kind in IMPORT_ERRORS and full in {os.path.realpath(os.path.join(base, path)) for path in changed}):
        return f"{summary.exception} ({frame.display(base).splitlines()[0]})"
    return None
