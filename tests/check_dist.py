"""What a user gets: ``tox -e package`` runs this (it is in tox's envlist, so CI runs it).

1. Builds the sdist and the wheel (``python -m build``), and fails on any warning the build
   prints (setuptools warns, for example, about package data of a directory that is not a
   listed package, or about deprecated license classifiers).
2. ``twine check --strict`` (the index page renders) and ``check-wheel-contents``.
3. Checks what the metadata and the wheel must hold: the version of ``reloadkit/__init__.py``,
   the license (expression and file), the project URLs, ``Typing :: Typed``, the files that
   reloadkit runs by path in its children (the import hook, the tracker, the warm parent).
4. Installs the wheel into a fresh virtual environment, runs ``reloadkit --version`` and
   ``python -m reloadkit --version`` there, then one real reload: ``reloadkit run -b
   127.0.0.1:0 --imports -- python app.py``, an edit of app.py, the new response, SIGTERM to
   reloadkit (by pid), and no process of its tree left.

Usage: ``python tests/check_dist.py WORKDIR`` (WORKDIR is emptied first).
"""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import psutil

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

def package_files() -> tuple[str, ...]:
    """Every file of the package in the checkout: its modules, those that reloadkit runs or
    loads by path in its children (child/_hook/sitecustomize.py, child/warm_parent.py,
    child/warm_imports.py, child/tracker.py...: only a real run notices one missing, and a
    new one needs no entry here), and py.typed."""
    package = ROOT / "reloadkit"
    return tuple(sorted(
        path.relative_to(ROOT).as_posix()
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed")
    ))


BY_PATH = package_files()

APP = '''\
import http.server

import reloadkit

MESSAGE = "{message}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = MESSAGE.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = reloadkit.sockets()[0]
reloadkit.notify_ready()
server.serve_forever()
'''


class CheckError(Exception):
    """One line saying what is wrong with the distribution."""


def run(argv: Sequence[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command, echo it, return its output; its failure fails the check."""
    print("$", " ".join(str(arg) for arg in argv), flush=True)
    result = subprocess.run([str(arg) for arg in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise CheckError(f"{argv[0]} exited with {result.returncode}:\n{output}")
    return output


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def source_version() -> str:
    match = re.search(r'^__version__ = "([^"]+)"$', (ROOT / "reloadkit" / "__init__.py").read_text(), re.M)
    if match is None:
        raise CheckError("reloadkit/__init__.py has no __version__ line")
    return match.group(1)


def build(dist: Path) -> tuple[Path, Path]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    output = run([sys.executable, "-m", "build", "--outdir", dist, ROOT], env=env)
    warnings = [line for line in output.splitlines() if re.search(r"(?i)\bwarn(ing)?s?\b", line)]
    if warnings:
        raise CheckError("the build printed warnings:\n" + "\n".join(warnings))
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise CheckError(f"expected one wheel and one sdist in {dist}, found {wheels + sdists}")
    return wheels[0], sdists[0]


def check_contents(wheel: Path, sdist: Path, version: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"reloadkit-{version}.dist-info"
        metadata = email.message_from_bytes(archive.read(f"{info}/METADATA"))
    missing = [name for name in (*BY_PATH, f"{info}/licenses/LICENSE") if name not in names]
    if missing:
        raise CheckError(f"the wheel lacks {', '.join(missing)}")
    with tarfile.open(sdist) as archive:
        sdist_names = set(archive.getnames())
    top = f"reloadkit-{version}"
    missing = [name for name in ("LICENSE", "README.rst", *BY_PATH) if f"{top}/{name}" not in sdist_names]
    if missing:
        raise CheckError(f"the sdist lacks {', '.join(missing)}")
    expected = {
        "Version": version,
        "License-Expression": "MIT",
    }
    for field, value in expected.items():
        if metadata.get(field) != value:
            raise CheckError(f"METADATA {field} is {metadata.get(field)!r}, expected {value!r}")
    classifiers = metadata.get_all("Classifier") or []
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    if "Typing :: Typed" not in classifiers:
        raise CheckError("no 'Typing :: Typed' classifier")
    if not {"Source", "Documentation", "Issues"} <= set(urls) or not metadata.get("Author") or not metadata.get("Keywords"):
        raise CheckError(f"incomplete metadata: authors, keywords and Source/Documentation/Issues URLs (have {urls})")
    print(f"check_dist: wheel and sdist hold the {len(BY_PATH)} files of reloadkit/ and LICENSE; metadata complete", flush=True)


def fresh_venv(workdir: Path, wheel: Path, version: str) -> Path:
    venv = workdir / "fresh-venv"
    run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel])
    for argv in ([venv / "bin" / "reloadkit", "--version"], [python, "-m", "reloadkit", "--version"]):
        said = run(argv, cwd=workdir).strip()
        if said != f"reloadkit {version}":
            raise CheckError(f"{' '.join(map(str, argv))} printed {said!r}, expected 'reloadkit {version}'")
    where = run([python, "-c", "import reloadkit; print(reloadkit.__file__)"], cwd=workdir).strip()
    if not Path(where).is_relative_to(venv):
        raise CheckError(f"the fresh venv imports reloadkit from {where}")
    return venv


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return None


def one_reload(workdir: Path, venv: Path) -> None:
    project = workdir / "project"
    project.mkdir()
    (project / "app.py").write_text(APP.format(message="v1"))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("LISTEN_", "RELOADKIT_", "WERKZEUG_", "PYTHON")) and key != "NOTIFY_SOCKET"}
    argv = [str(venv / "bin" / "reloadkit"), "run", "-b", "127.0.0.1:0", "--imports", "--",
            str(venv / "bin" / "python"), "app.py"]
    print("$", " ".join(argv), flush=True)
    log = workdir / "reloadkit.log"
    seen: dict[int, psutil.Process] = {}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    supervisor = psutil.Process(proc.pid)
    seen[proc.pid] = supervisor

    def remember() -> None:
        try:
            for child in supervisor.children(recursive=True):
                seen.setdefault(child.pid, child)
        except psutil.Error:
            pass

    def output() -> str:
        remember()
        return log.read_text(errors="replace")

    try:
        match = wait_for(lambda: re.search(r"listening on (http://\S+)", output()), "reloadkit to listen")
        url = match.group(1)
        wait_for(lambda: get(url) == "v1", "the app to answer v1")
        (project / "app.py").write_text(APP.format(message="v2"))
        wait_for(lambda: get(url) == "v2", "the edited app to answer v2")
        wait_for(lambda: len(re.findall(r"started pid \d+", output())) >= 2, "the second generation's start line")
        # the warm parent (child/warm_parent.py, run by path) and the import report of the
        # hook (child/_hook/sitecustomize.py, which loads child/tracker.py by path) both worked
        wait_for(lambda: re.search(r"warm parent pid \d+ ready: [1-9]\d* modules imported", output()), "the warm parent")
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=30)
        wait_for(lambda: not _alive(seen), "every process of reloadkit's tree to end", timeout=10)
        print(f"check_dist: one reload through the installed wheel (v1 -> v2 at {url}); reloadkit exited {status};"
              f" none of its {len(seen)} processes left", flush=True)
    except BaseException:
        print(f"----- reloadkit's output -----\n{log.read_text(errors='replace')}", flush=True)
        raise
    finally:
        for process in seen.values():
            try:
                if process.is_running():
                    process.kill()
            except psutil.Error:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _alive(processes: dict[int, psutil.Process]) -> list[int]:
    alive = []
    for pid, process in processes.items():
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.Error:
            pass
    return alive


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/check_dist.py WORKDIR", file=sys.stderr)
        return 2
    workdir = Path(argv[0]).resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    try:
        version = source_version()
        wheel, sdist = build(workdir / "dist")
        run([sys.executable, "-m", "twine", "check", "--strict", wheel, sdist])
        run([sys.executable, "-m", "check_wheel_contents", wheel])
        check_contents(wheel, sdist, version)
        venv = fresh_venv(workdir, wheel, version)
        one_reload(workdir, venv)
    except CheckError as exc:
        print(f"check_dist: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps({"check_dist": "passed", "wheel": wheel.name, "sdist": sdist.name}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
