"""The stderr tee: what passes through is copied as it is; the tail is the last lines."""

from __future__ import annotations

import os

import pytest

from reloadkit.proc.output import StderrTee

pytestmark = pytest.mark.timeout(30)


def _feed(tee: StderrTee, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(tee.write_fd, view[:1024]):]  # less than a pty buffer holds
        tee.drain()


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "pty"])
def test_the_tail_is_the_last_lines_and_everything_is_copied(capfd: pytest.CaptureFixture[str], terminal: bool) -> None:
    tee = StderrTee(terminal=terminal)
    try:
        lines = [f"line {number} " + "x" * 50 for number in range(5000)]  # ~300 KB: trimmed several times
        _feed(tee, ("\n".join(lines) + "\r\nunfinished").encode())
        tail = tee.lines()
        assert tail == [*lines[-49:-1], lines[-1], "unfinished"][-50:]
        assert len(tail) == 50
        out = capfd.readouterr().err
        assert out.startswith("line 0 ") and out.endswith("\r\nunfinished")  # copied unchanged (the pty: no OPOST)
    finally:
        tee.close()


def test_the_end_of_a_pty_is_an_end_of_file(capfd: pytest.CaptureFixture[str]) -> None:
    tee = StderrTee(terminal=True)
    try:
        os.write(tee.write_fd, b"last words\n")
        tee.close_write()
        assert tee.drain() is False  # EIO from a pty whose writers are gone: the end
        assert tee.lines() == ["last words"]
    finally:
        tee.close()
