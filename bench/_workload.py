"""What the benchmark does to the watched tree: versions, the 300-file burst, big idle trees."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "app"
BURST_FILES = 300


class Project:
    """A fresh copy of the app in ``root/app`` (the watched tree), with ``root/state`` beside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.app = root / "app"
        self.state = root / "state"
        self.app.mkdir(parents=True)
        self.state.mkdir()
        for name in ("app.py", "asgi_app.py", "benchsupport.py"):
            shutil.copyfile(TEMPLATE / name, self.app / name)
        self.serial = 0
        self.version = ""
        self.write_version()
        self.burst_serial = 0

    def write_version(self) -> float:
        """Rewrite version.py in place, as an editor saves; returns the monotonic time after close.

        The file grows with every version, so Python's bytecode cache (keyed on mtime in whole
        seconds and size) can never hand a new process the previous version.
        """
        self.version = f"v{self.serial}"
        text = f'VERSION = "{self.version}"\n' + f"# {'.' * self.serial}\n"
        self.serial += 1
        with open(self.app / "version.py", "w") as handle:
            handle.write(text)
        return time.monotonic()

    def add_modules(self) -> None:
        """The burst's 300 modules, imported by the app (so every tool watches them)."""
        mods = self.app / "mods"
        mods.mkdir(exist_ok=True)
        names = [f"m{index:03d}" for index in range(BURST_FILES)]
        for name in names:
            (mods / f"{name}.py").write_text("X = 0\n")
        (mods / "__init__.py").write_text("".join(f"from . import {name}  # noqa: F401\n" for name in names))

    def burst(self, span: float = 0.05, batches: int = 10) -> float:
        """Rewrite the 300 modules in ``batches`` spread over ``span`` seconds; returns the span."""
        self.burst_serial += 1
        text = f"X = {self.burst_serial}\n# {'.' * self.burst_serial}\n"
        paths = [self.app / "mods" / f"m{index:03d}.py" for index in range(BURST_FILES)]
        per_batch = -(-len(paths) // batches)
        start = time.monotonic()
        for batch in range(batches):
            target = start + batch * span / max(1, batches - 1)
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            for path in paths[batch * per_batch : (batch + 1) * per_batch]:
                with open(path, "w") as handle:
                    handle.write(text)
        return time.monotonic() - start


# A realistic project mix: sources and assets; .venv and node_modules as tools leave them.
_PROJECT_KINDS = ["py"] * 40 + ["html"] * 20 + ["js"] * 20 + ["css"] * 10 + ["json"] * 10
_NODE_KINDS = ["js"] * 12 + ["json"] * 2 + ["d.ts"] * 4 + ["md"] * 2
_VENV_KINDS = ["py"] * 34 + ["pyi"] * 4 + ["txt"] * 2


def _fill(directory: Path, kinds: list[str], count: int, per_dir: int, prefix: str, package: bool = False) -> int:
    """``count`` empty files, ``per_dir`` to a directory, two directory levels deep."""
    made = 0
    index = 0
    while made < count:
        sub = directory / f"{prefix}{index // 20:03d}" / f"{prefix}{index:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        if package and not (sub.parent / "__init__.py").exists():
            # a real package tree: every level is a package (werkzeug's stat scan relies on it)
            for level in (directory, sub.parent):
                (level / "__init__.py").touch()
                made += 1
        for slot in range(min(per_dir, count - made)):
            kind = kinds[slot % len(kinds)]
            name = "__init__.py" if slot == 0 and kind == "py" else f"f{slot:03d}.{kind}"
            fd = os.open(sub / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.close(fd)
            made += 1
        index += 1
    return made


class TreeStore:
    """The extra files for the idle-CPU phases, made once per run and lent to each project.

    Lending is a rename of directories (the same filesystem), so every tool sees the same
    tree without paying for 100,000 file creations each. Two levels at most: the first size
    lives in ``proj/`` (a package tree of sources and assets); the second adds the rest in
    ``node_modules/`` (75%) and ``.venv/`` (25%), as in a real checkout.
    """

    LEVELS = (("proj",), ("proj", "node_modules", ".venv"))

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.sizes: list[int] = []
        self.lent: tuple[Path, tuple[str, ...]] | None = None

    def make(self, sizes: tuple[int, ...]) -> None:
        """Create the levels once (idempotent for the same sizes)."""
        if list(sizes) == self.sizes:
            return
        if len(sizes) > len(self.LEVELS):
            raise ValueError(f"at most {len(self.LEVELS)} tree sizes")
        for name in ("proj", "node_modules", ".venv"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        _fill(self.root / "proj", _PROJECT_KINDS, sizes[0], 100, "p", package=True)
        if len(sizes) > 1:
            rest = sizes[1] - sizes[0]
            node = rest * 3 // 4
            _fill(self.root / "node_modules", _NODE_KINDS, node, 20, "n")
            _fill(self.root / ".venv" / "lib" / "python3.12" / "site-packages", _VENV_KINDS, rest - node, 40, "d")
        self.sizes = list(sizes)

    def lend(self, app: Path, level: int) -> int:
        """Move the directories of ``level`` (0 or 1) into ``app``; returns the number of files."""
        names = self.LEVELS[level]
        for name in names:
            os.rename(self.root / name, app / name)
        self.lent = (app, names)
        return self.sizes[level]

    def take_back(self) -> None:
        if self.lent is None:
            return
        app, names = self.lent
        self.lent = None
        if not all((app / name).exists() for name in names):  # lost (a failed run): make them again
            self.sizes = []
            return
        for name in names:
            os.rename(app / name, self.root / name)
