"""The watcher backends on real files: real inotify, the real watchdog Observer, real polling.

No fixed sleeps: every wait selects on ``watcher.fileno()`` with a deadline and fails naming
what it waited for. "Nothing happens" is asserted with a positive control: after the change
that must be ignored, a real change is made and the changes seen up to it must be exactly
the expected ones.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from support import SOURCE_PATH

from reloadkit.watch import inotify as inotify_module
from reloadkit.watch.base import DEFAULT_POLL_INTERVAL, Watcher
from reloadkit.watch.factory import create_watcher
from reloadkit.watch.filters import FilterRules
from reloadkit.watch.inotify import InotifyUnavailableError, InotifyWatcher
from reloadkit.watch.polling import PollingWatcher

pytestmark = [
    pytest.mark.timeout(30),
    # watchdog 7's own recursive inotify emitter (the "watchdog" backend, run here on Linux
    # only to test it) warns about its internal callback bookkeeping on fast mkdir -p
    pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning"),
]

LINUX = sys.platform.startswith("linux")
ALL_BACKENDS = (["inotify"] if LINUX else []) + ["watchdog", "poll"]
POLL = 0.05
needs_inotify = pytest.mark.skipif(not LINUX, reason="inotify is Linux only")


class Changes:
    """Accumulates ``read()`` results while selecting on the watcher's fd, with deadlines."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.seen: set[str] = set()
        self.selector = selectors.DefaultSelector()
        self.selector.register(watcher.fileno(), selectors.EVENT_READ)
        self._sentinels = 0

    def close(self) -> None:
        self.selector.close()

    def until(self, predicate: Callable[[set[str]], bool], what: str, timeout: float = 10.0) -> set[str]:
        deadline = time.monotonic() + timeout
        while not predicate(self.seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}; saw {sorted(self.seen)}")
            if self.selector.select(min(remaining, 0.5)):
                self.seen |= self.watcher.read()
        return self.seen

    def expect(self, *paths: Path | str, what: str = "") -> set[str]:
        want = {str(p) for p in paths}
        return self.until(lambda seen: want <= seen, what or f"changes to {sorted(want)}")

    def take(self) -> set[str]:
        seen, self.seen = self.seen, set()
        return seen

    def only(self, root: Path, *expected: Path | str) -> None:
        """Positive control: make a real change now; what was seen up to it is exactly ``expected``."""
        self._sentinels += 1
        sentinel = root / f"zz_sentinel_{self._sentinels}.py"
        # renamed into place: one event, so none of its own can trail behind the control
        temp = sentinel.with_suffix(".tmp")
        temp.write_text("sentinel = True\n")
        temp.rename(sentinel)
        seen = self.expect(sentinel, what=f"the control change to {sentinel.name}")
        assert seen == {str(p) for p in expected} | {str(sentinel)}
        self.take()


@pytest.fixture
def open_watcher() -> Iterator[Callable[..., tuple[Watcher, Changes]]]:
    made: list[tuple[Watcher, Changes]] = []

    def make(
        roots: Iterable[Path | str],
        backend: str,
        rules: FilterRules | None = None,
        files: Iterable[Path | str] = (),
        warnings: list[str] | None = None,
    ) -> tuple[Watcher, Changes]:
        watcher = create_watcher(
            [str(r) for r in roots],
            rules if rules is not None else FilterRules.build(),
            backend=backend,
            poll_interval=POLL if backend == "poll" else None,
            files=[str(f) for f in files],
            on_warning=(warnings.append if warnings is not None else None),
        )
        assert watcher.backend == backend
        changes = Changes(watcher)
        made.append((watcher, changes))
        return watcher, changes

    yield make
    for watcher, changes in made:
        changes.close()
        watcher.close()


def write(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def append(path: Path, text: str = "y = 2\n") -> Path:
    with path.open("a") as f:
        f.write(text)
    return path


def make_tree(root: Path, relpaths: Iterable[str]) -> None:
    for rel in relpaths:
        if rel.endswith("/"):
            (root / rel).mkdir(parents=True, exist_ok=True)
        else:
            write(root / rel)


# --------------------------------------------------------------------------------------
# behaviour common to every backend


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_default_includes(tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]) -> None:
    _, changes = open_watcher([tmp_path], backend)
    included = [
        write(tmp_path / name)
        for name in (
            "a.py",
            "a.pyi",
            "p.toml",
            "t.ini",
            "s.cfg",
            "c.yaml",
            "c.yml",
            "d.json",
            "i.html",
            "b.jinja",
            "b.j2",
            ".env",
        )
    ]
    for name in ("README.md", "notes.txt", "style.css", ".env.local", "a.py.tmp"):
        write(tmp_path / name)
    changes.expect(*included)
    changes.only(tmp_path, *included)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_create_modify_delete(
    tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    old = write(tmp_path / "pkg" / "old.py")
    _, changes = open_watcher([tmp_path], backend)
    new = write(tmp_path / "pkg" / "new.py")
    changes.expect(new, what="the creation of new.py")
    changes.only(tmp_path, new)
    append(old)
    changes.expect(old, what="the modification of old.py")
    changes.only(tmp_path, old)
    old.unlink()
    changes.expect(old, what="the deletion of old.py")
    changes.only(tmp_path, old)
    renamed = tmp_path / "pkg" / "renamed.py"
    new.rename(renamed)
    changes.expect(new, renamed, what="both sides of a rename")
    changes.only(tmp_path, new, renamed)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_file_in_new_subdirectory(
    tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    _, changes = open_watcher([tmp_path], backend)
    deep = tmp_path / "new" / "deeper" / "deepest"
    deep.mkdir(parents=True)
    f = write(deep / "mod.py")
    changes.expect(f)
    changes.only(tmp_path, f)
    # the new directories are now watched too: a later change inside is seen
    append(f)
    changes.expect(f, what="a change in a directory created after the start")
    changes.only(tmp_path, f)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_directory_moved_in_reports_its_files(
    tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    # files that existed before any watch could be placed on their directory
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    make_tree(outside, ["pkg/a.py", "pkg/sub/b.py", "pkg/notes.txt", "pkg/node_modules/c.py"])
    _, changes = open_watcher([root], backend)
    (outside / "pkg").rename(root / "pkg")
    a, b = root / "pkg" / "a.py", root / "pkg" / "sub" / "b.py"
    changes.expect(a, b)
    changes.only(root, a, b)
    if backend == "watchdog":
        return  # watchdog <= 6's Linux emitter misses later changes there; not our Linux backend
    append(b)
    changes.expect(b, what="a change inside the moved-in directory")


@pytest.mark.parametrize("backend", ["inotify", "poll"] if LINUX else ["poll"])
def test_directory_moved_out_or_removed_reports_its_files(
    tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    root = tmp_path / "root"
    make_tree(root, ["keep.py", "pkg/a.py", "pkg/sub/b.py", "pkg/notes.txt", "gone/c.py"])
    _, changes = open_watcher([root], backend)
    (root / "pkg").rename(tmp_path / "elsewhere")
    a, b = root / "pkg" / "a.py", root / "pkg" / "sub" / "b.py"
    changes.expect(a, b, what="the files of a directory moved out of the tree")
    changes.only(root, a, b)
    shutil.rmtree(root / "gone")
    c = root / "gone" / "c.py"
    changes.expect(c)
    changes.only(root, c)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_atomic_save_is_one_change_to_the_target(
    tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    target = write(tmp_path / "app.py")
    _, changes = open_watcher([tmp_path], backend)
    # vim-style backup + temp file renamed over the target
    for tmp_name in (".app.py.swp", "app.py~", ".app.py.tmp1234", "app.py___jb_tmp___"):
        tmp = write(tmp_path / tmp_name, "x = 2\n" + tmp_name)
        if tmp_name.startswith(".app.py.tmp") or tmp_name.endswith("___jb_tmp___"):
            os.replace(tmp, target)
        else:
            tmp.unlink()
    changes.expect(target)
    changes.only(tmp_path, target)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_ignored_changes_count_for_nothing(
    tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    make_tree(
        tmp_path,
        ["app.py", "node_modules/pkg/", ".git/objects/", "pkg/__pycache__/", ".venv/lib/", "build/lib/", "x.egg-info/"],
    )
    _, changes = open_watcher([tmp_path], backend)
    write(tmp_path / "node_modules" / "pkg" / "index.py")
    write(tmp_path / "node_modules" / "new" / "deep" / "index.json")
    write(tmp_path / ".git" / "objects" / "ab.json")
    write(tmp_path / ".git" / "config.toml")
    write(tmp_path / "pkg" / "__pycache__" / "mod.cpython-312.py")
    write(tmp_path / ".venv" / "lib" / "site.py")
    write(tmp_path / "build" / "lib" / "app.py")
    write(tmp_path / "x.egg-info" / "meta.json")
    for name in (
        "app.pyc",
        "app.pyo",
        ".app.py.swp",
        ".app.py.swx",
        "app.py~",
        ".#app.py",
        "server.log",
        "db.sqlite3-journal",
    ):
        write(tmp_path / name)
    # reading a watched file (open, access, close without writing) is not a change
    (tmp_path / "app.py").read_text()
    changes.only(tmp_path)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_exclude_and_double_star(
    tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    rules = FilterRules.build(
        include=["assets/**/*.txt"],
        exclude=["tests/**", "*_local.py", "**/migrations/*.py", "data"],
        ext=["md"],
    )
    make_tree(tmp_path, ["tests/unit/", "app/migrations/", "assets/x/y/", "data/", "other/"])
    _, changes = open_watcher([tmp_path], backend, rules=rules)
    wanted = [
        write(tmp_path / "assets" / "a.txt"),
        write(tmp_path / "assets" / "x" / "y" / "b.txt"),
        write(tmp_path / "README.md"),
        write(tmp_path / "app" / "views.py"),
    ]
    write(tmp_path / "tests" / "unit" / "test_x.py")
    write(tmp_path / "tests" / "conftest.py")
    write(tmp_path / "settings_local.py")
    write(tmp_path / "app" / "migrations" / "0001_initial.py")
    write(tmp_path / "data" / "x.py")
    write(tmp_path / "other" / "c.txt")
    changes.expect(*wanted)
    changes.only(tmp_path, *wanted)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_add_files_watches_exact_files_only(
    tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    root, lib = tmp_path / "proj", tmp_path / "lib"
    make_tree(root, ["app.py"])
    a, b, data = write(lib / "a.py"), write(lib / "b.py"), write(lib / "table.csv")
    hidden = write(root / ".venv" / "site" / "dep.py")  # in an ignored dir: exact files still count
    watcher, changes = open_watcher([root], backend)
    watcher.add_files([str(a), str(data), str(hidden)])
    watcher.add_files([str(a)])  # idempotent
    if isinstance(watcher, InotifyWatcher):
        assert str(lib) not in watcher.watched_dirs  # watched for exact files, not as a tree
        count = watcher.watch_count
        watcher.add_files([str(a), str(data)])
        assert watcher.watch_count == count
    append(b)  # a sibling in the same directory: not reported
    write(lib / "c.py")
    write(root / ".venv" / "site" / "other.py")
    append(a)
    append(data)  # not an include, but named exactly
    append(hidden)
    changes.expect(a, data, hidden)
    changes.only(root, a, data, hidden)
    # an editor's atomic save of an exact file
    tmp = write(lib / ".a.py.tmp", "new = 1\n")
    os.replace(tmp, a)
    changes.expect(a, what="an atomic save of an exact file")
    changes.only(root, a)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_no_roots_only_files(
    tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    a, b = write(tmp_path / "a.py"), write(tmp_path / "b.py")
    _, changes = open_watcher([], backend, files=[a])
    append(b)
    append(a)
    changes.expect(a)
    assert changes.seen == {str(a)}


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_root_that_is_a_file(
    tmp_path: Path, backend: str, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    conf, other = write(tmp_path / "settings.conf"), write(tmp_path / "other.py")
    _, changes = open_watcher([conf], backend)
    append(other)
    append(conf)
    changes.expect(conf)
    assert changes.seen == {str(conf)}


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_missing_root_names_the_path(tmp_path: Path, backend: str) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError) as info:
        create_watcher([str(tmp_path), str(missing)], FilterRules(), backend=backend, poll_interval=POLL)
    assert info.value.filename == str(missing)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_read_never_blocks_and_close(tmp_path: Path, backend: str) -> None:
    watcher = create_watcher([str(tmp_path)], FilterRules(), backend=backend, poll_interval=POLL)
    with watcher as w:
        assert w is watcher
        fd = w.fileno()
        assert not os.get_blocking(fd)
        assert not os.get_inheritable(fd)
        started = time.monotonic()
        assert w.read() == set()
        assert time.monotonic() - started < 0.5
    assert watcher.closed
    assert watcher.read() == set()
    with pytest.raises(ValueError):
        watcher.fileno()
    watcher.close()  # idempotent
    watcher.add_files([str(tmp_path / "x.py")])  # harmless after close


# --------------------------------------------------------------------------------------
# inotify specifics


def inotify_watched_inodes(fd: int) -> set[int]:
    """The inodes the kernel holds a watch on for this inotify fd (the real proof)."""
    inodes: set[int] = set()
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("inotify wd:"):
                fields = dict(part.split(":", 1) for part in line.split()[1:] if ":" in part)
                inodes.add(int(fields["ino"], 16))
    return inodes


@needs_inotify
def test_ignored_directories_get_no_inotify_watch(
    tmp_path: Path, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    make_tree(
        tmp_path,
        [
            "app.py",
            "pkg/sub/x.py",
            "docs/",
            "node_modules/a/b/c/index.js",
            ".git/objects/aa/",
            "pkg/__pycache__/",
            "foo.egg-info/",
            "build/lib/",
            "dist/",
            ".venv/lib/python3/site-packages/",
            ".tox/py/",
            ".mypy_cache/3.12/",
            "data/big/deeper/",
            "web/node_modules/x/",
        ],
    )
    rules = FilterRules.build(exclude=["data/**"])
    watcher, changes = open_watcher([tmp_path], "inotify", rules=rules)
    assert isinstance(watcher, InotifyWatcher)
    expected = [tmp_path, tmp_path / "pkg", tmp_path / "pkg" / "sub", tmp_path / "docs", tmp_path / "web"]
    assert watcher.watched_dirs == {str(p) for p in expected}
    assert inotify_watched_inodes(watcher.fileno()) == {p.stat().st_ino for p in expected}
    # new ignored directories do not get a watch either; new normal ones do
    (tmp_path / "node_modules" / "fresh").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "x").mkdir()
    (tmp_path / "newpkg").mkdir()
    changes.only(tmp_path)
    expected.append(tmp_path / "newpkg")
    assert inotify_watched_inodes(watcher.fileno()) == {p.stat().st_ino for p in expected}
    # deleted directories lose their watch
    shutil.rmtree(tmp_path / "pkg")
    changes.expect(tmp_path / "pkg" / "sub" / "x.py")
    changes.only(tmp_path, tmp_path / "pkg" / "sub" / "x.py")
    assert watcher.watched_dirs == {
        str(tmp_path),
        str(tmp_path / "docs"),
        str(tmp_path / "web"),
        str(tmp_path / "newpkg"),
    }
    assert len(inotify_watched_inodes(watcher.fileno())) == 4


@needs_inotify
def test_excluded_directory_by_name_is_not_watched(
    tmp_path: Path, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    make_tree(tmp_path, ["data/a/", "src/data/b/", "src/app.py"])
    watcher, changes = open_watcher([tmp_path], "inotify", rules=FilterRules.build(exclude=["data"]))
    assert isinstance(watcher, InotifyWatcher)
    assert watcher.watched_dirs == {str(tmp_path), str(tmp_path / "src")}
    write(tmp_path / "src" / "data" / "b" / "x.py")
    changes.only(tmp_path)


_NO_THREAD_SCRIPT = textwrap.dedent(
    """
    import json, os, selectors, sys, threading
    from pathlib import Path

    def inotify_fds():
        out = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                out += "inotify" in os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                pass
        return out

    root = Path(sys.argv[1])
    report = {}
    from reloadkit.watch.filters import FilterRules
    from reloadkit.watch.factory import create_watcher
    report["after import"] = (threading.active_count(), inotify_fds())
    watcher = create_watcher([str(root)], FilterRules(), files=[str(root / "a.py")])
    report["backend"] = watcher.backend
    report["after create"] = (threading.active_count(), inotify_fds())
    (root / "pkg" / "b.py").write_text("b = 2")
    sel = selectors.DefaultSelector()
    sel.register(watcher.fileno(), selectors.EVENT_READ)
    sel.select(10)
    report["seen"] = sorted(watcher.read())
    watcher.add_files([str(root / "pkg" / "b.py")])
    report["after read"] = (threading.active_count(), inotify_fds())
    watcher.close()
    report["after close"] = (threading.active_count(), inotify_fds())
    report["watchdog imported"] = sorted(m for m in sys.modules if m.split(".")[0] == "watchdog")
    print(json.dumps(report))
    """
)


@needs_inotify
def test_inotify_backend_starts_no_thread(tmp_path: Path) -> None:
    # a fresh interpreter: nothing imported or started by other tests can hide a thread
    make_tree(tmp_path, ["a.py", "pkg/b.py"])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*SOURCE_PATH, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", _NO_THREAD_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=25, env=env
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["backend"] == "inotify"
    assert report["seen"] == [str(tmp_path / "pkg" / "b.py")]
    assert report["after import"] == [1, 0]  # one thread, no inotify instance
    assert report["after create"] == [1, 1]  # still one thread; our own inotify fd
    assert report["after read"] == [1, 1]
    assert report["after close"] == [1, 0]
    assert report["watchdog imported"] == []  # our own inotify binding: nothing of watchdog on Linux


@needs_inotify
def test_our_inotify_binding_matches_watchdogs_constants() -> None:
    """The one binding is ours (ctypes): its event bits are the kernel's ABI, which watchdog's
    binding spells too; compared on every watchdog the CI installs (2.1.7 in watchdog-oldest)."""
    from watchdog.observers.inotify_c import InotifyConstants

    ours = inotify_module._inotify_api()
    for name in ours._fields[3:]:
        assert getattr(ours, name) == int(getattr(InotifyConstants, name)), name


@needs_inotify
def test_no_inotify_at_all_falls_back_to_polling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> None:
        raise InotifyUnavailableError(errno.ENOSYS, "no inotify in this libc (test)")

    monkeypatch.setattr(inotify_module, "_inotify_api", unavailable)
    warnings: list[str] = []
    with create_watcher([str(tmp_path)], FilterRules(), on_warning=warnings.append) as watcher:
        assert watcher.backend == "poll"
        assert isinstance(watcher, PollingWatcher) and watcher.interval == DEFAULT_POLL_INTERVAL
    assert warnings == ["inotify is not available (no inotify in this libc (test)); falling back to polling every 1s"]


@needs_inotify
def test_queue_overflow_rescans_and_reports_everything(
    tmp_path: Path, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    a, b, c = write(tmp_path / "a.py"), write(tmp_path / "b.py"), write(tmp_path / "pkg" / "c.py")
    warnings: list[str] = []
    watcher, changes = open_watcher([tmp_path], "inotify", warnings=warnings)
    try:
        limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    except OSError:
        pytest.skip("cannot read fs.inotify.max_queued_events")
    if limit > 100_000:
        pytest.skip(f"fs.inotify.max_queued_events={limit} is too large to overflow quickly")
    # alternate two files so that the kernel cannot merge consecutive identical events
    for i in range(limit // 2 + 100):
        os.utime(a, ns=(i, i))
        os.utime(b, ns=(i, i))
    new_dir = tmp_path / "made_during_overflow"
    new_dir.mkdir()
    changes.expect(a, b, c, what="every file, after the queue overflowed")
    assert any("overflow" in w for w in warnings)
    changes.only(tmp_path, a, b, c)
    d = write(new_dir / "d.py")  # the rescan watched the directory created in the gap
    changes.expect(d)
    assert isinstance(watcher, InotifyWatcher)
    assert str(new_dir) in watcher.watched_dirs


@needs_inotify
def test_watched_root_removed(tmp_path: Path, open_watcher: Callable[..., tuple[Watcher, Changes]]) -> None:
    root = tmp_path / "root"
    a = write(root / "a.py")
    warnings: list[str] = []
    watcher, changes = open_watcher([root], "inotify", warnings=warnings)
    shutil.rmtree(root)
    changes.expect(a)
    changes.until(lambda _: any("no longer watched" in w for w in warnings), "a warning about the root")
    assert isinstance(watcher, InotifyWatcher)
    assert watcher.watch_count == 0


# --------------------------------------------------------------------------------------
# polling specifics


def test_poller_does_not_walk_ignored_dirs(
    tmp_path: Path, open_watcher: Callable[..., tuple[Watcher, Changes]]
) -> None:
    make_tree(tmp_path, ["a.py", "pkg/b.py", "node_modules/x/y/", ".git/objects/", "data/z/", "pkg/__pycache__/"])
    watcher, changes = open_watcher([tmp_path], "poll", rules=FilterRules.build(exclude=["data/**"]))
    assert isinstance(watcher, PollingWatcher)
    assert watcher.watched_dirs == {str(tmp_path), str(tmp_path / "pkg")}
    (tmp_path / "node_modules" / "fresh").mkdir()
    (tmp_path / "newpkg").mkdir()
    changes.only(tmp_path)
    assert watcher.watched_dirs == {str(tmp_path), str(tmp_path / "pkg"), str(tmp_path / "newpkg")}


def test_poller_sees_same_size_rewrite(tmp_path: Path, open_watcher: Callable[..., tuple[Watcher, Changes]]) -> None:
    f = write(tmp_path / "a.py", "x = 1\n")
    _, changes = open_watcher([tmp_path], "poll")
    os.utime(f, ns=(1, 1))  # same size, different mtime (what `touch -d` or a checkout does)
    changes.expect(f)


def test_poll_interval_default() -> None:
    assert DEFAULT_POLL_INTERVAL == 1.0


def test_poll_backend_is_chosen_by_poll_interval(tmp_path: Path) -> None:
    with create_watcher([str(tmp_path)], FilterRules(), poll_interval=0.25) as watcher:
        assert isinstance(watcher, PollingWatcher)
        assert watcher.interval == 0.25


# --------------------------------------------------------------------------------------
# the inotify limits, hit for real inside a user namespace of our own

_LIMIT_SCRIPT = textwrap.dedent(
    """
    import json, os, selectors, sys, time
    from pathlib import Path
    from reloadkit.watch.filters import FilterRules
    from reloadkit.watch.factory import create_watcher

    scenario, root = sys.argv[1], Path(sys.argv[2])
    dirs = [root] + sorted(p for p in root.rglob("*") if p.is_dir())
    if scenario == "watches-at-start":
        Path("/proc/sys/user/max_inotify_watches").write_text(str(len(dirs) - 2))
    elif scenario == "watches-at-runtime":
        Path("/proc/sys/user/max_inotify_watches").write_text(str(len(dirs)))
    elif scenario == "instances":
        Path("/proc/sys/user/max_inotify_instances").write_text("0")
    warnings = []
    watcher = create_watcher([str(root)], FilterRules(), on_warning=warnings.append)
    inotify_fds = sum(
        1 for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}") and "inotify" in os.readlink(f"/proc/self/fd/{fd}")
    )
    if scenario == "watches-at-runtime":
        # a directory that arrives with its file already inside (no watch can be placed on it)
        staging = root.parent / (root.name + "-staging") / "newdir"
        staging.mkdir(parents=True)
        (staging / "n.py").write_text("n = 1")
        target = root / "newdir" / "n.py"
        staging.rename(target.parent)
    else:
        target = root / "d3" / "m.py"
        target.write_text("m = 1")
    sel = selectors.DefaultSelector()
    sel.register(watcher.fileno(), selectors.EVENT_READ)
    seen = set()
    deadline = time.monotonic() + 10
    while str(target) not in seen and time.monotonic() < deadline:
        if sel.select(deadline - time.monotonic()):
            seen |= watcher.read()
    print(json.dumps({
        "backend": watcher.backend,
        "warnings": warnings,
        "seen": sorted(seen),
        "target": str(target),
        "inotify_fds": inotify_fds,
    }))
    watcher.close()
    """
)


def _userns_works() -> bool:
    if not LINUX or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c", "echo 7 > /proc/sys/user/max_inotify_watches"],
        capture_output=True,
        timeout=10,
    )
    return probe.returncode == 0


def _run_in_userns(scenario: str, root: Path) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*SOURCE_PATH, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        ["unshare", "--user", "--map-root-user", sys.executable, "-c", _LIMIT_SCRIPT, scenario, str(root)],
        capture_output=True,
        text=True,
        timeout=25,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def userns() -> None:
    if not _userns_works():
        pytest.skip("cannot create a user namespace with its own inotify limits (unshare --user)")


@pytest.mark.parametrize(
    ("scenario", "needle"),
    [("watches-at-start", "inotify watch limit reached"), ("instances", "inotify instance limit reached")],
)
def test_limit_at_start_falls_back_to_polling(tmp_path: Path, userns: None, scenario: str, needle: str) -> None:
    make_tree(tmp_path, [f"d{i}/sub/x.py" for i in range(6)])
    result = _run_in_userns(scenario, tmp_path)
    assert result["backend"] == "poll"
    warnings = result["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1
    assert needle in warnings[0] and "falling back to polling every 1s" in warnings[0]
    assert "\n" not in warnings[0]
    assert result["target"] in result["seen"]  # type: ignore[operator]
    assert result["inotify_fds"] == 0  # the half-built inotify watcher was closed


def test_limit_at_runtime_warns_and_still_reports(tmp_path: Path, userns: None) -> None:
    make_tree(tmp_path, [f"d{i}/sub/x.py" for i in range(6)])
    result = _run_in_userns("watches-at-runtime", tmp_path)
    assert result["backend"] == "inotify"
    warnings = result["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1
    assert "inotify watch limit reached" in warnings[0] and "not watched" in warnings[0]
    assert result["target"] in result["seen"]  # type: ignore[operator]


@needs_inotify
def test_a_file_still_open_for_writing_is_reported_as_written(tmp_path: Path) -> None:
    """A save in progress (modified, not closed yet) is told apart, so the debounce does not
    end it early; the close ends it."""
    target = write(tmp_path / "a.py")
    with create_watcher([str(tmp_path)], FilterRules()) as watcher:
        assert watcher.backend == "inotify"
        selector = selectors.DefaultSelector()
        selector.register(watcher.fileno(), selectors.EVENT_READ)
        with open(target, "w") as handle:
            handle.write("X = 1\n")
            handle.flush()
            assert selector.select(10)
            assert str(target) in watcher.read()
            assert watcher.writing() == {str(target)}
        assert selector.select(10)
        watcher.read()
        assert watcher.writing() == frozenset()
        selector.close()
