"""The public API as a typed caller sees it: ``mypy --strict`` on small programs.

``reloadkit.run_with_reloader`` and ``reloadkit.run_simple`` are imported lazily at run time
(a module ``__getattr__``); type checkers must still see their signatures, with every option
of ``reloadkit run`` as a typed keyword. Errors inside reloadkit are not the caller's
(``--follow-imports=silent``, as for an installed package), so only the caller is judged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import reloadkit

pytestmark = pytest.mark.timeout(120)

#: The reloadkit the tests import: the one mypy must read.
PACKAGE_ROOT = Path(reloadkit.__file__).resolve().parents[1]
#: An installed reloadkit mypy finds in the interpreter's site-packages by itself (and refuses
#: site-packages on MYPYPATH); a source checkout (or an editable install's import hook, which
#: mypy cannot follow) is pointed to.
_INSTALLED = PACKAGE_ROOT.name in ("site-packages", "dist-packages")
_MYPY_ENV = {"PATH": "/usr/bin:/bin", **({} if _INSTALLED else {"MYPYPATH": str(PACKAGE_ROOT)})}

CALLER = '''\
from __future__ import annotations

import signal
from collections.abc import Iterable
from typing import TYPE_CHECKING

import reloadkit

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def main() -> None:
    print(len(reloadkit.sockets()), reloadkit.is_child())


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def serve_with_reloader() -> None:
    reloadkit.run_with_reloader(
        main, bind=["127.0.0.1:8000", "admin=unix:admin.sock"], extra_files=["settings.toml"],
        exclude_patterns=["*/migrations/*"], interval=0.5, reloader_type="stat", watch="src",
        include=["*.html"], exclude=("*.tmp",), ext="py,txt", poll=0.5, debounce_ms=20, imports=True,
        ignore_vcs=False, reload=True, stop_signal=signal.SIGINT, stop_timeout=2, overlap=None, warm=False,
        strict_order=True, ready_after=1.5, env_files=[".env"], through_wrapper=False, error_page=True,
        livereload=True, livereload_port=35729, livereload_static=["*.svg"], verbosity=-1, backlog=None,
    )


def serve_simple() -> None:
    reloadkit.run_simple("127.0.0.1", 8000, app, use_reloader=True, threaded=True, reloader_interval=1.0,
                         warm=True, poll=True, livereload=True, stop_signal="INT", bind=None)
'''

BAD = '''\
import reloadkit


def not_a_bool() -> None:
    reloadkit.run_with_reloader(lambda: None, warm="yes")


def misspelt() -> None:
    reloadkit.run_with_reloader(lambda: None, wram=True)


def not_a_number() -> None:
    reloadkit.run_simple("127.0.0.1", 8000, lambda environ, start_response: [], poll="fast")
'''


def _mypy(tmp_path: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / name).write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-error-summary",
         "--cache-dir", str(tmp_path / ".mypy_cache"), name],
        cwd=tmp_path, env=_MYPY_ENV,
        capture_output=True, text=True, timeout=100, check=False,
    )


def test_a_typed_caller_passes_mypy_strict(tmp_path: Path) -> None:
    result = _mypy(tmp_path, "caller.py", CALLER)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_rejects_wrong_options(tmp_path: Path) -> None:
    result = _mypy(tmp_path, "bad.py", BAD)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = sorted(line.split(" error: ")[1] for line in result.stdout.splitlines() if " error: " in line)
    assert errors == [
        'Argument "poll" to "run_simple" has incompatible type "str"; expected "bool | float | None"  [arg-type]',
        'Argument "warm" to "run_with_reloader" has incompatible type "str"; expected "bool"  [arg-type]',
        'Unexpected keyword argument "wram" for "run_with_reloader"  [call-arg]',
    ], result.stdout


def test_the_entry_points_stay_lazy() -> None:
    """A child that only wants its sockets imports neither the supervisor nor the WSGI server."""
    code = ("import sys, reloadkit; reloadkit.sockets; "
            "print(sorted(m for m in ('reloadkit.reloader', 'reloadkit.wsgi', 'reloadkit.supervisor.loop',"
            " 'reloadkit.config.options') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE_ROOT, capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"
    code = "import reloadkit; print(reloadkit.run_with_reloader.__module__, reloadkit.run_simple.__module__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE_ROOT, capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.split() == ["reloadkit.reloader", "reloadkit.wsgi"]
