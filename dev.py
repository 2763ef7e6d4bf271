"""The README's two set-up lines: ``python3 dev.py demo`` and ``python3 dev.py test``.

Both work with nothing but a Python 3.10+ on the machine, also a system Python under PEP 668
(``pip install`` refused outside a virtual environment): everything goes into ``.venv`` in the
clone. ``test`` runs tox on every supported Python it can find (PATH, pyenv, uv), says which
it did not find, and runs at least the current one plus the lint, type and docs checks. With
``CI`` set to a true value a missing supported Python is an error instead: CI runs this same
line and must test all of them.

Standard library only, and no import of reloadkit: this runs before anything is installed.
"""

from __future__ import annotations

import configparser
import glob
import os
import re
import subprocess
import sys
import venv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
#: tox environments of tox.ini's envlist that need one particular Python.
PINNED = {"watchdog-oldest": "3.10"}
HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
DEMO_BIND = "127.0.0.1:8000"


class DevError(Exception):
    """Something a newcomer must fix: printed as one line, exit 1."""


def venv_python(root: Path = VENV) -> Path:
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _works(python: Path | str) -> bool:
    try:
        result = subprocess.run([str(python), "-c", "import sys"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _has_pip(python: Path) -> bool:
    try:
        result = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def ensure_venv() -> Path:
    """``.venv`` with pip in it, made with this Python if it is missing or broken.

    Debian's Python without the ``python3-venv`` package has no ``ensurepip``: the venv is then
    made without pip, and the system's pip installs into it (``pip --python``, pip >= 22.3).
    """
    python = venv_python()
    if python.exists() and _works(python):
        return python
    print(f"dev.py: creating {VENV.name} with {sys.executable} (Python {sys.version.split()[0]})", flush=True)
    try:
        venv.EnvBuilder(clear=True, with_pip=True).create(VENV)
    except (OSError, subprocess.CalledProcessError):
        venv.EnvBuilder(clear=True, with_pip=False).create(VENV)
    if not _works(python):
        raise DevError(f"could not create a virtual environment in {VENV}")
    return python


def pip_install(python: Path, *requirements: str) -> None:
    """Install into the venv, quietly; with the venv's own pip, else the system's pip."""
    if _has_pip(python):
        command = [str(python), "-m", "pip"]
    elif _has_pip(Path(sys.executable)):
        command = [sys.executable, "-m", "pip", "--python", str(python)]
    else:
        raise DevError("no pip for the virtual environment: install python3-venv (or python3-pip) and run this again")
    args = ["install", "--quiet", "--disable-pip-version-check", *requirements]
    result = subprocess.run([*command, *args], cwd=HERE)
    if result.returncode != 0:
        raise DevError(f"pip install {' '.join(requirements)} failed (exit status {result.returncode})")


# --- finding Pythons (pure where it can be) ---------------------------------------------------


def candidate_paths(minor: str, environ: Mapping[str, str], home: str) -> list[str]:
    """Where ``python3.X`` may be, best first: PATH, then pyenv's and uv's installations.

    pyenv's shims are on PATH but fail for versions that are not selected, which is why every
    candidate is run before it is believed.
    """
    name = f"python{minor}"
    found = [os.path.join(entry, name) for entry in environ.get("PATH", "").split(os.pathsep) if entry]
    pyenv_root = environ.get("PYENV_ROOT") or os.path.join(home, ".pyenv")
    found += sorted(glob.glob(os.path.join(pyenv_root, "versions", f"{minor}.*", "bin", name)), key=_version_key, reverse=True)
    uv_root = environ.get("UV_PYTHON_INSTALL_DIR") or os.path.join(home, ".local", "share", "uv", "python")
    found += sorted(glob.glob(os.path.join(uv_root, f"cpython-{minor}.*", "bin", name)), key=_version_key, reverse=True)
    found += [os.path.join(prefix, "bin", name) for prefix in ("/usr/local", "/usr", "/opt/homebrew")]
    unique: list[str] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", path)
    return tuple(int(part) for part in match.groups()) if match else (0,)


def find_pythons(environ: Mapping[str, str], home: str, *, current: str, current_executable: str) -> dict[str, str]:
    """``{"3.12": "/path/to/python3.12", ...}`` for every supported Python that runs."""
    found: dict[str, str] = {}
    for minor in SUPPORTED:
        if minor == current:
            found[minor] = current_executable
            continue
        for path in candidate_paths(minor, environ, home):
            if os.access(path, os.X_OK) and _works(path):
                found[minor] = path
                break
    return found


def tox_envlist(tox_ini: Path = HERE / "tox.ini") -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tox_ini, encoding="utf-8")
    return [name.strip() for name in re.split(r"[,\s]+", parser.get("tox", "envlist", fallback="")) if name.strip()]


def plan_environments(found: Iterable[str], envlist: Sequence[str]) -> list[str]:
    """The environments of tox's envlist to run, given the supported minors found: a
    ``pyXY`` or pinned environment only where its Python exists, every other one always."""
    present = {f"py{minor.replace('.', '')}" for minor in found}
    pinned = {name for name, minor in PINNED.items() if f"py{minor.replace('.', '')}" in present}
    return [
        name
        for name in envlist
        if (name in present) or (name in pinned) or not (re.fullmatch(r"py\d+", name) or name in PINNED)
    ]


def strict(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def tox_path(found: Mapping[str, str], environ: Mapping[str, str]) -> str:
    """PATH for tox: the directory of each Python found first, so tox's discovery finds it."""
    dirs: list[str] = []
    for path in found.values():
        directory = os.path.dirname(path)
        if directory not in dirs:
            dirs.append(directory)
    return os.pathsep.join([*dirs, environ.get("PATH", "")])


# --- the two commands ---------------------------------------------------------------------


def demo(extra: Sequence[str]) -> int:
    python = ensure_venv()
    print("dev.py: installing reloadkit (editable) into .venv", flush=True)
    pip_install(python, "-e", ".")
    command = [str(python), "-m", "reloadkit", "run", "-b", DEMO_BIND, *extra, "--", str(python), "-m", "reloadkit.demo"]
    print(f"dev.py: open http://{DEMO_BIND}/ and edit reloadkit/demo.py; Ctrl+C stops it", flush=True)
    os.chdir(HERE)
    os.execv(command[0], command)


def test(extra: Sequence[str]) -> int:
    current = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if current not in SUPPORTED:
        raise DevError(f"this is Python {current}; run dev.py with one of Python {', '.join(SUPPORTED)}")
    found = find_pythons(os.environ, str(Path.home()), current=current, current_executable=sys.executable)
    missing = [minor for minor in SUPPORTED if minor not in found]
    for minor in SUPPORTED:
        print(f"dev.py: Python {minor}: {found.get(minor, 'not found')}", flush=True)
    if missing and strict(os.environ):
        raise DevError(f"CI is set and Python {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
    python = ensure_venv()
    pip_install(python, "tox>=4")
    envs = plan_environments(found, tox_envlist())
    env = dict(os.environ, PATH=tox_path(found, os.environ))
    print(f"dev.py: tox -e {','.join(envs)}", flush=True)
    result = subprocess.run([str(python), "-m", "tox", "-e", ",".join(envs), *extra], cwd=HERE, env=env)
    if missing:
        print(f"dev.py: not tested on Python {', '.join(missing)} (not found on this machine)", flush=True)
    return result.returncode


def setup_lines(readme: Path = HERE / "README.rst") -> list[str]:
    """The commands of README.rst's "Set up" section: its indented literal lines."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(r"^Set up\n-+\n(.*?)^\S[^\n]*\n[-=~]{3,}\n", text, re.S | re.M)
    if match is None:
        raise DevError("README.rst has no 'Set up' section")
    return [line.strip() for line in match.group(1).splitlines() if line.startswith("    ") and line.strip()]


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "setup-lines"):
        print("usage: python3 dev.py demo [reloadkit run options] | test [tox options] | setup-lines", file=sys.stderr)
        return 2
    command, extra = argv[0], argv[1:]
    try:
        if command == "demo":
            return demo(extra)
        if command == "test":
            return test(extra)
        print("\n".join(setup_lines()))
        return 0
    except DevError as exc:
        print(f"dev.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
