"""The supervisor's side of a project checkpoint forked from the installed-modules parent,
against that parent played by the test over a real socket pair: the build is asked of it
with the checkpoint's plan, the fork's pid comes back, and the checkpoint's fingerprint keeps
what the parent's imports depended on. A parent that cannot fork one, or whose files changed,
is not asked: a fresh interpreter builds the checkpoint (a real process here)."""

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
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from reloadkit.proc.warm import WarmParent, _Parent
from reloadkit.proc.warmplan import Fingerprint, ProjectImports, parent_environment

pytestmark = pytest.mark.timeout(30)


@dataclass
class Setup:
    checkpoint: WarmParent
    base: WarmParent
    source: _Parent  # the installed-modules parent, played by the test (its pid is the test's own)
    theirs: socket.socket  # the parent's end of its control socket
    dependency: Path  # a file the installed-modules parent's imports depend on
    said: list[str]
    started: list[psutil.Process]  # fresh interpreters the builds started: reaped at the end


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    said: list[str] = []
    (tmp_path / "app.py").write_text("import shop\n")
    (tmp_path / "shop.py").write_text("")
    dependency = tmp_path / "installed.py"
    dependency.write_text("")
    env = parent_environment(os.environ)
    with selectors.DefaultSelector() as selector:
        def manager() -> WarmParent:
            return WarmParent([sys.executable, "app.py"], enabled=True, cwd=str(tmp_path), watch_roots=[str(tmp_path)],
                              selector=selector, environ=dict(os.environ), info=said.append, debug=said.append)

        base, checkpoint = manager(), manager()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        assert base.command is not None
        fingerprint = Fingerprint.take([str(dependency)], str(tmp_path), base.command.interpreter)
        source = _Parent(pid=os.getpid(), sock=ours, env=env, modules={"installed"}, fingerprint=fingerprint, ready=True)
        base.parent, base.base_env = source, env
        base.modules = {"installed": str(dependency)}
        checkpoint.project = ProjectImports()
        checkpoint.project.learn("shop", str(tmp_path / "shop.py"), "__main__")
        checkpoint.origin, checkpoint.base_env = base, env
        checkpoint.modules = {"installed": str(dependency), "shop": str(tmp_path / "shop.py")}
        try:
            started: list[psutil.Process] = []
            yield Setup(checkpoint, base, source, theirs, dependency, said, started)
        finally:
            base.parent = None  # the pid is this test's own: not killed
            checkpoint.close()
            ours.close()
            theirs.close()
            for process in started:
                process.wait(10)


def _answer(theirs: socket.socket, reply: Callable[[dict[str, object]], dict[str, object]]) -> threading.Thread:
    """The parent's part: take the request and the checkpoint's socket, answer on that socket."""

    def run() -> None:
        fds = array.array("i")
        data, ancillary, _flags, _address = theirs.recvmsg(1 << 16, socket.CMSG_SPACE(fds.itemsize))
        fds.frombytes(ancillary[0][2])
        with socket.socket(fileno=fds[0]) as sock:
            sock.send(json.dumps(reply(json.loads(data))).encode())

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _nothing_asked(theirs: socket.socket) -> None:
    theirs.setblocking(False)
    with pytest.raises(BlockingIOError):
        theirs.recv(4096)


def test_the_checkpoint_is_forked_from_the_installed_modules_parent_with_its_plan(setup: Setup) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])  # stands in for the fork
    requests: list[dict[str, object]] = []
    try:
        thread = _answer(setup.theirs, lambda request: requests.append(request) or {"building": sleeper.pid})
        setup.checkpoint._build()
        thread.join(10)
        building = setup.checkpoint.building
        assert building is not None and building.pid == sleeper.pid
        [request] = requests
        assert request["supervisor"] == os.getpid()
        plan = request["build"]
        assert isinstance(plan, dict)
        assert plan["modules"] == ["installed", "shop"] and plan["project"] == ["shop"] and plan["quiet"] is True
        assert building.modules == {"installed", "shop"}
        # The parent's imports as it saw them, and the project's module as it is now.
        assert building.fingerprint.stats[str(setup.dependency)] == setup.source.fingerprint.stats[str(setup.dependency)]
        assert str(Path(setup.checkpoint.cwd) / "shop.py") in building.fingerprint.stats
        assert f"building the project checkpoint (pid {sleeper.pid}, forked from pid {os.getpid()}): 2 modules" in setup.said
        setup.checkpoint.close()
        assert sleeper.wait(10) == -9
    finally:
        sleeper.kill()
        sleeper.wait()


def _fresh_build(setup: Setup) -> psutil.Process:
    building = setup.checkpoint.building
    assert building is not None and building.pid != os.getpid()
    process = psutil.Process(building.pid)
    setup.started.append(process)
    assert process.ppid() == os.getpid()  # a fresh interpreter this process started
    assert any(f"building the project checkpoint (pid {building.pid}): 2 modules" == line for line in setup.said)
    return process


def test_a_parent_that_cannot_fork_the_checkpoint_is_not_asked_again(setup: Setup) -> None:
    thread = _answer(setup.theirs, lambda _request: {"nobuild": "no clone(2) with CLONE_PARENT"})
    setup.checkpoint._build()
    thread.join(10)
    _fresh_build(setup)
    assert "--warm: the project checkpoint is built by a fresh interpreter: no clone(2) with CLONE_PARENT" in setup.said
    setup.checkpoint._build()
    _fresh_build(setup)
    _nothing_asked(setup.theirs)


def test_a_parent_whose_files_changed_is_not_forked_from(setup: Setup) -> None:
    """The checkpoint would hold the old module, and its fingerprint, taken from that parent's,
    would say nothing changed: a fresh interpreter imports the file as it is now."""
    setup.dependency.write_text("CHANGED = True\n")
    setup.checkpoint._build()
    _fresh_build(setup)
    _nothing_asked(setup.theirs)


def test_a_fork_too_late_to_be_waited_for_talks_to_a_closed_socket_not_the_fresh_build(setup: Setup) -> None:
    """The parent answers after the supervisor stopped waiting (a busy parent): the checkpoint
    is built by a fresh interpreter on a socket of its own, and the late fork's pid reaches
    nobody (it exits when its socket is closed)."""
    built = threading.Event()
    outcome: list[str] = []

    def late() -> None:
        fds = array.array("i")
        _data, ancillary, _flags, _address = setup.theirs.recvmsg(1 << 16, socket.CMSG_SPACE(fds.itemsize))
        fds.frombytes(ancillary[0][2])
        with socket.socket(fileno=fds[0]) as sock:
            built.wait(10)
            try:
                sock.send(json.dumps({"building": 1}).encode())
            except OSError as exc:
                outcome.append(type(exc).__name__)

    thread = threading.Thread(target=late)
    thread.start()
    setup.checkpoint._build()  # waits for the pid at most _SPARE_TIMEOUT (1 s)
    built.set()
    thread.join(10)
    _fresh_build(setup)
    assert setup.checkpoint.forked_builds  # no answer is not a "cannot": asked again next time
    assert outcome == ["BrokenPipeError"]
