"""The warm parent forks a generation as the supervisor's own child: with clone(2)'s
``CLONE_PARENT`` (one copy of the process), or, where that is not available, by forking twice
(the grandchild re-parents to the supervisor, a child subreaper). Both ways, run for real in a
small "supervisor" process: the generation's parent, and who reaps it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import reloadkit

pytestmark = pytest.mark.timeout(30)

WARM_PARENT = Path(reloadkit.__file__).resolve().parent / "child" / "warm_parent.py"

SUPERVISOR = '''
import ctypes, importlib.util, json, os, socket, sys, time

spec = importlib.util.spec_from_file_location("_reloadkit_warm", sys.argv[1])
warm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(warm)
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER, as the supervisor is
supervisor = os.getpid()
ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
report_read, report_write = os.pipe()
done_read, done_write = os.pipe()
parent_pid = os.fork()
if parent_pid == 0:  # the warm parent
    parent = warm.WarmParent(theirs.fileno())
    parent.libc, parent.clone = warm._libc() if sys.argv[2] == "clone" else (None, None)

    def become(job, fds):  # the generation: its parent when it starts, once re-parented
        first = os.getppid()
        deadline = time.monotonic() + 10
        while os.getppid() != job["supervisor"] and time.monotonic() < deadline:
            time.sleep(0.001)
        os.write(report_write, json.dumps([first, os.getppid()]).encode())
        os._exit(0)

    parent._become = become
    parent._fork_twice({"supervisor": supervisor}, [])
    os.read(done_read, 1)  # alive until the generation reported: it cannot inherit it as an orphan
    os._exit(0)
forked = json.loads(ours.recv(4096))["forked"]
first, later = json.loads(os.read(report_read, 4096))
os.write(done_write, b"x")
reaped, _status = os.waitpid(forked, 0)  # only a child can be waited for
os.waitpid(parent_pid, 0)
print(json.dumps({"supervisor": supervisor, "warm_parent": parent_pid, "forked": forked,
                  "first_parent": first, "parent": later, "reaped": reaped}))
'''


def _fork(how: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", SUPERVISOR, str(WARM_PARENT), how], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    result: dict[str, int] = json.loads(out)
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="warm generations are Linux only (docs/warm.rst)")
def test_with_clone_the_generation_is_the_supervisors_child_from_its_first_instruction() -> None:
    result = _fork("clone")
    assert result["first_parent"] == result["parent"] == result["supervisor"]
    assert result["reaped"] == result["forked"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="warm generations are Linux only (docs/warm.rst)")
def test_without_clone_the_generation_is_forked_twice_and_re_parents_to_the_supervisor() -> None:
    result = _fork("twice")
    assert result["first_parent"] != result["warm_parent"]  # the middle process (or, once it exited, us)
    assert result["parent"] == result["supervisor"]
    assert result["reaped"] == result["forked"]
