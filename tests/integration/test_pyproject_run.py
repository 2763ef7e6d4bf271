"""reloadkit run with [tool.reloadkit] in pyproject.toml: the file's command runs; bad values end it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import Reloadkit, reloadkit_env, try_get, wait_for

pytestmark = pytest.mark.timeout(60)
APP = Path(__file__).parent / "apps" / "versioned.py"


def _write(tmp_path: Path, table: str) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.reloadkit]\n{table}\n")


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("colour = 'blue'", "[tool.reloadkit] colour: unknown key; expected one of:"),  # unknown key
        ("stop-timeout = 'soon'", "[tool.reloadkit] stop-timeout: expected a number, not 'soon' (a string)"),  # wrong type
        ("watch = 'src'\nbind = ['127.0.0.1:99999']", "[tool.reloadkit] bind: "),  # bad value (argparse/parse_binds)
        ("backlog = -1", "[tool.reloadkit] backlog: --backlog must be at least 1"),  # bad value (Config)
        ("stop-signal = 'SIGNOPE'", "[tool.reloadkit] stop-signal: unknown signal 'SIGNOPE'"),  # bad value (parse_signal)
        ("stop-timeout = ", "not valid TOML"),  # not TOML at all
    ],
)
def test_a_bad_config_is_one_line_and_exit_2(tmp_path: Path, table: str, expected: str) -> None:
    _write(tmp_path, f"command = ['{sys.executable}', '-c', 'pass']\n{table}")
    (tmp_path / "src").mkdir()
    result = subprocess.run([sys.executable, "-m", "reloadkit", "run"], cwd=tmp_path, env=reloadkit_env(),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"reloadkit: error: {tmp_path / 'pyproject.toml'}: ")
    assert expected in lines[0]
    assert result.stdout == ""


def test_run_without_dashes_runs_the_files_command_with_its_binds(tmp_path: Path) -> None:
    (tmp_path / "version.py").write_text("VERSION = 'from-file'\n")
    _write(tmp_path, f"command = [{str(sys.executable)!r}, {str(APP)!r}]\nbind = '127.0.0.1:0'\nstop-timeout = 2")
    with Reloadkit([], cwd=tmp_path) as rk:
        rk.wait_listening()
        wait_for(lambda: try_get(rk.url) == "from-file", 20, "the file's command to serve")
