"""EnvFiles: python-dotenv parses, the real environment wins, later files win, bad edits keep old values."""

from __future__ import annotations

from pathlib import Path

import pytest

from reloadkit.config.envfiles import EnvFiles, read_env_file
from reloadkit.errors import EnvFileError

pytestmark = pytest.mark.timeout(30)


def test_read_env_file_formats(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# comment\nA=1\nexport B='x y'\nC=\"${A}-2\"\nBARE\nEMPTY=\n")
    assert read_env_file(str(path)) == {"A": "1", "B": "x y", "C": "1-2", "EMPTY": ""}


def test_precedence_and_refresh(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    first.write_text("X=first\nY=first\nZ=first\n")
    second.write_text("Y=second\n")
    files = EnvFiles(["a.env", str(second)], cwd=str(tmp_path))
    assert files.paths == (str(first), str(second))
    assert files.environment({"Z": "real"}) == {"X": "first", "Y": "second", "Z": "real"}
    warnings: list[str] = []
    first.write_text("X=new\n'broken\n")
    second.write_text("Y=newer\n")
    files.refresh(warnings.append)
    assert files.environment({}) == {"X": "first", "Y": "newer", "Z": "first"}  # a.env keeps its old values
    assert len(warnings) == 1 and "a.env: line 2 is not KEY=VALUE" in warnings[0]
    first.unlink()
    files.refresh(warnings.append)
    assert "cannot read it" in warnings[1]


def test_bad_file_at_start_raises(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ok=1\nnot ok\n")
    with pytest.raises(EnvFileError, match=r"line 2 is not KEY=VALUE: 'not ok'"):
        EnvFiles([".env"], cwd=str(tmp_path))
