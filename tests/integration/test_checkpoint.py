"""The project checkpoint: a warm generation imports only the edited module and the modules
that import it; everything else comes from the checkpoint, and what it serves is what a
cold start of the same code serves.

A small project whose every module records the pid that ran its body: the server answers
with the modules imported by the serving process itself, and with values from each module.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import SOURCE_PATH, Reloadkit, try_get, wait_for, write_file

pytestmark = pytest.mark.timeout(120)

CHECKPOINT_READY = r"project checkpoint pid (\d+) ready"

RECORD = "import os as _os\nimport app.ran as _ran\n_ran.RAN.append((__name__, _os.getpid()))\n"

#: Serves ``app.main.state()`` and the generation, one request per connection.
SERVE = """\
import json
import os
import select
import signal
import sys

import app.main
import reloadkit

wakeup_read, wakeup_write = os.pipe()
os.set_blocking(wakeup_write, False)
signal.set_wakeup_fd(wakeup_write)
signal.signal(signal.SIGTERM, lambda *_: None)
sock = reloadkit.sockets()[0]
while True:
    ready, _, _ = select.select([sock, wakeup_read], [], [])
    if wakeup_read in ready:
        sys.exit(0)
    conn, _ = sock.accept()
    with conn:
        request = b""
        while b"\\r\\n\\r\\n" not in request:
            chunk = conn.recv(65536)
            if not chunk:
                break
            request += chunk
        body = json.dumps({"generation": os.environ["RELOADKIT_GENERATION"], **app.main.state()}).encode()
        conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
"""

FILES = {
    "app/__init__.py": "",
    "app/ran.py": "RAN = []\n",
    "app/models.py": RECORD + "MODEL = 'model-v0'\n",
    "app/views_a.py": RECORD + "from app.models import MODEL\n\nVIEW = 'a-v0'\n",
    "app/views_b.py": RECORD + "from app.models import MODEL\n\nVIEW = 'b-v0'\n",
    "app/main.py": RECORD + """\
from app import models, views_a, views_b

ROUTES = [views_a, views_b]


def state():
    mine = sorted(name for name, pid in _ran.RAN if pid == _os.getpid())
    return {"imported_here": mine, "views": [(view.VIEW, view.MODEL) for view in ROUTES], "model": models.MODEL}
""",
    "serve.py": SERVE,
}

#: Modules that only read others (the views) and modules that register on another (the models
#: append to ``app.registry``): each records the pid that ran it in a variable of its own.
PID = "import os as _os\n\nPID = _os.getpid()\n"
REGISTERS = "from app import registry\n\nregistry.NAMES.append(__name__)\n"
ORDER_FILES = {
    "app/__init__.py": "",
    "app/registry.py": PID + "NAMES = []\n",
    "app/models_a.py": PID + REGISTERS + "MODEL = 'a-v0'\n",
    "app/models_b.py": PID + REGISTERS + "MODEL = 'b-v0'\n",
    "app/views_a.py": PID + "from app.models_a import MODEL\n\nVIEW = 'view-a-v0'\n",
    "app/views_b.py": PID + "from app.models_b import MODEL\n\nVIEW = 'view-b-v0'\n",
    "app/main.py": PID + """\
import sys

from app import views_a, views_b


def state():
    project = [name for name in sorted(sys.modules) if name.startswith("app.")]
    return {"imported_here": [name for name in project if getattr(sys.modules[name], "PID", None) == _os.getpid()],
            "views": [(view.VIEW, view.MODEL) for view in (views_a, views_b)],
            "registered": sys.modules["app.registry"].NAMES}
""",
    "serve.py": SERVE,
}


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return _write(tmp_path, FILES)


def _answer(rk: Reloadkit, generation: int) -> dict[str, Any]:
    def answer() -> dict[str, Any] | None:
        body = try_get(rk.url)
        data: dict[str, Any] | None = json.loads(body) if body else None
        return data if data is not None and data["generation"] == str(generation) else None

    return wait_for(answer, 30, f"generation {generation} to serve")


def _edit(rk: Reloadkit, project: Path, name: str, old: str, new: str, generation: int) -> dict[str, Any]:
    path = project / name
    write_file(path, path.read_text().replace(old, new))
    rk.wait_for_output(rf"generation {generation} forked warm")
    return _answer(rk, generation)


def test_a_generation_from_the_checkpoint_imports_only_what_changed_and_its_importers(project: Path) -> None:
    env = {"PYTHONPATH": ":".join(SOURCE_PATH), "PYTHONDONTWRITEBYTECODE": "1"}
    with Reloadkit(["-v", "-b", "127.0.0.1:0", "--", sys.executable, "serve.py"], cwd=project, env=env) as rk:
        cold = _answer(rk, 0)
        assert cold["imported_here"] == ["app.main", "app.models", "app.views_a", "app.views_b"]
        rk.wait_for_output(CHECKPOINT_READY)
        # The checkpoint holds views_b: this start forks from the installed-modules parent,
        # and the checkpoint is rebuilt with views_b hot.
        first = _edit(rk, project, "app/views_b.py", "b-v0", "b-v1", 1)
        assert first["views"] == [["a-v0", "model-v0"], ["b-v1", "model-v0"]]
        assert first["imported_here"] == cold["imported_here"]
        assert rk.count(r"generation 1 does not start from the project checkpoint: it holds app.views_b") == 1
        rk.wait_for_output(CHECKPOINT_READY, count=2)
        second = _edit(rk, project, "app/views_b.py", "b-v1", "b-v2", 2)
        assert second["views"] == [["a-v0", "model-v0"], ["b-v2", "model-v0"]]
        assert second["imported_here"] == ["app.main", "app.views_b"]
        assert rk.count(r"generation 2 forked warm from pid \d+ \(the project checkpoint") == 1
        # A model edit: everything that imports it is imported again, from the next checkpoint.
        third = _edit(rk, project, "app/models.py", "model-v0", "model-v1", 3)
        assert third["views"] == [["a-v0", "model-v1"], ["b-v2", "model-v1"]]
        rk.wait_for_output(CHECKPOINT_READY, count=3)
        fourth = _edit(rk, project, "app/models.py", "model-v1", "model-v2", 4)
        assert fourth["views"] == [["a-v0", "model-v2"], ["b-v2", "model-v2"]]
        assert fourth["model"] == "model-v2"
        assert fourth["imported_here"] == ["app.main", "app.models", "app.views_a", "app.views_b"]
        assert rk.count(r"generation 4 forked warm from pid \d+ \(the project checkpoint") == 1
        assert "starts cold" not in rk.output


def test_the_supervisor_sleeps_while_the_checkpoint_waits_for_the_other_parents_build(tmp_path: Path) -> None:
    """The checkpoint is built after the installed-modules parent, never beside it. Its build
    falls due while the other one runs; that due time was still the loop's deadline, already
    past, so the supervisor spun (a core for as long as the other build took: on 2 cores,
    beside the build and the server). An installed module that takes a second to import
    (it sleeps: no CPU) makes each build last that long."""
    project = _write(tmp_path / "project", {**FILES, "serve.py": "import slowlib  # noqa: F401\n" + SERVE})
    site = tmp_path / "lib" / "site-packages"
    site.mkdir(parents=True)
    # The fixed pause is the thing under test: a build that lasts a second and uses no CPU.
    (site / "slowlib.py").write_text("import time\n\ntime.sleep(1.0)\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), *SOURCE_PATH]), "PYTHONDONTWRITEBYTECODE": "1"}
    with Reloadkit(["-v", "-b", "127.0.0.1:0", "--", sys.executable, "serve.py"], cwd=project, env=env) as rk:
        assert rk.proc is not None
        supervisor = psutil.Process(rk.proc.pid)
        _answer(rk, 0)
        before = supervisor.cpu_times()
        rk.wait_for_output(CHECKPOINT_READY)
        after = supervisor.cpu_times()
        assert rk.count(r"warm parent pid \d+ ready") == 1  # built once in the window: then the checkpoint
        # Asleep, the supervisor handles a few messages in these two seconds or more: a few
        # milliseconds. Spinning, it used about a second (0.97-1.02 s measured).
        used = after.user + after.system - before.user - before.system
        assert used < 0.4, (used, rk.output[-2000:])


def test_no_checkpoint_turns_it_off(project: Path) -> None:
    env = {"PYTHONPATH": ":".join(SOURCE_PATH), "RELOADKIT_CHECKPOINT": "0"}
    with Reloadkit(["-v", "-b", "127.0.0.1:0", "--", sys.executable, "serve.py"], cwd=project, env=env) as rk:
        _answer(rk, 0)
        rk.wait_for_output(r"warm parent pid \d+ ready")
        for generation in (1, 2):
            answer = _edit(rk, project, "app/views_b.py", f"b-v{generation - 1}", f"b-v{generation}", generation)
            assert answer["imported_here"] == ["app.main", "app.models", "app.views_a", "app.views_b"]
        assert "project checkpoint" not in rk.output


def test_an_edited_module_that_registers_nowhere_is_imported_after_the_modules_that_follow_it(tmp_path: Path) -> None:
    """Skipped over: the checkpoint also holds what a cold start imports after the edited view
    (views_b, models_b). An edited model registers on app.registry, as models_b does after it:
    the checkpoint then stops before it, so the registry's order is a cold start's."""
    project = _write(tmp_path, ORDER_FILES)
    env = {"PYTHONPATH": ":".join(SOURCE_PATH), "PYTHONDONTWRITEBYTECODE": "1"}
    everything = ["app.main", "app.models_a", "app.models_b", "app.registry", "app.views_a", "app.views_b"]
    with Reloadkit(["-v", "-b", "127.0.0.1:0", "--", sys.executable, "serve.py"], cwd=project, env=env) as rk:
        cold = _answer(rk, 0)
        assert cold["imported_here"] == everything
        assert cold["registered"] == ["app.models_a", "app.models_b"]
        rk.wait_for_output(CHECKPOINT_READY)
        _edit(rk, project, "app/views_a.py", "view-a-v0", "view-a-v1", 1)  # held: rebuilt with it hot
        rk.wait_for_output(CHECKPOINT_READY, count=2)
        second = _edit(rk, project, "app/views_a.py", "view-a-v1", "view-a-v2", 2)
        assert second["imported_here"] == ["app.main", "app.views_a"]
        assert second["views"] == [["view-a-v2", "a-v0"], ["view-b-v0", "b-v0"]]
        assert second["registered"] == cold["registered"]
        assert rk.count(r"generation 2 forked warm from pid \d+ \(the project checkpoint") == 1
        _edit(rk, project, "app/models_a.py", "a-v0", "a-v1", 3)
        rk.wait_for_output(CHECKPOINT_READY, count=3)
        fourth = _edit(rk, project, "app/models_a.py", "a-v1", "a-v2", 4)
        assert fourth["registered"] == cold["registered"]
        assert fourth["imported_here"] == everything
        assert fourth["views"] == [["view-a-v2", "a-v2"], ["view-b-v0", "b-v0"]]
        assert rk.count(r"the project checkpoint holds nothing imported after this: app.models_a writes into"
                        r" app.registry, which a later import uses \(app.models_b\)") >= 1
        assert rk.count(r"generation 4 forked warm from pid \d+ \(the project checkpoint") == 1
        assert "starts cold" not in rk.output
