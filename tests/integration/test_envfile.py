"""--env-file: the child sees the file's variables, an edit restarts with the new ones, a bad
line keeps the old ones, and the real environment wins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import Reloadkit, reloadkit_env, serves, wait_for, write_file

pytestmark = pytest.mark.timeout(90)
APP = Path(__file__).parent / "apps" / "show_env.py"


def test_env_file_values_edits_and_bad_lines(tmp_path: Path) -> None:
    src, conf = tmp_path / "src", tmp_path / "conf"
    src.mkdir()
    conf.mkdir()
    env_file = conf / "app.env"  # outside the watched root, and no include glob matches it
    env_file.write_text("GREETING=hello\nexport NAME='a b'\nSHELL_WINS=file\n")
    args = ["-b", "127.0.0.1:0", "-w", str(src), "--env-file", str(env_file),
            "--", sys.executable, str(APP), "GREETING", "NAME", "SHELL_WINS"]
    with Reloadkit(args, cwd=tmp_path, env={"SHELL_WINS": "shell"}) as rk:
        rk.wait_listening()
        serves(rk, "GREETING=hello NAME=a b SHELL_WINS=shell")
        write_file(env_file, "GREETING=bonjour\nNAME=${GREETING}-2\n")
        serves(rk, "GREETING=bonjour NAME=bonjour-2 SHELL_WINS=shell")
        # the new generation can answer before the log line reaches the reader thread
        wait_for(lambda: rk.generations() == 2, 10, "generation 1's start line")
        write_file(env_file, "GREETING=hola\nthis is not a dotenv line\n")
        rk.wait_for_output(r"env file .*app\.env: line 2 is not KEY=VALUE: 'this is not a dotenv line'; keeping its previous values")
        wait_for(lambda: rk.generations() == 3, 20, "the restart after the bad edit")
        serves(rk, "GREETING=bonjour NAME=bonjour-2 SHELL_WINS=shell")
        write_file(env_file, "GREETING=hola\n")
        serves(rk, "GREETING=hola NAME=- SHELL_WINS=shell")


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read it: No such file or directory"),
    ("A=1\n'unterminated\n", "line 2 is not KEY=VALUE"),
])
def test_a_bad_env_file_at_start_is_one_line_and_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    env_file = tmp_path / ".env"
    if content is not None:
        env_file.write_text(content)
    result = subprocess.run([sys.executable, "-m", "reloadkit", "run", "--env-file", ".env", "--", sys.executable, "-c", "pass"],
                            cwd=tmp_path, env=reloadkit_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
