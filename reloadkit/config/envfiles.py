"""``--env-file PATH``: variables for the child from dotenv files, re-read for every generation.

The files are parsed by python-dotenv (its format: ``KEY=value``, ``export KEY=...``, quotes,
``${VAR}`` interpolation, comments). The real environment wins over the files (python-dotenv's
own default, ``override=False``): ``DEBUG=0 reloadkit run ...`` beats ``DEBUG=1`` in ``.env``.
Of two files that set one variable, the later one on the command line wins.

A file that cannot be parsed at start-up is an error (:class:`EnvFileError`); later, when an
edit breaks it, the warning names the line and that file's previous values stay in force, so a
half-typed line never takes a variable away from the running app.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from reloadkit.errors import EnvFileError

__all__ = ["EnvFiles", "read_env_file"]


def read_env_file(path: str) -> dict[str, str]:
    """The variables one file sets; raises :class:`EnvFileError` (one line) if it is unreadable
    or a line is not in dotenv's format. A bare ``KEY`` (no ``=``) sets nothing."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise EnvFileError(f"env file {path}: cannot read it: {reason}") from None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.string.rstrip("\n")
            raise EnvFileError(f"env file {path}: line {binding.original.line} is not KEY=VALUE: {line[:80]!r}")
    values = dotenv_values(stream=io.StringIO(text), interpolate=True)
    return {key: value for key, value in values.items() if value is not None}


class EnvFiles:
    """The files of ``--env-file``, in order, and the values each last read cleanly."""

    def __init__(self, paths: Sequence[str], cwd: str = "") -> None:
        self.paths = tuple(dict.fromkeys(os.path.abspath(os.path.join(cwd, path)) for path in paths))
        self._values = {path: read_env_file(path) for path in self.paths}  # raises at start-up

    def refresh(self, warn: Callable[[str], None]) -> None:
        """Read every file again; a file that fails keeps its previous values (and is named)."""
        for path in self.paths:
            try:
                self._values[path] = read_env_file(path)
            except EnvFileError as exc:
                warn(f"{exc}; keeping its previous values")

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """``environ`` with the files' variables added underneath it (the real environment wins)."""
        merged: dict[str, str] = {}
        for path in self.paths:
            merged.update(self._values[path])
        merged.update(environ)
        return merged
