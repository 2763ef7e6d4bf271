"""Wagtail: save -> first response from the new code, warm vs ``--no-warm`` vs ``runserver``.

    python bench/wagtail_reload.py [--edits 5] [--project PATH]

Makes a ``wagtail start`` project (migrated) in a temporary directory unless ``--project``
names one, adds a page that shows ``home/views.py``'s ``VERSION``, and for each mode, in one
run: starts the server, waits until it serves (and, warm, until the warm parent is ready),
then edits ``VERSION`` ``--edits`` times and times each save until a new connection gets the
new version (polled every 10 ms). Prints the median and every figure, and how many polls
failed (refused or errors) while the server was reloading.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
MODES = ("warm", "cold", "runserver")
VIEWS = (
    "from django.http import JsonResponse\nfrom wagtail.models import Page\n\nVERSION = 'v0'\n\n\n"
    "def rk(request):\n    return JsonResponse({'version': VERSION, 'pages': Page.objects.count()})\n"
)


def version(port: int) -> str | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/rk/")
        response = connection.getresponse()
        body = response.read().decode()
        if response.status != 200:
            return None
        found = json.loads(body).get("version")
        return found if isinstance(found, str) else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def make_project(base: Path) -> Path:
    subprocess.run([str(BIN / "wagtail"), "start", "mysite"], cwd=base, check=True, capture_output=True)
    root = base / "mysite"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, check=True, capture_output=True)
    return root


def prepare(template: Path, root: Path) -> None:
    shutil.copytree(template, root)
    (root / "home" / "views.py").write_text(VIEWS)
    urls = root / "mysite" / "urls.py"
    urls.write_text(urls.read_text().replace(
        "urlpatterns = [\n", "from home.views import rk\n\nurlpatterns = [\n    path('rk/', rk),\n", 1))


def command(mode: str, port: int) -> list[str]:
    if mode == "runserver":
        return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]
    warm = ["--no-warm"] if mode == "cold" else []
    return [sys.executable, "-m", "reloadkit", "run", "-v", *warm, "-b", f"127.0.0.1:{port}", "--", "gunicorn", "mysite.wsgi"]


def wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def measure(mode: str, template: Path, work: Path, port: int, edits: int) -> tuple[list[float], int]:
    root = work / mode / "mysite"
    prepare(template, root)
    log_path = root.parent / "log.txt"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command(mode, port), cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    times: list[float] = []
    failed = 0
    try:
        wait(lambda: version(port) == "v0", 180, f"{mode} to serve")
        if mode == "warm":
            wait(lambda: "warm parent pid" in log_path.read_text(), 180, "the warm parent")
        time.sleep(2)
        views = root / "home" / "views.py"
        for number in range(1, edits + 1):
            text = re.sub(r"VERSION = '.*'", f"VERSION = 'v{number}'", views.read_text())
            start = time.monotonic()
            views.write_text(text)
            while (found := version(port)) != f"v{number}":
                failed += found is None
                if time.monotonic() - start > 120:
                    raise SystemExit(f"{mode}: edit {number} never served")
                time.sleep(0.01)
            times.append((time.monotonic() - start) * 1000)
            time.sleep(2)  # settle: a warm parent's rebuild, runserver's stat loop
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return times, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--project", type=Path, help="a migrated `wagtail start` project (copied, not changed)")
    parser.add_argument("--port", type=int, default=18760)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wagtail-reload-") as tmp:
        work = Path(tmp)
        template = args.project or make_project(work)
        for index, mode in enumerate(MODES):
            times, failed = measure(mode, template, work, args.port + index, args.edits)
            print(f"{mode:10s} median {statistics.median(times):6.0f} ms  each {[round(t) for t in times]}"
                  f"  failed polls {failed}", flush=True)


if __name__ == "__main__":
    main()
