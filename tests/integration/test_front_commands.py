"""The commands a user types first: ``--version`` both ways, and ``doctor``, on the installed
console script (beside this interpreter) and ``python -m reloadkit``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import reloadkit_env

from reloadkit import __version__

SCRIPT = Path(sys.executable).parent / "reloadkit"


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=reloadkit_env(), cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("argv", [[str(SCRIPT)], [sys.executable, "-m", "reloadkit"]], ids=["script", "module"])
def test_version_and_doctor(argv: list[str], tmp_path: Path) -> None:
    if not SCRIPT.exists():
        pytest.skip(f"no console script beside {sys.executable} (reloadkit is not installed there)")
    version = _run([*argv, "--version"], tmp_path)
    assert (version.returncode, version.stdout) == (0, f"reloadkit {__version__}\n")
    report = _run([*argv, "doctor"], tmp_path)
    assert report.returncode == 0 and report.stderr == ""
    lines = report.stdout.splitlines()
    assert all(re.fullmatch(r"[\w .:/-]+: \S.*", line) for line in lines), lines
    names = [line.split(": ", 1)[0] for line in lines]
    assert names[0] == "reloadkit" and {"sock_diag", "subreaper", "pidfd", "watch ."} <= set(names)
    assert len(names) == len(set(names))
