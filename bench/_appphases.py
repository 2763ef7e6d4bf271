"""The real-app measurements: the import floor per app, then every phase per tool.

Each tool gets a fresh copy of the app (the watched tree) with a state directory beside it
(database, start-up log, tool log): cold start, idle latency, reloads under a looping client,
a broken edit, Ctrl+C. All traffic goes to 127.0.0.1; every process started is ended.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from _client import ClientLoop, http_get, run_loop, wait_for_body
from _harness import Registry, ToolProcess, alive, kill, reloadkit_memory
from _phases import ToolError, _latency_stats, _reloadkit_log, base_env, free_port, log, ms, summary
from _realapps import AppTool, RealApp, copy_project
from _tools import PYTHON, Launch


@dataclass(frozen=True)
class AppSettings:
    reloads: int = 12
    gap: float = 0.5  # after each new version is served, before the next write
    reload_timeout: float = 15.0
    request_timeout: float = 5.0
    client_interval: float = 0.01
    idle_requests: int = 50
    startup_runs: int = 3  # the app alone, right before each tool
    floor_runs: int = 3
    broken_seconds: float = 3.0
    start_timeout: float = 60.0
    stop_timeout: float = 15.0


QUICK_APPS = AppSettings(reloads=4, gap=0.3, idle_requests=20, startup_runs=2, floor_runs=1, broken_seconds=1.0)


class Project:
    """A fresh copy of one app, its state directory beside it (outside the watched tree)."""

    def __init__(self, app: RealApp, root: Path, database: Path | None) -> None:
        self.app_def = app
        self.root = root
        self.src = copy_project(app, root / "src")
        self.state = root / "state"
        self.state.mkdir()
        if database is not None:
            shutil.copy2(database, self.state / database.name)
        self.serial = 0
        self.version = ""
        self.write_version()

    def env(self, port: int | None = None) -> dict[str, str]:
        env = {**base_env(), "BENCH_STATE_DIR": str(self.state), "XDG_RUNTIME_DIR": str(self.state)}
        if port is not None:
            env["BENCH_PORT"] = str(port)
        return env

    def write_version(self, broken: bool = False) -> float:
        """Rewrite the version module in place, as an editor saves; monotonic time after close.

        It grows with every version, so the bytecode cache (mtime in seconds + size) never
        hands a new process the previous one. ``broken`` writes a syntax error instead.
        """
        self.serial += 1
        if not broken:
            self.version = f"v{self.serial}"
        text = f'VERSION = "v{self.serial}"\n' + (")\n" if broken else "") + f"# {'.' * self.serial}\n"
        with open(self.src / self.app_def.version_file, "w") as handle:
            handle.write(text)
        return time.monotonic()

    def starts_since(self, wall: float) -> int:
        try:
            lines = (self.state / "starts.log").read_text().splitlines()
        except FileNotFoundError:
            return 0
        return sum(1 for line in lines if line.split() and float(line.split()[0]) > wall)


def start_tool(make: Callable[[int], Launch], project: Project, registry: Registry, timeout: float,
               log_name: str, *, timestamps: bool = False) -> tuple[ToolProcess, int, float]:
    """Start on a free port; wait for the current version: (process, port, seconds to first response)."""
    port = free_port()
    launch = make(port)
    env = {**project.env(port), **launch.env}
    proc = ToolProcess(launch.argv, project.src, env, project.state / log_name, registry, timestamps=timestamps)
    deadline = proc.started + timeout
    path = project.app_def.path
    while time.monotonic() < deadline:
        if not proc.running():
            raise ToolError(f"exited with code {proc.popen.returncode}: {proc.log_tail(3)}")
        reply = http_get(port, timeout=min(5.0, max(0.05, deadline - time.monotonic())), path=path)
        if reply.outcome == "ok" and reply.body == project.version:
            return proc, port, reply.started + reply.latency - proc.started
        time.sleep(0.003)
    proc.kill()
    raise ToolError(f"no answer within {timeout:.0f} s: {proc.log_tail(3)}")


def stop(proc: ToolProcess, timeout: float = 10.0) -> None:
    proc.interrupt()
    try:
        proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    proc.kill()


def app_alone(app: RealApp, project: Project, runs: int, registry: Registry) -> dict[str, Any]:
    """The server alone, binding its port, no reloader: process start → first response."""
    times: list[float] = []
    for _ in range(runs):
        proc, _port, seconds = start_tool(
            lambda port: Launch(app.port_server(port), {}), project, registry, 60.0, "alone.log"
        )
        times.append(seconds)
        stop(proc)
    return {"runs_ms": [ms(t) for t in times], **summary(times)}


# --- the import floor ------------------------------------------------------------------------

_WARM = """
import importlib, json, sys, time
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except BaseException:
        pass
began = time.perf_counter()
exec(compile(sys.argv[2], "<setup>", "exec"))
print(json.dumps(time.perf_counter() - began))
"""


def _importtime(app: RealApp, project: Project) -> tuple[float, list[str]]:
    """(self time of the project's own modules in s, the outside modules in import order)."""
    result = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", app.setup_code], cwd=project.src, env=project.env(),
        capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        raise ToolError(f"import of the app failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    own_self = 0.0
    outside: list[str] = []
    for line in result.stderr.splitlines():
        # "import time:       123 |        456 |     package.module"
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if name.split(".")[0] in app.packages:
            own_self += int(self_us) / 1e6
        else:
            outside.append(name)
    return own_self, outside


def import_floor(app: RealApp, project: Project, runs: int) -> dict[str, Any]:
    """The project's own import and set-up time, the physical floor of a warm reload.

    ``own_self_ms``: ``python -X importtime``, self time of the project's own modules (their
    bodies, without what they import from outside). ``warm_setup_ms``: the wall time of the
    whole import and set-up in a process that had already imported every outside module the
    app imports (what a warm fork still has to do), median of ``runs``.
    """
    selfs: list[float] = []
    warms: list[float] = []
    outside: list[str] = []
    for _ in range(runs):
        own_self, outside = _importtime(app, project)
        selfs.append(own_self)
        result = subprocess.run(
            [PYTHON, "-c", _WARM, json.dumps(outside), app.setup_code], cwd=project.src, env=project.env(),
            capture_output=True, text=True, timeout=120,
        )
        if result.returncode == 0 and result.stdout.strip():
            warms.append(float(result.stdout.strip().splitlines()[-1]))
    return {
        "own_self_ms": ms(statistics.median(selfs)),
        "warm_setup_ms": ms(statistics.median(warms)) if warms else None,
        "outside_modules": len(outside),
    }


def describe(argv: list[str]) -> str:
    """A command line as a reader would type it (no venv paths; PORT for the port it gets)."""

    def word(text: str) -> str:
        text = " ".join("python" if part == PYTHON else Path(part).name if part.startswith("/") else part
                        for part in text.split(" "))
        text = text.replace("127.0.0.1:0", "127.0.0.1:PORT").replace("--port 0", "--port PORT")
        return f"'{text}'" if " " in text else text

    words = [word(part) for part in argv]
    return " ".join(words).replace("--port 0", "--port PORT")


def _log_lines(path: Path, offset: int, limit: int) -> list[str]:
    """The tool's own lines (not the servers' request lines) from ``offset`` on."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode(errors="replace").splitlines()
    keep = [line for line in lines if "GET /version" not in line and "127.0.0.1 - -" not in line]
    return keep[:limit]


def restart_parts(path: Path, offset: int, moments: list[tuple[float, float]]) -> dict[str, Any]:
    """Each reload taken apart at reloadkit's "started pid" line (time-stamped on arrival).

    ``to_spawn``: the save → the new child started (detection, debounce, and whatever the
    mode waits for first: the old child's drain and stop). ``spawn_to_response``: the new
    child started → its first response (its start-up, and the switch to it).
    """
    with open(path, "rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode(errors="replace").splitlines()
    spawns = []
    for line in lines:
        stamp, _, text = line.partition(" ")
        if "started pid" in text:
            try:
                spawns.append(float(stamp))
            except ValueError:
                continue
    to_spawn: list[float] = []
    to_response: list[float] = []
    for written, answered in moments:
        spawn = next((t for t in spawns if written < t <= answered), None)
        if spawn is not None:
            to_spawn.append(spawn - written)
            to_response.append(answered - spawn)
    return {"to_spawn": summary(to_spawn), "spawn_to_response": summary(to_response)}


def _setup_text(launch: Launch) -> str:
    hidden = launch.env.get("PYTHONPATH", "")
    prefix = "PYTHONPATH=bench/apps/_hide_watchdog " if hidden.endswith("_hide_watchdog") else ""
    return prefix + describe(launch.argv)


# --- one tool --------------------------------------------------------------------------------


class AppToolBench:
    """All phases for one tool on one app; results accumulate in ``self.result``."""

    def __init__(
        self, app: RealApp, tool: AppTool, settings: AppSettings, registry: Registry, root: Path,
        database: Path | None,
    ) -> None:
        self.app = app
        self.tool = tool
        self.settings = settings
        self.registry = registry
        self.project = Project(app, root, database)
        self.proc: ToolProcess | None = None
        self.port = 0
        self.initial_tree = 0
        self.result: dict[str, Any] = {
            "key": tool.key, "label": tool.label, "setup": _setup_text(tool.launch(0)),
            "status": "ok", "errors": [], "phase_s": {},
        }

    def note(self, message: str) -> None:
        log(f"{self.app.key}/{self.tool.key}", message)

    def running(self) -> ToolProcess:
        if self.proc is None or not self.proc.running():
            raise ToolError(f"the tool exited: {self.proc.log_tail(3) if self.proc else ''}")
        return self.proc

    def run(self) -> dict[str, Any]:
        try:
            self.timed("app_alone", self.alone)
            self.timed("first_start", self.first_start)
            for name, phase in (("idle", self.idle), ("reloads", self.reloads), ("broken", self.broken)):
                try:
                    self.timed(name, phase)
                except ToolError:
                    raise
                except Exception as exc:  # noqa: BLE001 - record it, go on with the next phase
                    self.result["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
                    self.note(f"{name}: {type(exc).__name__}: {exc}")
            self.result["shutdown"] = self.timed("shutdown", self.shutdown)
        except ToolError as exc:
            if "start_ms" not in self.result:
                self.result["status"] = f"failed: {exc}"
            else:
                self.result["errors"].append(f"run: {exc}")
            self.note(str(exc))
        finally:
            if self.proc is not None:
                self.result["log_tail"] = self.proc.log_tail(12)
                self.proc.kill()
            self.registry.sweep()
        return self.result

    def timed(self, name: str, phase: Any) -> Any:
        began = time.monotonic()
        try:
            return phase()
        finally:
            self.result["phase_s"][name] = round(time.monotonic() - began, 1)

    def alone(self) -> None:
        self.result["app_alone_ms"] = app_alone(self.app, self.project, self.settings.startup_runs, self.registry)

    def first_start(self) -> None:
        self.proc, self.port, seconds = start_tool(
            self.tool.launch, self.project, self.registry, self.settings.start_timeout, "tool.log",
            timestamps=self.tool.reloadkit,
        )
        self.result["start_ms"] = ms(seconds)
        self.note(f"serving after {seconds * 1000:.0f} ms on port {self.port}")
        time.sleep(1.0)  # the watcher's first scan, before anything changes
        self.initial_tree = _without_warm_parents(self.running().tree())

    def idle(self) -> None:
        s = self.settings
        result = run_loop(self.port, requests=s.idle_requests, interval=s.client_interval, timeout=s.request_timeout,
                          path=self.app.path)
        self.result["idle"] = _latency_stats(result)

    def reloads(self) -> None:
        s = self.settings
        proc = self.running()
        loop = ClientLoop(
            self.port, interval=s.client_interval, timeout=s.request_timeout, path=self.app.path,
            max_requests=s.reloads * 1000 + 1000, max_seconds=s.reloads * (s.reload_timeout + s.gap) + 30,
        ).start()
        time.sleep(0.3)
        wall = time.time()
        log_from = proc.log_path.stat().st_size
        latencies: list[float | None] = []
        moments: list[tuple[float, float]] = []  # (written, first new response)
        for _ in range(s.reloads):
            written = self.project.write_version()
            reply = wait_for_body(self.port, self.project.version, deadline=written + s.reload_timeout, pause=0.003,
                                  path=self.app.path)
            latencies.append(None if reply is None else reply.started + reply.latency - written)
            if reply is not None:
                moments.append((written, reply.started + reply.latency))
            if not proc.running():
                loop.stop()
                raise ToolError(f"the tool exited during reloads: {proc.log_tail(3)}")
            if latencies[-2:] == [None, None]:
                loop.stop()
                raise ToolError(f"edits not picked up: none served within {s.reload_timeout:.0f} s")
            time.sleep(s.gap)
        result = loop.stop()
        served = [value for value in latencies if value is not None]
        self.result["reload"] = {
            "latencies_ms": [ms(value) for value in latencies],
            "lost": len(latencies) - len(served),
            "app_starts": self.project.starts_since(wall),
            **summary(served),
            **_reloadkit_log(proc.log_path, log_from),
        }
        if self.tool.reloadkit:
            self.result["reload"]["parts"] = restart_parts(proc.log_path, log_from, moments)
        self.result["during_reloads"] = _latency_stats(result)
        time.sleep(1.0)  # the grace an old generation gets to go away
        self.result["left_after_reloads"] = self.leftovers()
        if self.tool.reloadkit:
            self.result["memory"] = reloadkit_memory(proc)
        r = self.result["reload"]
        self.note(
            f"reload median {r['median']} ms, max {r['max']} ms, lost {r['lost']}, app starts {r['app_starts']};"
            f" failed {self.result['during_reloads']['failed']} of {self.result['during_reloads']['requests']}"
        )

    def leftovers(self) -> int:
        """Processes more than at the first start: old generations in the tree, or re-parented to us."""
        extra = max(0, _without_warm_parents(self.running().tree()) - self.initial_tree)
        own = {popen.pid for popen in self.registry.popens}
        try:
            reparented = [p for p in psutil.Process().children() if p.pid not in own and alive(p)]
        except psutil.Error:
            reparented = []
        return extra + len(reparented)

    def broken(self) -> None:
        """A syntax error saved: does the old version keep answering? Then the fix: how soon is it served?"""
        s = self.settings
        self.running()
        old = self.project.version
        log_from = self.running().log_path.stat().st_size
        self.project.write_version(broken=True)
        loop = ClientLoop(self.port, interval=0.02, timeout=s.request_timeout, path=self.app.path,
                          max_requests=100_000, max_seconds=s.broken_seconds).start()
        result = loop.wait()
        kept = sum(1 for reply in result.replies if reply.outcome == "ok" and reply.body == old)
        written = self.project.write_version()
        reply = wait_for_body(self.port, self.project.version, deadline=written + 30, path=self.app.path)
        self.result["broken"] = {
            "requests": len(result.replies), "old_version_served": kept, "failed": result.failed,
            "fixed_served_ms": None if reply is None else ms(reply.started + reply.latency - written),
            "log": _log_lines(self.running().log_path, log_from, 40),
        }
        self.note(f"broken edit: {kept} of {len(result.replies)} answered by the old version; "
                  f"fix served after {self.result['broken']['fixed_served_ms']} ms")

    def shutdown(self) -> dict[str, Any]:
        proc = self.running()
        tree = proc.tree()
        began = time.monotonic()
        proc.interrupt()
        elapsed: float | None = None
        while time.monotonic() - began < self.settings.stop_timeout:
            proc.popen.poll()
            if not any(alive(p) for p in tree):
                elapsed = time.monotonic() - began
                break
            time.sleep(0.005)
        time.sleep(0.3)
        self.registry.reap()
        left = [p for p in tree if alive(p)]
        kill(left)
        proc.kill()
        self.proc = None
        return {"ms": ms(elapsed), "left_alive": len(left)}


def _without_warm_parents(tree: list[psutil.Process]) -> int:
    """How many of ``tree`` are not reloadkit's warm parents (the installed-modules parent and
    the project checkpoint, built in the background, are not what an old generation leaves):
    a warm parent's exec-time environment names its control socket, a generation's does not."""
    count = 0
    for proc in tree:
        try:
            if "RELOADKIT_WARM_FD" in proc.environ():
                continue
        except psutil.Error:
            pass
        count += 1
    return count
