"""The measurements, one function per phase, run against one tool in one fresh project."""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from _client import ClientLoop, LoopResult, http_get, run_loop, wait_for_body
from _harness import Registry, StartBook, ToolProcess, alive, kill, reloadkit_memory, tree_cpu_over
from _tools import BIN, Launch, Tool, baseline_launch
from _workload import Project, TreeStore

#: Environment variables that would change how a tool or the app behaves; never inherited.
_SCRUB = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONSTARTUP", "NOTIFY_SOCKET", "VIRTUAL_ENV")
_SCRUB_PREFIXES = ("LISTEN_", "WERKZEUG_", "RELOADKIT_", "UVICORN_", "WATCHFILES_", "HUPPER_")


@dataclass(frozen=True)
class Settings:
    reloads: int = 20
    gap: float = 0.5  # after each new version is served, before the next write
    reload_timeout: float = 10.0  # a reload not served by then is lost; two lost in a row: failed
    request_timeout: float = 3.0
    client_interval: float = 0.01  # a request every 10 ms (when the last one was quick)
    idle_requests: int = 100
    trees: tuple[int, ...] = (20_000, 100_000)
    idle_seconds: float = 10.0
    settle: float = 2.0  # after start-up, before an idle window (initial scans)
    startup_runs: int = 5  # app start-up without a reloader, at the start of the run
    near_startup_runs: int = 3  # again right before each tool (the machine's load drifts)
    burst_quiet: float = 2.0  # a burst's restarts are over when none came for this long
    start_timeout: float = 60.0
    stop_timeout: float = 15.0


QUICK = Settings(
    reloads=5, gap=0.3, idle_requests=30, trees=(5_000,), idle_seconds=2.0, settle=0.5, startup_runs=3,
    near_startup_runs=2, burst_quiet=1.5,
)


class ToolError(Exception):
    """The tool cannot be measured further (it did not start, or died)."""


class BrokenToolError(ToolError):
    """The tool runs but does not do its job (no restart after edits): its row is 'failed'."""


def log(key: str, message: str) -> None:
    print(f"[{key}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items()
        if key not in _SCRUB and not key.startswith(_SCRUB_PREFIXES)
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', os.defpath)}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def summary(values: list[float]) -> dict[str, float | None]:
    """median / p90 / max in ms."""
    if not values:
        return {"median": None, "p90": None, "max": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"median": ms(statistics.median(ordered)), "p90": ms(p90), "max": ms(ordered[-1])}


def start(
    make: Callable[[int], Launch], project: Project, registry: Registry, timeout: float
) -> tuple[ToolProcess, int, float]:
    """Start on a free port, wait for the current version to be served: (process, port, seconds)."""
    port = free_port()
    launch = make(port)
    env = {**base_env(), **launch.env, "BENCH_PORT": str(port), "BENCH_STATE_DIR": str(project.state)}
    proc = ToolProcess(launch.argv, project.app, env, project.state / "tool.log", registry)
    deadline = proc.started + timeout
    while time.monotonic() < deadline:
        if not proc.running():
            raise ToolError(f"exited with code {proc.popen.returncode}: {proc.log_tail(3)}")
        reply = http_get(port, timeout=min(5.0, max(0.05, deadline - time.monotonic())))
        if reply.outcome == "ok" and reply.body == project.version:
            return proc, port, reply.started + reply.latency - proc.started
        time.sleep(0.003)
    proc.kill()
    raise ToolError(f"no answer within {timeout:.0f} s: {proc.log_tail(3)}")


def app_startup(kind: str, runs: int, registry: Registry, workdir: Path) -> dict[str, Any]:
    """The app on its own, no reloader: process start to first response (one warm-up run)."""
    project = Project(workdir / f"startup-{kind}")
    times: list[float] = []
    for index in range(runs + 1):
        proc, _port, seconds = start(baseline_launch(kind), project, registry, 30.0)
        if index:
            times.append(seconds)
        proc.interrupt()
        try:
            proc.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        proc.kill()
        kill(StartBook(project.state / "starts.log", registry).all_procs())
    return {"runs_ms": [ms(t) for t in times], **summary(times)}


def _latency_stats(result: LoopResult) -> dict[str, Any]:
    ok = result.ok_latencies()
    ordered = sorted(ok)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * (len(ordered) - 1)))] if ordered else None
    return {
        "requests": len(result.replies),
        "failed": result.failed,
        "refused": result.count("refused"),
        "reset": result.count("reset"),
        "timeout": result.count("timeout"),
        "error": result.count("error"),
        "p50_ms": ms(statistics.median(ok)) if ok else None,
        "p99_ms": ms(p99),
        "max_ms": ms(max(ok)) if ok else None,
    }


class ToolBench:
    """All phases for one tool; results accumulate in ``self.result`` (JSON-ready)."""

    def __init__(
        self, tool: Tool, settings: Settings, registry: Registry, workdir: Path, trees: TreeStore, *, keep: bool = False
    ) -> None:
        self.tool = tool
        self.keep = keep
        self.trees = trees
        self.settings = settings
        self.registry = registry
        self.project = Project(workdir / tool.key)
        self.book = StartBook(self.project.state / "starts.log", registry)
        self.proc: ToolProcess | None = None
        self.port = 0
        self.result: dict[str, Any] = {
            "key": tool.key, "label": tool.label, "setup": tool.setup, "app": tool.app,
            "status": "ok", "errors": [], "phase_s": {},
        }

    # --- helpers ----------------------------------------------------------------------------

    def note(self, message: str) -> None:
        log(self.tool.key, message)

    def error(self, phase: str, message: str) -> None:
        self.result["errors"].append(f"{phase}: {message}")
        self.note(f"{phase}: {message}")

    def launch(self) -> float:
        self.proc, self.port, seconds = start(
            self.tool.launch, self.project, self.registry, self.settings.start_timeout
        )
        return seconds

    def running(self) -> ToolProcess:
        if self.proc is None or not self.proc.running():
            tail = self.proc.log_tail(3) if self.proc else ""
            raise ToolError(f"the tool exited: {tail}")
        return self.proc

    def kill_stale(self) -> int:
        apps, helpers = self.book.stale()
        count = kill([*apps, *helpers])
        time.sleep(0.05)
        self.registry.reap()
        return count

    # --- phases -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        problem = self.tool.problem()
        if problem:
            self.result["status"] = f"failed: {problem}"
            return self.result
        try:
            self.timed(self.first_start)
            for phase in (self.idle_latency, self.reloads, self.burst):
                try:
                    self.timed(phase)
                except ToolError:
                    raise
                except Exception as exc:  # noqa: BLE001 - record, go on with the next phase
                    self.error(phase.__name__, f"{type(exc).__name__}: {exc}")
            self.result["shutdown"] = self.timed(self.shutdown)
            self.timed(self.idle_trees)
        except BrokenToolError as exc:
            self.result["status"] = f"failed: {exc}"
            self.note(self.result["status"])
            if self.proc is not None and self.proc.running():
                self.result["shutdown"] = self.shutdown()
        except ToolError as exc:
            if "start_ms" not in self.result:
                self.result["status"] = f"failed: {exc}"
            else:
                self.error("run", str(exc))
        finally:
            if self.proc is not None:
                self.proc.kill()
            kill(self.book.all_procs())
            self.registry.sweep()
            self.trees.take_back()
            if not self.keep:
                shutil.rmtree(self.project.root, ignore_errors=True)
        return self.result

    def timed(self, phase: Callable[[], Any]) -> Any:
        began = time.monotonic()
        try:
            return phase()
        finally:
            self.result["phase_s"][phase.__name__] = round(time.monotonic() - began, 1)

    def first_start(self) -> None:
        kind = self.tool.baseline or self.tool.app
        try:
            near = app_startup(kind, self.settings.near_startup_runs, self.registry, self.project.root)
        except ToolError as exc:
            near = {"median": None, "error": str(exc)}
        self.result["app_startup_near_ms"] = near
        seconds = self.launch()
        self.result["start_ms"] = ms(seconds)
        self.note(f"serving after {seconds * 1000:.0f} ms on port {self.port}")
        time.sleep(1.0)  # let the watcher finish its first scan before anything changes
        self.book.wait_quiet(0.5, 5.0)

    def idle_latency(self) -> None:
        s = self.settings
        result = run_loop(self.port, requests=s.idle_requests, interval=s.client_interval, timeout=s.request_timeout)
        self.result["idle"] = _latency_stats(result)
        self.note(f"idle latency p50 {self.result['idle']['p50_ms']} ms, max {self.result['idle']['max_ms']} ms")

    def reloads(self) -> None:
        s = self.settings
        proc = self.running()
        loop = ClientLoop(
            self.port, interval=s.client_interval, timeout=s.request_timeout,
            max_requests=s.reloads * 500 + 1000, max_seconds=s.reloads * (s.reload_timeout + s.gap) + 30,
        ).start()
        time.sleep(0.3)
        wall = time.time()
        cpu_before = own_cpu(proc)
        log_from = proc.log_path.stat().st_size
        latencies: list[float | None] = []
        for _ in range(s.reloads):
            written = self.project.write_version()
            reply = wait_for_body(self.port, self.project.version, deadline=written + s.reload_timeout, pause=0.003)
            latencies.append(None if reply is None else reply.started + reply.latency - written)
            if not proc.running():
                loop.stop()
                raise ToolError(f"the tool exited during reloads: {proc.log_tail(3)}")
            if latencies[-2:] == [None, None]:
                loop.stop()
                raise BrokenToolError(
                    f"edits not picked up: {len(latencies)} edits, none served within"
                    f" {s.reload_timeout:.0f} s, app start-ups since: {len(self.book.since(wall))}"
                )
            time.sleep(s.gap)
        result = loop.stop()
        supervisor_cpu = own_cpu(proc) - cpu_before
        served = [value for value in latencies if value is not None]
        starts = self.book.since(wall)
        self.result["reload"] = {
            "latencies_ms": [ms(value) for value in latencies],
            "lost": len(latencies) - len(served),
            "app_starts": len(starts),
            "supervisor_cpu_s": round(supervisor_cpu, 3),
            **summary(served),
        }
        self.result["reload"].update(_reloadkit_log(proc.log_path, log_from))
        self.result["during_reloads"] = _latency_stats(result)
        self.result["failures"] = [
            {"at_s": round(reply.started - result.replies[0].started, 3), "kind": reply.outcome, "detail": reply.detail}
            for reply in result.replies if reply.outcome != "ok"
        ][:200]
        time.sleep(1.0)  # the grace an old generation gets to go away
        apps, helpers = self.book.stale()
        self.result["orphans_after_reload"] = len(helpers)
        self.result["stale_apps_after_reload"] = len(apps)
        self.result["rss_mb"] = round((proc.rss() or 0) / 2**20, 1)
        if self.tool.key.startswith("reloadkit"):
            self.result["memory"] = reloadkit_memory(proc)
        self.kill_stale()
        r = self.result["reload"]
        self.note(
            f"reload median {r['median']} ms, max {r['max']} ms, lost {r['lost']}, app starts {r['app_starts']};"
            f" failed {self.result['during_reloads']['failed']}, orphans {len(helpers)}"
        )

    def burst(self) -> None:
        self.running()
        self.project.add_modules()
        written = self.project.write_version()
        if wait_for_body(self.port, self.project.version, deadline=written + 30) is None:
            raise RuntimeError("the app did not come back after the burst modules were added")
        self.book.wait_quiet(1.0, 15.0)
        wall = time.time()
        span = self.project.burst()
        time.sleep(self.settings.burst_quiet)  # the slowest detectors here poll once a second
        self.book.wait_quiet(self.settings.burst_quiet, 15.0)
        restarts = len(self.book.since(wall))
        reply = wait_for_body(self.port, self.project.version, deadline=time.monotonic() + 10)
        self.result["burst"] = {"files": 300, "span_ms": ms(span), "restarts": restarts, "serving_after": reply is not None}
        self.note(f"burst of 300 files in {span * 1000:.0f} ms -> {restarts} restart(s)")
        self.kill_stale()

    def shutdown(self) -> dict[str, Any]:
        """Ctrl+C; time until every process of the tree is gone; what is left alive after."""
        proc = self.running()
        tree = proc.tree()
        self.book.refresh()
        helpers = {pid for start in self.book.starts for pid in (start.helper, start.detached)}
        waited = [p for p in tree if p.pid not in helpers]
        began = time.monotonic()
        proc.interrupt()
        elapsed: float | None = None
        while time.monotonic() - began < self.settings.stop_timeout:
            proc.popen.poll()
            if not any(alive(p) for p in waited):
                elapsed = time.monotonic() - began
                break
            time.sleep(0.005)
        time.sleep(0.5)
        self.registry.reap()
        left = [p for p in {*tree, *self.book.all_procs()} if alive(p)]
        names = sorted(_describe(p) for p in left)
        kill(left)
        proc.kill()
        self.proc = None
        self.registry.reap()
        self.note(f"Ctrl+C -> gone in {'timeout' if elapsed is None else f'{elapsed * 1000:.0f} ms'}, left alive {names}")
        return {"ms": ms(elapsed), "orphans": len(left), "left_alive": names}

    def idle_trees(self) -> None:
        s = self.settings
        self.result["idle_cpu"] = []
        began = time.monotonic()
        self.trees.make(s.trees)  # the first tool pays for it, once
        self.result["trees_made_s"] = round(time.monotonic() - began, 1)
        for level, size in enumerate(s.trees):
            self.trees.lend(self.project.app, level)
            entry: dict[str, Any] = {"files": size}
            self.result["idle_cpu"].append(entry)
            try:
                entry["start_ms"] = ms(self.launch())
                time.sleep(s.settle)
                wall = time.time()
                proc = self.running()
                cpu = tree_cpu_over(proc, s.idle_seconds)
                entry["cpu_s"] = round(cpu, 3)
                entry["percent_core"] = round(100 * cpu / s.idle_seconds, 2)
                entry["rss_mb"] = round((proc.rss() or 0) / 2**20, 1)
                entry["restarts_while_idle"] = len(self.book.since(wall))
                if level == 0:
                    entry["tree_watched"] = self.tree_watched()
                entry["shutdown"] = self.shutdown()
                self.note(
                    f"{size} extra files: idle CPU {entry['percent_core']}% of a core, RSS {entry['rss_mb']} MB"
                )
            except ToolError as exc:
                entry["error"] = str(exc)
                self.error(f"idle {size}", str(exc))
                if self.proc is not None:
                    self.proc.kill()
                    self.proc = None
            finally:
                kill(self.book.all_procs())
                self.registry.sweep()
                self.trees.take_back()

    def tree_watched(self) -> bool:
        """Does editing a (not imported) .py file deep in the extra tree restart the app?"""
        target = next((self.project.app / "proj").rglob("f001.py"))
        wall = time.time()
        target.write_text(f"# edited {wall}\n")
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            if self.book.since(wall):
                return True
            time.sleep(0.05)
        return False


def _reloadkit_log(path: Path, offset: int) -> dict[str, Any]:
    """reloadkit's own account of each restart (its log lines), from ``offset`` on."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    found: dict[str, Any] = {}
    for key, pattern in (("stop_ms", r"stop took (\d+) ms"), ("child_ready_ms", r"ready in (\d+) ms")):
        values = [float(value) for value in re.findall(pattern, text)]
        if values:
            found[f"reloadkit_{key}_median"] = statistics.median(values)
            found[f"reloadkit_{key}_max"] = max(values)
    return found


def own_cpu(proc: ToolProcess) -> float:
    """The supervisor's own CPU seconds (not its reaped children's)."""
    try:
        times = proc.main.cpu_times() if proc.main is not None else None
    except psutil.Error:
        return 0.0
    return times.user + times.system if times else 0.0


def _describe(proc: Any) -> str:
    try:
        return f"{proc.pid}:{' '.join(proc.cmdline())[:40]}"
    except Exception:  # noqa: BLE001
        return str(proc.pid)


def as_dict(settings: Settings) -> dict[str, Any]:
    return asdict(settings)
