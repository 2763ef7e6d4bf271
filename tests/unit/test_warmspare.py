"""The supervisor's side of a generation forked ahead (a spare), against a parent played by
the test over a real socket pair: the look ahead does not wait for the fork, the spare's pid
is read when the supervisor's processes are asked for (it is ours, not an orphan), and a
parent that cannot fork one is not asked again."""

from __future__ import annotations

import array
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reloadkit.proc.warm import WarmParent, _Parent
from reloadkit.proc.warmplan import Fingerprint

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def warm(tmp_path: Path) -> Iterator[tuple[WarmParent, _Parent, socket.socket, list[str]]]:
    said: list[str] = []
    (tmp_path / "app.py").write_text("")
    with selectors.DefaultSelector() as selector:
        manager = WarmParent([sys.executable, "app.py"], enabled=True, cwd=str(tmp_path), watch_roots=[str(tmp_path)],
                             selector=selector, environ=dict(os.environ), info=said.append, debug=said.append)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent = _Parent(pid=os.getpid(), sock=ours, env={}, modules=set(), fingerprint=Fingerprint(), ready=True)
        manager.parent = parent
        try:
            yield manager, parent, theirs, said
        finally:
            manager.parent = None  # the pid is this test's own: not killed
            parent.drop_spare()
            ours.close()
            theirs.close()


def _answer(theirs: socket.socket, reply: Callable[[], dict[str, object]]) -> threading.Thread:
    """The parent's part: take the request and the spare's socket, answer on that socket."""

    def run() -> None:
        fds = array.array("i")
        data, ancillary, _flags, _address = theirs.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
        assert json.loads(data) == {"spare": True, "supervisor": os.getpid()}
        fds.frombytes(ancillary[0][2])
        with socket.socket(fileno=fds[0]) as spare:
            spare.send(json.dumps(reply()).encode())

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_spare_is_known_by_pid_when_asked_for_and_ended_when_dropped(warm: tuple) -> None:
    manager, parent, theirs, _said = warm
    sleeper = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])  # stands in for the fork
    try:
        thread = _answer(theirs, lambda: {"spare": sleeper.pid})
        manager.look_ahead(0.0, spare=True)
        thread.join(10)
        assert parent.spare is not None and parent.spare.pid is None  # the look ahead did not wait for the fork
        assert sleeper.pid in manager.pids()  # read when asked: not an orphan of the stopping generation
        assert parent.spare.pid == sleeper.pid
        manager.drop_spare()
        assert parent.spare is None
        assert sleeper.wait(10) == -9
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_parent_that_cannot_fork_a_spare_is_not_asked_again(warm: tuple) -> None:
    manager, parent, theirs, said = warm
    thread = _answer(theirs, lambda: {"nospare": "no clone(2) with CLONE_PARENT"})
    manager.look_ahead(0.0, spare=True)
    thread.join(10)
    assert manager.pids() == {os.getpid()}
    assert parent.spare is None
    assert said == ["--warm: no generation is forked ahead: no clone(2) with CLONE_PARENT"]
    manager.look_ahead(0.0, spare=True)
    theirs.setblocking(False)
    with pytest.raises(BlockingIOError):
        theirs.recv(4096)  # nothing asked
