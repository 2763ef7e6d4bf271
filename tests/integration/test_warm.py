"""``--warm``: generations forked from a warm parent start exactly as cold ones, and every
pitfall of forking a warm interpreter (threads, descriptors, buffered output, random seeds,
atexit, changed packages, a dead parent) is handled.

Each test runs real reloadkit on real Python commands in a temporary project; a generation
counts as warm when reloadkit says it forked it (``-v``).
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from support import Reloadkit, wait_for, write_file

pytestmark = pytest.mark.timeout(90)

APPS = Path(__file__).parent / "apps" / "warm"
READY = r"warm parent pid (\d+) ready"
#: What differs between two generations by design.
PER_GENERATION_ENV = ("RELOADKIT_GENERATION", "RELOADKIT_PID", "LISTEN_PID", "RELOADKIT_CHANGED")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    shutil.copytree(APPS, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (tmp_path / "reports").mkdir()
    return root


def _report(project: Path, generation: int, timeout: float = 30.0) -> dict[str, Any]:
    path = project.parent / "reports" / f"gen-{generation}.json"
    wait_for(path.exists, timeout, f"generation {generation}'s report")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _start(project: Path, command: list[str], *options: str, **env: str) -> Reloadkit:
    return Reloadkit(
        ["-v", "--warm", "-b", "127.0.0.1:0", *options, "--", *command],
        cwd=project,
        env={"REPORT_DIR": str(project.parent / "reports"), **env},
    )


def _reload(rk: Reloadkit, project: Path, generation: int) -> None:
    """Change a watched file; wait for ``generation`` to start."""
    write_file(project / "trigger.py", f"GENERATION = {generation}\n")
    rk.wait_for_output(rf"started pid \d+ \(generation {generation}\)")


def _warm_reload(rk: Reloadkit, project: Path, generation: int) -> None:
    _reload(rk, project, generation)
    rk.wait_for_output(rf"generation {generation} forked warm")


def _compare(cold: dict[str, Any], warm: dict[str, Any]) -> None:
    for report in (cold, warm):
        assert report["env"]["LISTEN_PID"] == str(report["pid"])
        assert report["env"]["RELOADKIT_PID"] == str(report["pid"])
        assert report["pgid"] == report["pid"]  # no terminal here: each generation has its own group
        assert report["pdeathsig"] == signal.SIGKILL
        assert report["threads"] == 1
    assert cold["ppid"] == warm["ppid"]  # the supervisor, for both
    assert cold["random"] != warm["random"]
    for key in PER_GENERATION_ENV:
        cold["env"].pop(key, None)
        warm["env"].pop(key, None)
    for key in ("pid", "pgid", "random"):
        del cold[key], warm[key]
    assert sorted(cold) == sorted(warm)
    for key in cold:
        assert warm[key] == cold[key], f"{key}: warm {warm[key]!r} != cold {cold[key]!r}"


def _console_script(project: Path) -> str:
    path = project / "tool"
    path.write_text(f"#!{sys.executable}\nimport contractdump\n\ncontractdump.main()\n")
    path.chmod(0o755)
    return str(path)


COMMANDS = {
    "script": lambda project: [sys.executable, "-X", "utf8", "-W", "ignore::UserWarning", "serve.py", "one", "two"],
    "module": lambda project: [sys.executable, "-m", "pkg", "--flag"],
    "code": lambda project: [sys.executable, "-c", "import contractdump; contractdump.main()", "arg"],
    "console-script": lambda project: [_console_script(project), "serve", "--port", "0"],
}


@pytest.mark.parametrize("kind", sorted(COMMANDS))
def test_a_warm_generation_starts_exactly_as_a_cold_one(project: Path, kind: str) -> None:
    with _start(project, COMMANDS[kind](project)) as rk:
        cold = _report(project, 0)
        rk.wait_for_output(READY)
        _warm_reload(rk, project, 1)
        warm = _report(project, 1)
        _compare(cold, warm)
        assert "starts cold" not in rk.output
