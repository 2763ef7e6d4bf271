"""``--warm``: generations forked from a warm parent start exactly as cold ones, and every
pitfall of forking a warm interpreter (threads, descriptors, buffered output, random seeds,
atexit, changed packages, a dead parent) is handled.

Each test runs real reloadkit on real Python commands in a temporary project; a generation
counts as warm when reloadkit says it forked it (``-v``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import SOURCE_PATH, LoopingClient, Reloadkit, assert_all_gone, try_get, wait_for, write_file

from reloadkit.child.protocol import GENERATION_VARIABLES

pytestmark = pytest.mark.timeout(90)

APPS = Path(__file__).parent / "apps" / "warm"
READY = r"warm parent pid (\d+) ready"
CHECKPOINT_READY = r"project checkpoint pid (\d+) ready"
#: What differs between two generations by design.
#: (RELOADKIT_BINDS_LEARN is not set for these apps, so it is compared like any other.)
PER_GENERATION_ENV = tuple(key for key in GENERATION_VARIABLES if key != "RELOADKIT_BINDS_LEARN")


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
        assert report.pop("proc_env") == report["env"]  # /proc/PID/environ shows it too
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
    for report in (cold, warm):  # stderr: each generation's own pipe through reloadkit (the error page's tail)
        assert report["fds"]["2"]["link"].startswith("pipe:")
        report["fds"]["2"]["link"] = "pipe"
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
        assert "RuntimeWarning" not in rk.output  # runpy's, for a `-m` module imported before it runs


def test_a_generation_forked_ahead_starts_exactly_as_a_cold_one(project: Path) -> None:
    """While a burst of changes settles, the next generation is forked ahead from the warm
    parent and waits for its job (docs/warm.rst): what it then becomes is what a cold start is,
    and the stopping generation's clean-up did not take it for an orphan of its own."""
    with _start(project, COMMANDS["script"](project), "--no-checkpoint") as rk:
        cold = _report(project, 0)
        rk.wait_for_output(READY)
        _reload(rk, project, 1)
        ahead = rk.wait_for_output(r"generation 1 forked warm from pid \d+ in [\d.]+ ms \(forked ahead as pid (\d+)\)")
        warm = _report(project, 1)
        assert warm["pid"] == int(ahead.group(1))
        _compare(cold, warm)
        assert "starts cold" not in rk.output


def test_a_generation_from_a_checkpoint_forked_from_the_warm_parent_starts_exactly_as_a_cold_one(project: Path) -> None:
    """An edit of a module the checkpoint holds (contractdump, which serve.py imports) makes
    the next generation fork from the installed-modules parent, and the checkpoint is rebuilt
    by a fork of that parent (docs/warm.rst): the generation after the next edit forks from
    that checkpoint, and starts as a cold one (its socket, its quiet stdio, its environment
    are not the generation's)."""
    dump = project / "contractdump.py"
    with _start(project, COMMANDS["script"](project)) as rk:
        cold = _report(project, 0)
        rk.wait_for_output(READY)
        rk.wait_for_output(CHECKPOINT_READY)
        dump.write_text(dump.read_text() + "\n# edited once\n")
        rk.wait_for_output(r"generation 1 does not start from the project checkpoint: it holds contractdump")
        _report(project, 1)
        # The first build after generation 0, then the rebuild with contractdump hot.
        built = rk.wait_for_output(r"building the project checkpoint \(pid (\d+), forked from pid \d+\)", count=2)
        rk.wait_for_output(rf"project checkpoint pid {built.group(1)} ready")
        dump.write_text(dump.read_text() + "# edited twice\n")
        rk.wait_for_output(rf"generation 2 forked warm from pid {built.group(1)} \(the project checkpoint\)")
        warm = _report(project, 2)
        _compare(cold, warm)
        assert "starts cold" not in rk.output


def test_a_generation_forked_ahead_and_not_used_is_ended(project: Path) -> None:
    """The checkpoint is the likely parent, but an edit of a file it may have read makes the
    start fork from the installed-modules parent: what was forked ahead from the checkpoint
    must not be left running."""
    with _start(project, COMMANDS["script"](project)) as rk:
        _report(project, 0)
        rk.wait_for_output(READY)
        rk.wait_for_output(CHECKPOINT_READY)
        _reload(rk, project, 1)
        spare = int(rk.wait_for_output(r"the generation forked ahead as pid (\d+) is not used; ending it").group(1))
        rk.wait_for_output(r"generation 1 forked warm from pid \d+ in [\d.]+ ms\n")
        assert _report(project, 1)["pid"] != spare
        wait_for(lambda: not psutil.pid_exists(spare), 10, "the unused spare to be ended and reaped")


def test_a_warm_generations_tracker_knows_every_module_it_was_forked_with(project: Path) -> None:
    """The warm parent makes that set before the fork (made in the generation, it costs about
    1 ms of copied pages). A module missing from it, one reloadkit's own code imports on the
    way, would be reported as the generation's import and rebuild the parent for it (one with
    a file: a built-in one is not reported)."""
    (project / "known.py").write_text(
        "import sys\n\n"
        "known = getattr(sys.modules.get('_reloadkit_import_tracker'), 'WARM_MODULES', frozenset())\n"
        "new = [name for name in set(sys.modules) - known if getattr(sys.modules[name], '__file__', None)]\n"
        "found = sorted(set(new) - {'__main__'}) if known else 'cold'\n"
        "sys.stdout.write(f'UNKNOWN {found}\\n')  # one write: reloadkit's own lines share the pipe\n"
        "sys.stdout.flush()\n"
        "import contractdump  # noqa: E402\n\n"
        "contractdump.main()\n"
    )
    with _start(project, [sys.executable, "known.py"]) as rk:
        rk.wait_for_output(r"UNKNOWN cold")
        rk.wait_for_output(READY)
        _warm_reload(rk, project, 1)
        rk.wait_for_output(r"UNKNOWN \[")
        assert "UNKNOWN []" in rk.output


# --- the pitfalls of forking a warm interpreter -----------------------------------------------

LIB_THREAD = "import threading\nimport time\n\nthreading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n"
LIBS = {
    "threadlib": LIB_THREAD,
    "socklib": "import socket\n\nSOCK = socket.socket()\n",
    "printlib": "print('PARTIAL', end='')\n",
    "atexitlib": "import atexit\nimport os\n\natexit.register(lambda: print(f'ATEXIT {os.getpid()}', flush=True))\n",
    "quietlib": "VALUE = 1\n",
    "pidlib": "import os\n\nPID = os.getpid()\n",
    # A framework that reads its settings when imported, as Django apps do: the project sets
    # them up (FW_SETTINGS, like DJANGO_SETTINGS_MODULE), so the import fails in the warm
    # parent after a submodule of the failing package was imported (Wagtail's rich_text).
    "fw/__init__.py": "",
    "fw/admin/__init__.py": "",
    "fw/admin/rich_text/__init__.py": (
        "import os\n\nfrom fw.admin.rich_text import features\n\n"
        "if 'FW_SETTINGS' not in os.environ:\n    raise RuntimeError('settings are not configured')\n"
    ),
    "fw/admin/rich_text/features.py": "VALUE = 1\n",
    "fwuser.py": "import fw.admin.rich_text.features as features\n",
    # A registry that refuses a second registration (Django 6's URL converters), and a module
    # that registers before it reads the settings (django-ninja's signature utils, which
    # Wagtail imports): its failed import in the warm parent leaves the registration behind.
    "fwregistry.py": (
        "NAMES = set()\n\n\ndef register(name):\n    if name in NAMES:\n"
        "        raise ValueError(f'Converter {name!r} is already registered.')\n    NAMES.add(name)\n"
    ),
    "fwurls.py": (
        "import os\n\nimport fwregistry\n\nfwregistry.register('uuidstr')\n"
        "if 'FW_SETTINGS' not in os.environ:\n    raise RuntimeError('settings are not configured')\n"
    ),
    # A framework module that fails without settings after importing a library that imports
    # fine by itself (Wagtail's app modules take PIL, pydantic, requests... along): the
    # library must stay in the warm parent.
    "fwtaker.py": (
        "import os\n\nimport piddep\n\n"
        "if 'FW_SETTINGS' not in os.environ:\n    raise RuntimeError('settings are not configured')\n"
    ),
    "piddep.py": "import os\n\nPID = os.getpid()\n",
    # An optional part that needs a package nobody installed, imported under `except ImportError`
    # (bs4's html5lib builder): the package must stay, without the part, as in a cold start.
    "optlib/__init__.py": (
        "import os\n\nPID = os.getpid()\n\ntry:\n    from optlib import _extra\nexcept ImportError:\n"
        "    _extra = None\n"
    ),
    "optlib/_extra.py": "import not_installed_anywhere  # noqa: F401\n",
    # A package that puts a lazy submodule in sys.modules (importlib.util.LazyLoader) and never
    # touches it: run, it starts a thread (autobahn's vendored flatbuffers imports numpy, whose
    # OpenBLAS does). A warm generation forked after that hung at exit, joining a thread of the
    # warm parent's.
    "lazylib/__init__.py": (
        "import importlib.util\nimport sys\n\nspec = importlib.util.find_spec('lazylib._heavy')\n"
        "spec.loader = importlib.util.LazyLoader(spec.loader)\nmodule = importlib.util.module_from_spec(spec)\n"
        "sys.modules['lazylib._heavy'] = module\nspec.loader.exec_module(module)\n"
    ),
    "lazylib/_heavy.py": LIB_THREAD,
}


def _site(tmp_path: Path) -> Path:
    """An installed-packages directory outside the project, with the pitfall modules."""
    site = tmp_path / "lib" / "site-packages"
    site.mkdir(parents=True)
    for name, text in LIBS.items():
        path = site / (name if name.endswith(".py") else f"{name}.py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return site


def _start_pitfalls(project: Path, libs: str, *python_options: str, **env: str) -> Reloadkit:
    site = _site(project.parent)
    return _start(
        project,
        [sys.executable, *python_options, "pitfalls.py"],
        WARM_LIBS=libs,
        PYTHONPATH=os.pathsep.join([str(site), *SOURCE_PATH]),
        **env,
    )


def _serving(rk: Reloadkit, version: str, generation: int) -> dict[str, Any]:
    def answer() -> dict[str, Any] | None:
        body = try_get(rk.url)
        if body is None:
            return None
        data: dict[str, Any] = json.loads(body)
        return data if data["version"] == version and data["generation"] == str(generation) else None

    return wait_for(answer, 30, f"generation {generation} to serve {version}")


def _bump(rk: Reloadkit, project: Path, generation: int, *, warm: bool = True) -> dict[str, Any]:
    write_file(project / "project_mod.py", f"VERSION = 'v{generation}'\n")
    rk.wait_for_output(rf"started pid \d+ \(generation {generation}\)")
    if warm:
        rk.wait_for_output(rf"generation {generation} forked warm")
    return _serving(rk, f"v{generation}", generation)


def test_a_module_that_starts_a_thread_or_opens_a_socket_is_left_out(project: Path) -> None:
    """Forking a process with threads warns (DeprecationWarning, an error here): the warm
    parent must never do it. The module is left out, said once, and imported by each
    generation itself, as a cold one does."""
    with _start_pitfalls(project, "threadlib,socklib,quietlib", "-W", "error::DeprecationWarning") as rk:
        _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        for generation in (1, 2):
            _bump(rk, project, generation)
        assert rk.count(r"threadlib is left out of the warm parent: it starts a thread when imported") == 1
        assert rk.count(r"socklib is left out of the warm parent: it opens a socket when imported") == 1
        assert "DeprecationWarning" not in rk.output
        assert "starts cold" not in rk.output


def test_a_lazy_module_is_run_by_neither_the_warm_parent_nor_a_generation(project: Path) -> None:
    """reloadkit reads the files of the imported modules; a lazy one must stay unrun, cold or
    warm, as the program left it: run, this one starts a thread. The generations stop on
    their signal (a warm one used to hang at exit, until killed after --stop-timeout)."""
    with _start_pitfalls(project, "lazylib") as rk:
        cold = _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        rk.wait_for_output(CHECKPOINT_READY)
        warm = [_bump(rk, project, generation) for generation in (1, 2)]
        rk.wait_for_output(r"stopped with status 0", count=2)
        for page in (cold, *warm):
            assert (page["lazy"], page["threads"]) == ("pending", 1), page
        assert "did not stop" not in rk.output
        assert "starts cold" not in rk.output
        assert "a thread started" not in rk.output


def test_a_module_whose_import_fails_in_the_parent_is_rolled_back_and_left_out(project: Path) -> None:
    """A framework module that needs the project's settings fails in the warm parent, after
    one of its submodules was imported: nothing of that attempt may stay in the parent (a
    generation would find the submodule without its package: "cannot import name"), the
    modules are left out, said once, and each warm generation imports them, as a cold one."""
    with _start_pitfalls(project, "fwuser", FW_SETUP="1") as rk:
        _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        for generation in (1, 2, 3):
            _bump(rk, project, generation)
        assert rk.count(r"fwuser is left out of the warm parent: its import failed there"
                        r" \(RuntimeError: settings are not configured\)") == 1, rk.output
        assert "ImportError" not in rk.output
        assert "starts cold" not in rk.output


def test_no_generation_forks_from_a_parent_where_an_import_failed(project: Path) -> None:
    """Rolling a failed import back cannot undo what it did to a module that stays (a converter
    registered in Django 6's registry, which then refuses the generation's own registration):
    the parent it failed in is discarded, and the next one never attempts that import."""
    with _start_pitfalls(project, "fwregistry,fwurls", FW_SETUP="1") as rk:
        _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        for generation in (1, 2):
            _bump(rk, project, generation)
        assert rk.count(r"fwurls is left out of the warm parent: its import failed there"
                        r" \(RuntimeError: settings are not configured\)") == 1, rk.output
        assert rk.count(r"discarded the warm parent pid \d+: an import failed in it") == 1, rk.output
        assert "already registered" not in rk.output
        assert "failed warm" not in rk.output
        assert "starts cold" not in rk.output


def test_what_a_failed_import_took_along_stays_in_the_parent(project: Path) -> None:
    """An import that fails in the warm parent is undone with everything it imported first;
    those modules are then imported by themselves, and held when that works: one framework
    module that needs settings must not leave out every library it imports (Wagtail's app
    modules took 632 along, and with them the whole project checkpoint). A module that needs
    a package no cold start found either is not imported by itself, but its importer, which
    expects the ImportError, is held."""
    with _start_pitfalls(project, "fwtaker,optlib", FW_SETUP="1") as rk:
        _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        warm = _bump(rk, project, 1)
        assert warm["held"] == ["optlib", "piddep"], rk.output
        assert rk.count(r"fwtaker is left out of the warm parent: its import failed there") == 1, rk.output
        assert "starts cold" not in rk.output


def test_wsgiref_is_held_by_the_checkpoint_and_its_copy_of_the_environment_is_the_generations(project: Path) -> None:
    """wsgiref's handlers copy the whole environment when imported (every request's environ
    under Django's runserver), which reads the per-generation variables. The installed-modules
    parent leaves them out (its copy would lack what the program sets first); the project
    checkpoint, which imports them where a cold start does, holds them (Django's test client
    imports them, and Wagtail imports the test client), and each generation's copy is the one
    a cold import would have taken."""
    with _start_pitfalls(project, "wsgiref.handlers") as rk:
        cold = _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        from_base = _bump(rk, project, 1)  # makes project_mod hot: the checkpoint is rebuilt
        fell_back = rk.wait_for_output(r"generation 1 does not start from the project checkpoint").end()
        wait_for(lambda: re.search(CHECKPOINT_READY, rk.output[fell_back:]), 60, "the checkpoint with project_mod hot")
        from_checkpoint = _bump(rk, project, 2)
        assert re.search(r"generation 2 forked warm from pid \d+ \(the project checkpoint", rk.output), rk.output
        assert rk.count(r"wsgiref.handlers is left out of the warm parent: it reads \w+ when imported") == 1, rk.output
        assert "wsgiref.handlers is left out of the project checkpoint" not in rk.output
        cold_copy = cold["snapshot_diff"]
        for generation, report in ((1, from_base), (2, from_checkpoint)):
            copy = report["snapshot_diff"]
            for key in ("LISTEN_PID", "RELOADKIT_PID"):
                assert cold_copy[key] == copy[key] == "PID"
            assert (cold_copy["RELOADKIT_GENERATION"], copy["RELOADKIT_GENERATION"]) == ("0", str(generation))
            assert "RELOADKIT_CHANGED" in copy
            assert "RELOADKIT_WARM_FD" not in copy  # the warm parent's own
            assert {k: v for k, v in copy.items() if k not in PER_GENERATION_ENV} == {
                k: v for k, v in cold_copy.items() if k not in PER_GENERATION_ENV}
        assert "starts cold" not in rk.output


TRACEBACK = r"Traceback \(most recent call last\):\n(?:  .*\n)+ValueError: broken\n"


def test_a_warm_traceback_starts_at_the_users_code_as_a_cold_one(project: Path) -> None:
    """The same failing start, cold (generation 0) and warm (1): the same traceback, on
    stderr and so on the error page, with none of the warm parent's frames above the user's."""
    (project / "project_mod.py").write_text("raise ValueError('broken')\n")
    with _start_pitfalls(project, "quietlib") as rk:
        rk.wait_for_output(r"pid \d+ exited with status 1")
        rk.wait_for_output(READY)
        write_file(project / "project_mod.py", "raise ValueError('broken')\n\n")
        rk.wait_for_output(r"generation 1 forked warm")
        rk.wait_for_output(r"pid \d+ exited with status 1", count=2)
        cold, warm = re.findall(TRACEBACK, rk.output)
        assert "warm_parent" not in warm
        assert warm == cold


INTERRUPTED = r"Traceback \(most recent call last\):\n(?:  .*\n)+KeyboardInterrupt\n"


def test_a_warm_generations_ctrl_c_traceback_starts_at_the_users_code(project: Path) -> None:
    """SIGINT in a server waiting in select(): the interpreter prints the KeyboardInterrupt
    and exits by SIGINT, warm as cold, with the same traceback (none of the warm parent's
    frames, nor its bootstrap's ``<string>``)."""
    with _start_pitfalls(project, "quietlib") as rk:
        _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        rk.wait_for_output(CHECKPOINT_READY)  # no line of reloadkit's in the middle of the traceback
        os.kill(rk.child_pid(0), signal.SIGINT)
        rk.wait_for_output(r"exited with status 130")
        write_file(project / "project_mod.py", "VERSION = 'v0'\n\n")
        rk.wait_for_output(r"generation 1 forked warm")
        pid = _serving(rk, "v0", 1)["pid"]
        rk.wait_for_output(rf"ready in \d+ ms \(accepting; pid {pid}\)")
        os.kill(pid, signal.SIGINT)
        rk.wait_for_output(r"exited with status 130", count=2)
        cold, warm = re.findall(INTERRUPTED, rk.output)
        assert "warm_parent" not in warm and "<string>" not in warm
        first = [traceback.splitlines()[1].split(", line")[0] for traceback in (cold, warm)]
        assert first == [f'  File "{project / "pitfalls.py"}"'] * 2  # where it was interrupted may differ


def test_without_a_child_subreaper_every_generation_starts_cold(project: Path) -> None:
    """Where the kernel refuses PR_SET_CHILD_SUBREAPER (a seccomp filter here, as a platform
    without it answers), a warm generation could never re-parent to reloadkit: warm is off
    from the start, said once at -v, and each reload starts cold at once (no wait for a
    re-parenting that never comes)."""
    site = _site(project.parent)
    argv = [sys.executable, str(Path(__file__).parent / "refuse.py"), "subreaper", "-m", "reloadkit", "run",
            "-v", "--warm", "-b", "127.0.0.1:0", "--", sys.executable, "pitfalls.py"]
    env = {"REPORT_DIR": str(project.parent / "reports"), "WARM_LIBS": "quietlib",
           "PYTHONPATH": os.pathsep.join([str(site), *SOURCE_PATH])}
    with Reloadkit([], cwd=project, env=env, argv=argv) as rk:
        _serving(rk, "v0", 0)
        for generation in (1, 2):
            _bump(rk, project, generation, warm=False)
        assert rk.count(r"--warm: every generation starts cold: this platform has no child subreaper") == 1, rk.output
        assert "warm parent" not in rk.output
        assert "forked warm" not in rk.output


def test_a_warm_generation_that_fails_where_cold_served_is_retried_cold(project: Path) -> None:
    """The second line of defence: a library that cannot work forked (set up once per
    process, no at-fork handler) makes warm generations fail where cold ones serve. Each is
    started again cold at once (no error page, no waiting for a change), the warm parent is
    rebuilt, and after the second such failure warm is off for the session, said once."""
    with _start_pitfalls(project, "pidlib", PID_STRICT="1") as rk:
        _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        for generation in (1, 2):
            write_file(project / "project_mod.py", f"VERSION = 'v{generation}'\n")
            rk.wait_for_output(rf"generation {generation} forked warm")
            rk.wait_for_output(rf"\(generation {generation}, started warm\) exited with status 1 before it was ready,"
                               " where the last cold start served; starting it again cold")
            retry = _serving(rk, f"v{generation}", generation)["pid"]
            rk.wait_for_output(rf"ready in \d+ ms \(\w+; pid {retry}\)")  # the cold retry served: warm's fault
            if generation == 1:
                rk.wait_for_output(r"--warm: generation 1 failed warm; rebuilding the warm parent")
                rk.wait_for_output(READY, count=2)
        rk.wait_for_output(r"--warm: warm generations failed 2 times where cold ones of the same code served;"
                           r" every generation starts cold")
        _bump(rk, project, 3, warm=False)
        assert "generation 3 forked warm" not in rk.output
        assert rk.count(r"every generation starts cold") == 1
        assert "waiting for a change" not in rk.output


def test_buffered_output_is_not_printed_twice_and_atexit_runs_once_per_generation(project: Path) -> None:
    with _start_pitfalls(project, "printlib,atexitlib", PYTHONUNBUFFERED="") as rk:
        _serving(rk, "v0", 0)
        parent = int(rk.wait_for_output(READY).group(1))
        pids = [rk.child_pid(0)]
        for generation in (1, 2):
            pids.append(_bump(rk, project, generation)["pid"])
        rk.signal(signal.SIGTERM)
        rk.wait_exit(20)
        # Once by the cold generation 0, once by the warm parent's flush before its first fork.
        assert rk.output.count("PARTIAL") == 2, rk.output
        # once each; the order is the order they stopped in (an old one may still drain)
        assert sorted(int(pid) for pid in re.findall(r"ATEXIT (\d+)", rk.output)) == sorted(pids), rk.output
        assert parent not in pids


def test_random_differs_between_warm_generations(project: Path) -> None:
    with _start_pitfalls(project, "quietlib") as rk:
        _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        numbers = {_bump(rk, project, generation)["random"] for generation in (1, 2, 3)}
        assert len(numbers) == 3


def test_a_package_installed_rebuilds_the_warm_parent(project: Path) -> None:
    with _start_pitfalls(project, "quietlib") as rk:
        _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        _bump(rk, project, 1)
        site = project.parent / "lib" / "site-packages"
        (site / "newpkg").mkdir()
        (site / "newpkg" / "__init__.py").write_text("")
        (site / "newpkg-1.0.dist-info").mkdir()
        _bump(rk, project, 2, warm=False)
        rk.wait_for_output(r"generation 2 starts cold: installed packages changed .*site-packages\); rebuilding")
        rk.wait_for_output(READY, count=2)
        _bump(rk, project, 3)


def test_a_killed_warm_parent_makes_one_cold_start_and_is_rebuilt(project: Path) -> None:
    with _start_pitfalls(project, "quietlib") as rk:
        _serving(rk, "v0", 0)
        parent = int(rk.wait_for_output(READY).group(1))
        _bump(rk, project, 1)
        os.kill(parent, signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(parent) or psutil.Process(parent).status() == psutil.STATUS_ZOMBIE,
                 10, "the warm parent to die")
        _bump(rk, project, 2, warm=False)
        rk.wait_for_output(r"generation 2 starts cold: .*warm parent.*; rebuilding the warm parent")
        second = int(rk.wait_for_output(READY, count=2).group(1))
        assert second != parent
        _bump(rk, project, 3)


def test_a_syntax_error_in_the_project_leaves_the_warm_parent_alone(project: Path) -> None:
    with _start_pitfalls(project, "quietlib") as rk:
        _serving(rk, "v0", 0)
        parent = int(rk.wait_for_output(READY).group(1))
        _bump(rk, project, 1)
        write_file(project / "project_mod.py", "VERSION = (\n")
        rk.wait_for_output(r"generation 2 forked warm")
        rk.wait_for_output(r"exited with status 1; waiting for a change")
        assert "SyntaxError" in rk.output
        _bump(rk, project, 3)
        assert rk.count(READY) == 1 and psutil.pid_exists(parent)
        assert "starts cold" not in rk.output


@pytest.mark.timeout(180)
def test_twenty_warm_reloads_under_a_looping_client_fail_no_request(project: Path) -> None:
    with _start_pitfalls(project, "quietlib") as rk:
        _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        with LoopingClient(rk.url, max_requests=1_000_000, max_seconds=150) as client:
            client.wait_requests(5, timeout=20)
            for generation in range(1, 21):
                _bump(rk, project, generation)
                client.wait_requests(3, timeout=20)
        assert client.stats["failed"] == 0, client.stats["errors"][:5]
        assert rk.count(r"forked warm") == 20
        versions = [json.loads(body)["version"] for body in client.bodies]
        assert versions == sorted(set(versions), key=lambda v: int(v[1:])), versions


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_nothing_is_left_running_when_reloadkit_ends(project: Path, how: str) -> None:
    with _start_pitfalls(project, "quietlib") as rk:
        _serving(rk, "v0", 0)
        parent = int(rk.wait_for_output(READY).group(1))
        _bump(rk, project, 1)
        pids = rk.tree_pids()
        assert parent in pids and rk.child_pid(1) in pids
        rk.signal(getattr(signal, how))
        rk.wait_exit(20)
        assert_all_gone(pids | rk.tree_pids(), timeout=10)


def test_run_with_reloader_forks_its_children_warm_and_they_still_report_their_imports(tmp_path: Path) -> None:
    """The library face (RELOADKIT_WARM=1): its children start warm, and the import tracker
    runs in them as in a cold child, so a module imported only by a warm generation is
    watched too."""
    library = Path(__file__).parent / "library_apps"
    shutil.copy(library / "tracked.py", tmp_path / "tracked.py")
    for name in ("helper", "lazy"):
        (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    env = {"RELOADKIT_WARM": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    with Reloadkit([], argv=[sys.executable, "tracked.py"], cwd=tmp_path, env=env) as rk:
        rk.wait_for_output(r"CHILD gen=0 helper=1 lazy=1 child=True")
        rk.wait_for_output(READY)
        write_file(tmp_path / "helper.py", "VALUE = 2\n")
        rk.wait_for_output(r"CHILD gen=1 helper=2 lazy=1 child=True")
        rk.wait_for_output(r"generation 1 forked warm")
        rk.wait_for_output(r"ready in \d+ ms", 2)  # its reports are read by now
        write_file(tmp_path / "lazy.py", "VALUE = 2\n")
        rk.wait_for_output(r"CHILD gen=2 helper=2 lazy=2 child=True")
        rk.wait_for_output(r"generation 2 forked warm")
        assert rk.count(r"PARENT is_child=False") == 1
        assert "starts cold" not in rk.output


def test_a_changed_warm_module_or_environment_makes_one_cold_start_and_a_rebuild(project: Path) -> None:
    """An edit in an installed module the parent imported (a patched library), or a changed
    variable of the generation's environment (an --env-file edit): that start is cold, the
    line says why, and the parent is rebuilt, so the next one is warm again."""
    (project / "app.env").write_text("GREETING=hello\n")
    site = _site(project.parent)
    with _start(project, [sys.executable, "pitfalls.py"], "--env-file", "app.env", WARM_LIBS="quietlib",
                PYTHONPATH=os.pathsep.join([str(site), *SOURCE_PATH])) as rk:
        _serving(rk, "v0", 0)
        rk.wait_for_output(READY)
        _bump(rk, project, 1)
        write_file(site / "quietlib.py", "VALUE = 2\n")
        _bump(rk, project, 2, warm=False)
        rk.wait_for_output(r"generation 2 starts cold: a warm module changed \(.*quietlib\.py\); rebuilding")
        rk.wait_for_output(READY, count=2)
        _bump(rk, project, 3)
        write_file(project / "app.env", "GREETING=bonjour\n")
        rk.wait_for_output(r"generation 4 starts cold: the environment changed \(GREETING\); rebuilding")
        _serving(rk, "v3", 4)
        rk.wait_for_output(READY, count=3)
        _bump(rk, project, 5)
