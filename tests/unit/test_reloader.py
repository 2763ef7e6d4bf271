"""The pure parts of run_with_reloader: the child's command line, which files are the
application's, bytecode to source, the parent's Config, and the tracker in this process."""

from __future__ import annotations

import importlib
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from reloadkit.child.notify import WATCH_KEY, watch_files
from reloadkit.child.tracker import (
    EXCLUDE_ENV,
    ImportTracker,
    PathFilter,
    current_tracker,
    send_watch,
    source_file,
)
from reloadkit.errors import ConfigError
from reloadkit.proc.childenv import child_environment
from reloadkit.reloader import _parent_config, _split_interpreter_args, child_argv

PY = "/usr/bin/python3.12"


# --- the child's command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("orig", "expected"),
    [
        (["python", "app.py"], ("script", 1)),
        (["python", "-u", "-X", "dev", "-W", "error", "app.py", "-x"], ("script", 6)),
        (["python", "-Xdev", "-Werror", "-bb", "app.py"], ("script", 4)),
        (["python", "-m", "pkg", "arg"], ("-m", 2)),
        (["python", "-Om", "pkg"], ("-m", 2)),
        (["python", "-mpkg"], ("-m", 1)),
        (["python", "-c", "print(1)", "a"], ("-c", 2)),
        (["python", "-Sc", "print(1)"], ("-c", 2)),
        (["python", "--check-hash-based-pycs", "always", "app.py"], ("script", 3)),
        (["python", "--", "app.py"], ("script", 2)),
        (["python", "-"], ("-", 1)),
        (["python"], ("", 1)),
        (["python", "-i"], ("", 2)),
    ],
)
def test_split_interpreter_args(orig: list[str], expected: tuple[str, int]) -> None:
    assert _split_interpreter_args(orig) == expected


def _argv(orig: Sequence[str], **kwargs: object) -> list[str]:
    defaults: dict[str, object] = {"executable": PY, "argv": ["ignored"], "main_file": "", "main_spec_name": ""}
    defaults.update(kwargs)
    return child_argv(orig, **defaults)  # type: ignore[arg-type]


def test_script_keeps_interpreter_options_and_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    command = _argv(["python3", "-X", "dev", "-W", "ignore::DeprecationWarning", "serve.py", "--port", "8000"])
    assert command == [PY, "-X", "dev", "-W", "ignore::DeprecationWarning", str(tmp_path / "serve.py"), "--port", "8000"]


def test_script_path_survives_a_change_of_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the program moved here after it started in /srv/project
    command = _argv(["python", "src/serve.py"], main_file="/srv/project/src/serve.py")
    assert command == [PY, "/srv/project/src/serve.py"]


def test_module_and_code_and_console_script_are_kept() -> None:
    assert _argv(["python", "-X", "dev", "-m", "pkg.web", "--reload"]) == [PY, "-X", "dev", "-m", "pkg.web", "--reload"]
    assert _argv(["python", "-c", "import app", "x"]) == [PY, "-c", "import app", "x"]
    # A console script: the kernel ran "<interpreter> /venv/bin/tool args".
    assert _argv(["/venv/bin/python", "/venv/bin/tool", "serve"], main_file="/venv/bin/tool") == [PY, "/venv/bin/tool", "serve"]


def test_interpreter_falls_back_to_orig_argv0_without_sys_executable() -> None:
    assert _argv(["/opt/python", "/srv/app.py"], executable="") == ["/opt/python", "/srv/app.py"]


@pytest.mark.parametrize("orig", [["python"], ["python", "-i"], ["python", "-"], ["python", "-u", "-"]])
def test_what_cannot_run_twice_is_refused(orig: list[str]) -> None:
    with pytest.raises(ConfigError):
        _argv(orig)


def test_without_orig_argv_module_from_spec_and_script_from_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _argv([], argv=["/srv/pkg/__main__.py", "a"], main_spec_name="pkg.__main__") == [PY, "-m", "pkg", "a"]
    assert _argv([], argv=["/srv/pkg/web.py"], main_spec_name="pkg.web") == [PY, "-m", "pkg.web"]
    monkeypatch.chdir(tmp_path)
    assert _argv([], argv=["serve.py", "b"], main_spec_name="") == [PY, str(tmp_path / "serve.py"), "b"]
    with pytest.raises(ConfigError):
        _argv([], argv=["-c"], main_spec_name="")


def test_defaults_come_from_this_interpreter() -> None:
    command = child_argv()
    assert command[0] == sys.executable
    assert command[1:] != []


# --- bytecode and paths ------------------------------------------------------------------


def test_source_file(tmp_path: Path) -> None:
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "mod.py").write_text("X = 1\n")
    cached = tmp_path / "__pycache__" / "mod.cpython-312.opt-1.pyc"
    assert source_file(str(cached)) == str(tmp_path / "mod.py")
    assert source_file(str(tmp_path / "mod.pyc")) == str(tmp_path / "mod.py")  # legacy layout
    assert source_file(str(tmp_path / "gone.pyc")) == str(tmp_path / "gone.pyc")  # sourceless
    assert source_file(str(tmp_path / "mod.py")) == str(tmp_path / "mod.py")


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """A fake interpreter: stdlib, a site-packages with a symlinked project, a project."""
    for directory in ("lib/python3.x", "venv/lib/python3.x/site-packages", "project/app", "other/dist-packages/x", "own"):
        (tmp_path / directory).mkdir(parents=True)
    (tmp_path / "lib/python3.x/json.py").write_text("")
    (tmp_path / "venv/lib/python3.x/site-packages/flask.py").write_text("")
    (tmp_path / "other/dist-packages/x/y.py").write_text("")
    (tmp_path / "project/app/__init__.py").write_text("")
    (tmp_path / "project/app/views.py").write_text("")
    (tmp_path / "project/app/migration_1.py").write_text("")
    (tmp_path / "own/reloader.py").write_text("")
    (tmp_path / "venv/lib/python3.x/site-packages/app").symlink_to(tmp_path / "project/app")
    (tmp_path / "project/link.py").symlink_to(tmp_path / "venv/lib/python3.x/site-packages/flask.py")
    return tmp_path


def _filter(root: Path, excludes: Sequence[str] = ()) -> PathFilter:
    return PathFilter(
        [str(root / "lib/python3.x"), str(root / "venv/lib/python3.x/site-packages")],
        own_dir=str(root / "own"),
        excludes=excludes,
        base=str(root / "project"),
    )


def test_application_files_are_kept_libraries_are_not(layout: Path) -> None:
    keep = _filter(layout).keep
    assert keep(str(layout / "project/app/views.py")) == str(layout / "project/app/views.py")
    assert keep(str(layout / "lib/python3.x/json.py")) is None
    assert keep(str(layout / "venv/lib/python3.x/site-packages/flask.py")) is None
    assert keep(str(layout / "other/dist-packages/x/y.py")) is None  # any site/dist-packages
    assert keep(str(layout / "own/reloader.py")) is None  # reloadkit itself
    assert keep(str(layout / "project/app/missing.py")) is None
    assert keep("frozen") is None
    assert keep("<frozen importlib._bootstrap>") is None
    assert keep(None) is None


def test_symlinked_code_is_watched_at_its_real_path(layout: Path) -> None:
    keep = _filter(layout).keep
    # Installed as a symlink into site-packages (flit --symlink, old-style develop installs).
    assert keep(str(layout / "venv/lib/python3.x/site-packages/app/views.py")) == str(layout / "project/app/views.py")
    # A link in the project to an installed file is the library's file.
    assert keep(str(layout / "project/link.py")) is None


def test_bytecode_maps_to_its_source(layout: Path) -> None:
    (layout / "project/app/__pycache__").mkdir()
    cached = layout / "project/app/__pycache__/views.cpython-312.pyc"
    cached.write_bytes(b"")
    assert _filter(layout).keep(str(cached)) == str(layout / "project/app/views.py")


def test_exclude_patterns_by_path_relative_path_or_basename(layout: Path) -> None:
    keep = _filter(layout, ["migration_*.py", "*/app/views.py"]).keep
    assert keep(str(layout / "project/app/migration_1.py")) is None
    assert keep(str(layout / "project/app/views.py")) is None
    assert keep(str(layout / "project/app/__init__.py")) is not None
    assert _filter(layout, ["app/**"]).keep(str(layout / "project/app/views.py")) is None  # relative to the base
    assert _filter(layout, ["app/*"]).keep(str(layout / "project/app/views.py")) is None


def test_this_interpreters_stdlib_and_site_packages_are_libraries() -> None:
    path_filter = PathFilter.for_this_process()
    assert path_filter.keep(os.__file__) is None
    assert path_filter.keep(pytest.__file__) is None
    assert path_filter.keep(sys.modules["reloadkit.child.notify"].__file__) is None  # reloadkit's own files
    assert path_filter.keep(__file__) == os.path.realpath(__file__)


# --- the tracker in this process ---------------------------------------------------------


@pytest.fixture
def tracker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ImportTracker, list[str]]]:
    sent: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))
    tracker = ImportTracker(lambda paths: sent.extend(paths), PathFilter.for_this_process())
    tracker.install()
    try:
        yield tracker, sent
    finally:
        tracker.uninstall()
        for name in [name for name in sys.modules if name.startswith("rk_unit_")]:
            del sys.modules[name]


def test_tracker_reports_new_imports_and_failed_ones(tmp_path: Path, tracker: tuple[ImportTracker, list[str]]) -> None:
    instance, sent = tracker
    assert current_tracker() is instance
    assert sys.meta_path[0] is instance
    (tmp_path / "rk_unit_good.py").write_text("import rk_unit_dep\nVALUE = rk_unit_dep.X\n")
    (tmp_path / "rk_unit_dep.py").write_text("X = 41\n")
    (tmp_path / "rk_unit_broken.py").write_text("VALUE = (\n")
    (tmp_path / "rk_unit_raises.py").write_text("raise RuntimeError('at import')\n")
    importlib.invalidate_caches()
    module = importlib.import_module("rk_unit_good")
    assert module.VALUE == 41
    with pytest.raises(SyntaxError):
        importlib.import_module("rk_unit_broken")
    with pytest.raises(RuntimeError):
        importlib.import_module("rk_unit_raises")
    names = {os.path.basename(path) for path in sent}
    assert {"rk_unit_good.py", "rk_unit_dep.py", "rk_unit_broken.py", "rk_unit_raises.py"} <= names
    stdlib = os.path.dirname(os.path.realpath(os.__file__))
    assert not [path for path in sent if path.startswith(stdlib) or "site-packages" in path]
    assert len(sent) == len(set(sent))  # each file once
    count = len(sent)
    importlib.import_module("rk_unit_good")
    assert len(sent) == count


def test_uncaught_exception_reports_module_frames(tmp_path: Path, tracker: tuple[ImportTracker, list[str]]) -> None:
    instance, sent = tracker
    script = tmp_path / "rk_unit_exec.py"
    script.write_text("raise ValueError('boom')\n")
    code = compile(script.read_text(), str(script), "exec")  # run by exec: no finder sees it
    try:
        exec(code, {})
    except ValueError as exc:
        instance.report_exception(exc)
    assert str(script) in sent
    syntax = SyntaxError("bad", (str(tmp_path / "rk_unit_syntax.py"), 1, 1, "x"))
    (tmp_path / "rk_unit_syntax.py").write_text("x(\n")
    instance.report_exception(syntax)
    assert str(tmp_path / "rk_unit_syntax.py") in sent


def test_excepthook_reports_then_chains_and_is_restored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def recorder(*args: object) -> None:
        calls.append(args)

    monkeypatch.setattr(sys, "excepthook", recorder)
    sent: list[str] = []
    instance = ImportTracker(sent.extend, PathFilter.for_this_process())
    instance.install()
    try:
        script = tmp_path / "rk_unit_hook.py"
        script.write_text("raise KeyError(1)\n")
        try:
            exec(compile(script.read_text(), str(script), "exec"), {})
        except KeyError as exc:
            sys.excepthook(KeyError, exc, exc.__traceback__)
    finally:
        instance.uninstall()
    assert str(script) in sent
    assert len(calls) == 1
    assert sys.excepthook is recorder
    assert current_tracker() is None


def test_start_tracking_needs_a_supervisor(monkeypatch: pytest.MonkeyPatch) -> None:
    from reloadkit.child.tracker import start_tracking

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("RELOADKIT_PID", raising=False)
    assert start_tracking() is None
    assert current_tracker() is None


def test_send_watch_sends_what_notify_watch_files_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"reloadkit-unit-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        monkeypatch.setenv("RELOADKIT_PID", str(os.getpid()))
        paths = ["/srv/app/a.py", "/srv/app/b c.py", "/bad\nname.py"]
        assert send_watch(paths)
        ours = receiver.recv(65536)
        assert watch_files(paths)
        theirs = receiver.recv(65536)
        assert ours == theirs == b"RELOADKIT_WATCH=/srv/app/a.py\nRELOADKIT_WATCH=/srv/app/b c.py"
        many = [f"/srv/app/{'x' * 200}{index}.py" for index in range(400)]
        assert send_watch(many)
        received: list[str] = []
        while len(received) < len(many):
            received.extend(line.split("=", 1)[1] for line in receiver.recv(65536).decode().split("\n"))
        assert received == many
    assert WATCH_KEY == "RELOADKIT_WATCH"


# --- the parent's configuration ----------------------------------------------------------


def test_parent_config_mirrors_werkzeug_and_reloadkit_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "settings.toml").write_text("")
    monkeypatch.delenv("RELOADKIT_POLL", raising=False)
    config = _parent_config(
        {
            "bind": ["127.0.0.1:0", "admin=unix:admin.sock"],
            "watch": (),
            "include": (),
            "exclude": ("*.tmp",),
            "ext": ("py,html",),
            "imports": True,
            "backlog": None,
            "debounce_ms": 20,
            "stop_signal": "INT",
            "stop_timeout": 2.0,
            "overlap": True,
            "ready_after": None,
            "verbosity": 1,
        },
        extra_files=["settings.toml"],
        exclude_patterns=["*/migrations/*"],
        interval=0.25,
        reloader_type="stat",
    )
    assert config.command[0] == sys.executable
    assert [spec.name for spec in config.binds] == ["tcp", "admin"]
    assert config.poll == 0.25
    assert config.imports and config.watch_roots == ()
    assert config.extra_files[0] == str(tmp_path / "settings.toml")
    assert os.path.realpath(__file__) in config.extra_files  # already imported here: watched from the start
    assert config.exclude == ("*/migrations/*", "*.tmp")
    assert config.ext == ("py", "html")
    assert config.stop_signal == signal.SIGINT
    assert (config.debounce_ms, config.stop_timeout, config.overlap, config.verbosity) == (20, 2.0, True, 1)
    # The supervisor hands the patterns to the child's import tracker.
    env = child_environment({}, [], notify_address="@x", generation=0, cookie="c", imports=True,
                            import_excludes=config.exclude)
    assert env[EXCLUDE_ENV] == "*/migrations/*\n*.tmp"


def test_parent_config_defaults_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELOADKIT_POLL", raising=False)
    options: dict[str, object] = {
        "bind": "8000", "watch": (), "include": (), "exclude": (), "ext": (), "imports": False, "backlog": None,
        "debounce_ms": None, "stop_signal": signal.SIGTERM, "stop_timeout": None, "overlap": None,
        "ready_after": None, "verbosity": 0,
    }
    config = _parent_config(options, extra_files=None, exclude_patterns=None, interval=1.0, reloader_type="auto")
    assert config.poll is None and config.binds[0].port == 8000
    assert config.extra_files == () and config.watch_roots == (config.cwd,)
    with pytest.raises(ConfigError, match="reloader_type"):
        _parent_config(options, reloader_type="inotify")
    with pytest.raises(ConfigError):
        _parent_config({**options, "bind": "nonsense"})


def test_the_trackers_first_error_is_one_line_then_tracking_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Never a silent loss of watches: the first unexpected error is said on stderr, once,
    and the tracker stops (a half-working one would drop files without a word)."""
    sent: list[str] = []
    calls = 0

    def send(paths: list[str]) -> None:
        nonlocal calls
        calls += 1
        if any(path.endswith("rk_unit_second.py") for path in paths):
            raise RuntimeError("the send broke")
        sent.extend(paths)

    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("rk_unit_first", "rk_unit_second", "rk_unit_third"):
        (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    importlib.invalidate_caches()
    instance = ImportTracker(send, PathFilter.for_this_process())
    instance.install()
    try:
        importlib.import_module("rk_unit_first")
        assert [os.path.basename(path) for path in sent][-1] == "rk_unit_first.py"
        before = calls
        importlib.import_module("rk_unit_second")  # the send raises
        importlib.import_module("rk_unit_third")
        script = tmp_path / "rk_unit_hook_off.py"
        script.write_text("raise KeyError(1)\n")
        try:
            exec(compile(script.read_text(), str(script), "exec"), {})
        except KeyError as exc:
            instance.report_exception(exc)
    finally:
        instance.uninstall()
        for name in [name for name in sys.modules if name.startswith("rk_unit_")]:
            del sys.modules[name]
    err = capfd.readouterr().err
    assert err.count("reloadkit: import tracking is off in pid") == 1, err
    assert "(sending: RuntimeError: the send broke)" in err
    assert "files this process imports from now on are not watched" in err
    assert instance.off
    assert calls == before + 1  # nothing tried after the error


def test_the_tracker_sends_while_socket_itself_is_being_imported(tmp_path: Path) -> None:
    """The tracker sends from inside imports, also from inside ``import socket`` (socket.py
    imports selectors): the send must not need socket.py, half-initialised at that moment.
    It did, the send failed and the files it carried were lost without a word."""
    import subprocess

    tracker_file = Path(__file__).resolve().parents[2] / "reloadkit" / "child" / "tracker.py"
    script = f"""
import _socket, importlib.util, os, sys
assert "socket" not in sys.modules and "selectors" not in sys.modules
receiver = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
receiver.bind({str(tmp_path / "notify")!r})
os.environ.update(NOTIFY_SOCKET={str(tmp_path / "notify")!r}, RELOADKIT_PID=str(os.getpid()),
                  RELOADKIT_WARM_REPORT="1")
spec = importlib.util.spec_from_file_location("_rk_tracker", {str(tracker_file)!r})
tracker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tracker)
instance = tracker.start_tracking(send=lambda paths: None)
import socket
receiver.setblocking(False)
received = []
while True:
    try:
        received.append(receiver.recv(65536).decode())
    except BlockingIOError:
        break
print("off" if instance.off else "on", "selectors" in "".join(received))
"""
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=20)
    assert done.stderr == ""
    assert done.stdout.split() == ["on", "True"]
