"""The scale benchmark: one handler edited in generated FastAPI projects of growing size.

    python bench/scale.py                                   # 40, 160, 640 models, 5 edits: a few minutes
    python bench/scale.py --sizes 40,160 --edits 3 --tools reloadkit
    python bench/scale.py --render scale                    # redo the table from bench/results/scale.json

Per size, a FastAPI + pydantic + SQLAlchemy project is generated (tests/integration/apps/
shopgen.py: models, schemas and routers modules of 10 models each, main.py including every
router) for each tool, which runs it on a free port:

* reloadkit, its default (warm) mode: ``reloadkit run -v -b 127.0.0.1:PORT -- uvicorn --fd 3
  shop.main:app`` (``-v`` for its account of each reload: warm or cold);
* ``uvicorn shop.main:app --reload --port PORT``.

Once it serves, the body of ONE handler in the router module in the middle of the project
(``routers/r_{modules // 2}.py``, ``GET /rK/marker``) is edited ``--edits`` times; measured:
the write → the first response with the new body (a new connection every 5 ms). Between
edits the tool settles: at least ``--gap`` seconds, then until its process tree is idle (a
warm parent being built is not), so each edit meets the steady state.

The floor, measured in the same run: in one process that has imported the whole project (and
uvicorn), the edited router rewritten as the benchmark does, the router and ``shop.main`` (its
only importer) dropped from ``sys.modules`` and ``shop.main`` imported again; then uvicorn's own
start in that process: ``uvicorn.Server`` on an already-listening socket with the app object
just imported, to the first response (one request sent at once, answered when the server
accepts). Both medians of ``--floor-runs``; their sum is what no reloader can go under. Beside
it, the same work in a fork of that process (after ``gc.freeze()``, as a warm parent forks),
through uvicorn's command line, from the fork to the first response: the fork's page copies
on write are in it, so it is what no generation forked from a warm parent can go under.

Also per size: the RSS and PSS of reloadkit's processes after the edits: the supervisor (with
its guardian) and the warm parent(s). Results: bench/results/scale.json and scale.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration" / "apps"))  # shopgen

import shopgen
from _appphases import restart_parts, stop
from _client import wait_for_body
from _harness import Registry, ToolProcess, memory_mb, reloadkit_roles, take_over_run, tree_cpu_over
from _phases import ToolError, base_env, free_port, log, ms
from _realapps import script
from _report import machine, markdown_table, results_name
from _tools import PYTHON, reloadkit_env, versions

HERE = Path(__file__).resolve().parent
APPS = Path(shopgen.__file__).resolve().parent
RESULTS = HERE / "results"
_LIBRARIES = ("fastapi", "pydantic", "sqlalchemy", "starlette")


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...] = (40, 160, 640)
    edits: int = 5
    gap: float = 2.0  # at least this long after each new body is served, before the next edit
    idle_cpu: float = 0.03  # CPU seconds the tool's tree may use in 0.25 s and count as settled
    settle_limit: float = 30.0
    poll: float = 0.005
    reload_timeout: float = 60.0
    start_timeout: float = 180.0
    floor_runs: int = 3
    reloadkit_path: str | None = None  # a checkout to run reloadkit from (PYTHONPATH)
    edit: str = "handler"


@dataclass(frozen=True)
class Edit:
    """What is edited: ``apply(project, number)`` saves the file and returns the path to poll
    and what its body then contains (``within``) or is."""

    key: str
    description: str
    apply: Callable[[shopgen.Project, int], tuple[str, str]]
    within: bool


def _handler(project: shopgen.Project, number: int) -> tuple[str, str]:
    return shopgen.marker_path(project.middle), shopgen.edit_handler(project, project.middle, f"v{number}")


def _model(project: shopgen.Project, number: int) -> tuple[str, str]:
    shopgen.add_column(project, project.middle, 0, f"col_v{number}")
    return f"/r{project.middle}/m0", f'"col_v{number}"'


def _setting(project: shopgen.Project, number: int) -> tuple[str, str]:
    shopgen.edit_setting(project, "CURRENCY", f"C{number}")
    # Not `GET /`: it builds the OpenAPI schema of every route on its first call (seconds at
    # 640 models), which would be timed as the reload.
    return f"/r{project.middle}/m0", f'"currency":"C{number}"'


EDITS = {
    edit.key: edit
    for edit in (
        Edit("handler", "the body of `GET /rK/marker` in `shop/routers/r_K.py`", _handler, False),
        Edit("model", "a column added to `M{K}_0` in `shop/models/m_K.py` (shown by `GET /rK/m0`)", _model, True),
        Edit("setting", "`CURRENCY` in `shop/settings.py` (shown by `GET /rK/m0`), which every router imports"
             " through `shop/describe.py`", _setting, True),
    )
}


@dataclass(frozen=True)
class ScaleTool:
    key: str
    label: str
    argv: Callable[[int], list[str]]
    env: Callable[[], dict[str, str]]
    setup: str


TOOLS = (
    ScaleTool(
        "reloadkit", "reloadkit (warm)",
        lambda port: [PYTHON, "-m", "reloadkit", "run", "-v", "-b", f"127.0.0.1:{port}", "--",
                      script("uvicorn"), "--fd", "3", "shop.main:app"],
        reloadkit_env, "reloadkit run -v -b 127.0.0.1:PORT -- uvicorn --fd 3 shop.main:app",
    ),
    ScaleTool(
        "uvicorn", "uvicorn --reload",
        lambda port: [script("uvicorn"), "shop.main:app", "--reload", "--host", "127.0.0.1", "--port", str(port)],
        dict, "uvicorn shop.main:app --reload --host 127.0.0.1 --port PORT",
    ),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="40,160,640", help="models per project, multiples of 10 (default 40,160,640)")
    parser.add_argument("--edits", type=int, default=5, help="edits per tool and size (default 5)")
    parser.add_argument("--edit", choices=sorted(EDITS), default="handler",
                        help="what is edited: a handler's body (the default; the floor is measured for it only),"
                             " a model (a column added), a setting")
    parser.add_argument("--tools", default="reloadkit,uvicorn",
                        help="reloadkit, uvicorn or both (default both)")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds at least between a served edit and the next")
    parser.add_argument("--floor-runs", type=int, default=3, help="re-imports and server starts for the floor")
    parser.add_argument("--reloadkit", metavar="DIR",
                        help="run the reloadkit of this checkout (put on PYTHONPATH), e.g. a worktree of an older commit")
    parser.add_argument("--keep", action="store_true", help="keep the projects and the tools' logs (the path is printed)")
    parser.add_argument("--out", type=results_name, default="scale", help="results name in bench/results/ (default scale)")
    parser.add_argument("--render", metavar="NAME", help="only redo the table from bench/results/NAME.json")
    return parser.parse_args(argv)


def _median_min(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None}
    return {"median": ms(statistics.median(values)), "min": ms(min(values))}


# --- the floor -----------------------------------------------------------------------------------

_FLOOR = r"""
import gc, importlib, json, os, signal, socket, statistics, sys, threading, time
from pathlib import Path
root, apps, models, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path[:0] = [root, apps]
import shopgen, uvicorn, uvicorn.main
import shop.main, shop.routers
project = shopgen.Project(Path(root), models)
mid = project.middle
name = f"r_{mid}"
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(128)


def answer(expected):
    with socket.create_connection(listener.getsockname(), timeout=60) as client:
        client.sendall(f"GET /r{mid}/marker HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := client.recv(65536):
            data += chunk
    assert data.endswith(expected.encode()), data[-200:]


def drop():
    for gone in (f"shop.routers.{name}", "shop.main"):
        del sys.modules[gone]
    delattr(shop.routers, name)  # else main's "from .routers import r_K" finds the old module


def in_a_fork(expected):
    # What a warm generation does: fork (after gc.freeze, as the warm parent), drop and
    # re-import, then uvicorn's command line on the listening socket, to the first response.
    gc.collect()
    gc.freeze()
    readable, writable = os.pipe()
    began = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        took = {}
        def client():
            try:
                answer(expected)
                took["s"] = time.perf_counter() - began
            finally:
                os.kill(os.getpid(), signal.SIGINT)  # the server stops either way: no wait forever
        try:
            drop()
            thread = threading.Thread(target=client)
            thread.start()
            try:
                uvicorn.main.main(["--fd", str(listener.fileno()), "--log-level", "warning", "shop.main:app"],
                                  standalone_mode=False)
            except SystemExit:
                pass
            thread.join(60)
            os.write(writable, json.dumps(took["s"]).encode())
        finally:
            os._exit(0)
    os.close(writable)
    data = b""
    while chunk := os.read(readable, 100):
        data += chunk
    os.close(readable)
    os.waitpid(pid, 0)
    gc.unfreeze()
    return json.loads(data)


imports, starts, forked = [], [], []
for run in range(runs):
    expected = shopgen.edit_handler(project, mid, f"floor{run}")
    began = time.perf_counter()
    drop()
    main = importlib.import_module("shop.main")
    imports.append(time.perf_counter() - began)
    server = uvicorn.Server(uvicorn.Config(main.app, fd=listener.fileno(), log_level="warning"))
    began = time.perf_counter()
    thread = threading.Thread(target=server.run)
    thread.start()
    answer(expected)
    starts.append(time.perf_counter() - began)
    server.should_exit = True
    thread.join(60)
    # As long as "floor{run}": each edit's file is then longer than the one before (shopgen's
    # trailing comment), or the cached bytecode of the same second would be taken for it.
    forked.append(in_a_fork(shopgen.edit_handler(project, mid, f"fork-{run}")))
listener.close()
print(json.dumps({"import_s": imports, "server_start_s": starts, "in_a_fork_s": forked}))
"""


def floor(size: int, workdir: Path, runs: int) -> dict[str, Any]:
    project = shopgen.generate(workdir / f"{size}-floor", size)
    result = subprocess.run(
        [PYTHON, "-c", _FLOOR, str(project.root), str(APPS), str(size), str(runs)],
        cwd=project.root, env=base_env(), capture_output=True, text=True, timeout=600,
    )
    if result.returncode != 0:
        raise ToolError(f"floor: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    imports, starts, forked = found["import_s"], found["server_start_s"], found["in_a_fork_s"]
    return {
        "reimport_ms": ms(statistics.median(imports)), "server_start_ms": ms(statistics.median(starts)),
        "total_ms": ms(statistics.median(imports) + statistics.median(starts)),
        "reimport_runs_ms": [ms(v) for v in imports], "server_start_runs_ms": [ms(v) for v in starts],
        "in_a_fork_ms": ms(statistics.median(forked)), "in_a_fork_runs_ms": [ms(v) for v in forked],
    }


# --- one tool at one size --------------------------------------------------------------------------


def settle(proc: ToolProcess, s: Settings) -> float:
    """At least ``gap`` seconds, then until the tool's tree is idle (seconds waited)."""
    began = time.monotonic()
    time.sleep(s.gap)
    while time.monotonic() - began < s.settle_limit:
        if tree_cpu_over(proc, 0.25) < s.idle_cpu:
            break
    return round(time.monotonic() - began, 2)


def serve(port: int, proc: ToolProcess, expected: str, path: str, deadline: float, pause: float,
          within: bool = False) -> Any:
    """The first reply with ``expected`` (None at the deadline); fails fast if the tool exits."""
    while time.monotonic() < deadline:
        if not proc.running():
            raise ToolError(f"exited with code {proc.popen.returncode}: {proc.log_tail(4)}")
        reply = wait_for_body(port, expected, deadline=min(deadline, time.monotonic() + 1.0), pause=pause, path=path,
                              within=within)
        if reply is not None:
            return reply
    return None


def _serving_pid(log_path: Path) -> int | None:
    pids = re.findall(r"started pid (\d+)", log_path.read_text(errors="replace"))
    return int(pids[-1]) if pids else None


def _reloadkit_account(proc: ToolProcess, offset: int, moments: list[tuple[float, float]]) -> dict[str, Any]:
    """What reloadkit said about the edits (warm or cold, fork times), its processes' memory."""
    with open(proc.log_path, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    forks = [float(v) for v in re.findall(r"forked warm from pid \d+[^\n]*? in ([\d.]+) ms", text)]
    roles = reloadkit_roles(proc, _serving_pid(proc.log_path))
    return {
        "forked_warm": len(forks), "fork_ms_median": round(statistics.median(forks), 1) if forks else None,
        "starts_cold": len(re.findall(r"starts cold", text)), "failed_warm": len(re.findall(r"failed warm", text)),
        "ready_in_ms": [float(v) for v in re.findall(r"ready in (\d+) ms", text)],
        "parts": restart_parts(proc.log_path, offset, moments),
        "memory": {role: memory_mb(procs) for role, procs in roles.items()},
        "warm_parents_each": {str(proc.pid): memory_mb([proc]) for proc in roles["warm_parents"]},
        "checkpoint_forks": len(re.findall(r"forked warm from pid \d+ \(the project checkpoint", text)),
    }


def run_tool(tool: ScaleTool, size: int, workdir: Path, registry: Registry, s: Settings) -> dict[str, Any]:
    project = shopgen.generate(workdir / f"{size}-{tool.key}", size)
    state = workdir / f"{size}-{tool.key}-state"  # outside the watched tree
    state.mkdir()
    mid = project.middle
    path = shopgen.marker_path(mid)
    edit = EDITS[s.edit]
    port = free_port()
    result: dict[str, Any] = {"key": tool.key, "label": tool.label, "edited": edit.description.replace("K", str(mid))}
    env = {**base_env(), **tool.env()}
    if tool.key.startswith("reloadkit") and s.reloadkit_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (s.reloadkit_path, env.get("PYTHONPATH"))))
    proc = ToolProcess(tool.argv(port), project.root, env, state / "tool.log", registry, timestamps=True)
    try:
        reply = serve(port, proc, f"r{mid} v0", path, proc.started + s.start_timeout, 0.01)
        if reply is None:
            raise ToolError(f"no answer within {s.start_timeout:.0f} s: {proc.log_tail(4)}")
        result["start_ms"] = ms(reply.started + reply.latency - proc.started)
        log(f"{size}/{tool.key}", f"serving after {result['start_ms']} ms on port {port}")
        result["settle_s"] = [settle(proc, s)]
        offset = proc.log_path.stat().st_size
        latencies: list[float] = []
        moments: list[tuple[float, float]] = []
        for number in range(1, s.edits + 1):
            poll, expected = edit.apply(project, number)
            written = time.monotonic()
            reply = serve(port, proc, expected, poll, written + s.reload_timeout, s.poll, within=edit.within)
            if reply is None:
                raise ToolError(f"edit {number} not served within {s.reload_timeout:.0f} s: {proc.log_tail(4)}")
            answered = reply.started + reply.latency
            latencies.append(answered - written)
            moments.append((written, answered))
            log(f"{size}/{tool.key}", f"edit {number}: {ms(latencies[-1])} ms")
            result["settle_s"].append(settle(proc, s))
        result["reload_ms"] = [ms(v) for v in latencies]
        result.update(_median_min(latencies))
        # the first edit makes its file hot: a checkpoint that held it cannot serve it
        result["later_median"] = _median_min(latencies[1:])["median"]
        if tool.key.startswith("reloadkit"):
            result["reloadkit"] = _reloadkit_account(proc, offset, moments)
    except ToolError as exc:
        result["error"] = str(exc)
        log(f"{size}/{tool.key}", f"failed: {exc}")
    finally:
        result["log_tail"] = proc.log_tail(8)
        stop(proc)
        registry.sweep()
    return result


# --- the report ------------------------------------------------------------------------------------


def _n(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if isinstance(value, float) else str(value)


def _tool(row: dict[str, Any], key: str) -> dict[str, Any]:
    return next((tool for tool in row["tools"] if tool["key"] == key), {})


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or not b else f"{a / b:.2f}"


def _memory(rk: dict[str, Any]) -> str:
    memory = rk.get("reloadkit", {}).get("memory")
    if not memory:
        return "-"
    sup, warm = memory["supervisor"], memory["warm_parents"]
    return (f"{_n(sup['rss_mb'])} / {_n(sup['pss_mb'])}; {warm['count']} warm: "
            f"{_n(warm['rss_mb'])} / {_n(warm['pss_mb'])}")


def _cell(tool: dict[str, Any]) -> str:
    if not tool:
        return "-"
    if tool.get("error"):
        return "failed"
    later = tool.get("later_median")
    if later is None and len(tool.get("reload_ms") or []) > 1:  # results written before this column
        later = round(statistics.median(tool["reload_ms"][1:]), 1)
    return f"{_n(tool.get('median'))} / {_n(tool.get('min'))} / {_n(later)}"


def table(data: dict[str, Any]) -> str:
    """One row per size: each tool's median / min, reloadkit ÷ uvicorn, the floor, memory."""
    keys = [tool["key"] for tool in data["sizes"][0]["tools"]] if data["sizes"] else []
    labels = {tool["key"]: tool["label"] for row in data["sizes"] for tool in row["tools"]}
    header = ["models", *[f"{labels[key]}: median / min / median of edits 2+ (ms)" for key in keys]]
    warm = [key for key in keys if key.startswith("reloadkit")]
    header += [f"{labels[key]} ÷ uvicorn" for key in warm if "uvicorn" in keys]
    header += ["floor: re-import + uvicorn start = total (ms)", *[f"{labels[key]} ÷ floor" for key in warm],
               "the floor's work in a fork (ms)", *[f"{labels[key]} ÷ that" for key in warm],
               "reloadkit RSS / PSS (MB): supervisor; warm parents"]
    body = []
    for row in data["sizes"]:
        uv, fl = _tool(row, "uvicorn"), row.get("floor", {})
        cells = [str(row["models"]), *[_cell(_tool(row, key)) for key in keys]]
        if "uvicorn" in keys:
            cells += [_ratio(_tool(row, key).get("median"), uv.get("median")) for key in warm]
        cells.append(f"{_n(fl.get('reimport_ms'))} + {_n(fl.get('server_start_ms'))} = {_n(fl.get('total_ms'))}")
        cells += [_ratio(_tool(row, key).get("median"), fl.get("total_ms")) for key in warm]
        cells.append(_n(fl.get("in_a_fork_ms")))
        cells += [_ratio(_tool(row, key).get("median"), fl.get("in_a_fork_ms")) for key in warm]
        cells.append(_memory(_tool(row, warm[0]) if warm else {}))
        body.append(cells)
    return markdown_table(header, body)


def _details(row: dict[str, Any]) -> list[str]:
    lines = []
    for tool in row["tools"]:
        text = f"- {row['models']} models, {tool['label']}: cold start {_n(tool.get('start_ms'))} ms"
        text += f"; edits (ms) {tool.get('reload_ms', '-')}"
        if "error" in tool:
            text += f"; **failed**: {tool['error']}"
        account = tool.get("reloadkit")
        if account:
            parts = account["parts"]
            text += (f"; forked warm {account['forked_warm']} of {len(tool.get('reload_ms', []))} "
                     f"({account.get('checkpoint_forks', 0)} from the project checkpoint; fork "
                     f"{_n(account['fork_ms_median'])} ms), starts cold {account['starts_cold']}, failed warm "
                     f"{account['failed_warm']}; save → child started {_n(parts['to_spawn']['median'])} ms, → its "
                     f"first response {_n(parts['spawn_to_response']['median'])} ms (medians)")
            each = account.get("warm_parents_each", {})
            if each:
                text += "; warm parents RSS / PSS (MB) each: " + ", ".join(
                    f"{_n(m['rss_mb'])} / {_n(m['pss_mb'])}" for m in each.values())
        lines.append(text)
    return lines


def markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    m = meta["machine"]
    lines = [
        f"## Scale: one {meta['settings'].get('edit', 'handler')} edited in generated FastAPI projects ({meta['date']})", "",
        f"Command: `{meta['command']}` ({meta.get('duration_s', '?')} s)", "",
        f"Machine: {m['cpu']}, {m['usable_cores']} of {m['cores']} cores usable, {m['memory_gib']} GiB, {m['os']}, "
        f"{m['python']}; `uptime` at start: {meta['uptime_at_start']}; at end: {meta.get('uptime_at_end', '?')}", "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + "; reloadkit at commit "
        f"`{meta['reloadkit_source']['commit'] or '?'}`.", "",
        "Tools: " + "; ".join(f"`{t}`" for t in meta["setups"]) + ". The edit: "
        f"{EDITS[meta['settings'].get('edit', 'handler')].description}, K = modules // 2; write → first response"
        " with the new body, a new connection "
        f"every {meta['settings']['poll'] * 1000:.0f} ms; {meta['settings']['edits']} edits per tool and size, "
        f"each after the tool settled (≥ {meta['settings']['gap']:g} s, then its process tree idle).", "",
        table(data), "",
        "Floor: in a process that imported the whole project and uvicorn, the edited router rewritten, it and "
        "`shop.main` dropped from `sys.modules` and `shop.main` imported again (re-import), then "
        "`uvicorn.Server` started on a listening socket with that app, to its first response (uvicorn start); "
        f"medians of {meta['settings']['floor_runs']}. In a fork: the same work in a fork of that process "
        "(after `gc.freeze()`, as a warm parent forks), through uvicorn's command line (`--fd`), from the fork to "
        "the first response: what a warm generation cannot go under. RSS / PSS after the edits; PSS shares shared pages "
        "among the processes that map them.", "",
        *[line for row in data["sizes"] for line in _details(row)], "",
    ]
    return "\n".join(lines)


def write_results(data: dict[str, Any], name: str) -> tuple[Path, Path]:
    RESULTS.mkdir(exist_ok=True)
    paths = (RESULTS / f"{name}.json", RESULTS / f"{name}.md")
    for path, text in zip(paths, (json.dumps(data, indent=1) + "\n", markdown(data)), strict=True):
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, path)
    return paths


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def reloadkit_source(path: str | None) -> dict[str, str]:
    """Which reloadkit the runs use: its directory and that checkout's commit (if a checkout)."""
    env = {**base_env(), **reloadkit_env(), **({"PYTHONPATH": path} if path else {})}
    found = subprocess.run([PYTHON, "-c", "import reloadkit; print(reloadkit.__file__)"], env=env, cwd="/",
                           capture_output=True, text=True, timeout=60)
    where = Path(found.stdout.strip() or ".").parent.parent
    commit = subprocess.run(["git", "-C", str(where), "log", "-1", "--format=%h %s"], capture_output=True,
                            text=True, timeout=30).stdout.strip()
    return {"path": str(where), "commit": commit[:100]}


def _versions() -> dict[str, str]:
    import importlib.metadata

    found = versions()
    for name in _LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        saved = json.loads((RESULTS / f"{args.render}.json").read_text())
        write_results(saved, args.render)
        print(markdown(saved))
        return 0
    try:
        sizes = tuple(int(size) for size in args.sizes.split(","))
    except ValueError:
        raise SystemExit(f"--sizes: comma-separated numbers, not {args.sizes!r}") from None
    if any(size <= 0 or size % shopgen.PER_MODULE for size in sizes):
        raise SystemExit(f"--sizes: each a positive multiple of {shopgen.PER_MODULE}")
    wanted = args.tools.split(",")
    tools = [tool for tool in TOOLS if tool.key in wanted]
    if len(tools) != len(wanted):
        raise SystemExit(f"--tools: among {', '.join(tool.key for tool in TOOLS)}")
    s = Settings(sizes=sizes, edits=args.edits, gap=args.gap, floor_runs=args.floor_runs, edit=args.edit,
                 reloadkit_path=str(Path(args.reloadkit).resolve()) if args.reloadkit else None)
    if not take_over_run():
        log("bench", "could not become a child subreaper: orphans of orphans may escape the final sweep")
    registry = Registry()
    workdir = Path(tempfile.mkdtemp(prefix="reloadkit-scale-"))
    began = time.monotonic()
    data: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "command": " ".join(["python", "bench/scale.py", *(sys.argv[1:] if argv is None else argv)]),
            "machine": machine(), "uptime_at_start": _uptime(), "versions": _versions(),
            "setups": [tool.setup for tool in tools], "settings": asdict(s),
            "reloadkit_source": reloadkit_source(s.reloadkit_path),
        },
        "sizes": [],
    }
    try:
        for size in sizes:
            row: dict[str, Any] = {"models": size, "modules": size // shopgen.PER_MODULE, "tools": []}
            data["sizes"].append(row)
            try:
                if s.edit != "handler":
                    raise ToolError(f"measured for a handler's body only, not for --edit {s.edit}")
                row["floor"] = floor(size, workdir, s.floor_runs)
                log(f"{size}", f"floor {row['floor']['reimport_ms']} + {row['floor']['server_start_ms']} ms")
            except (ToolError, subprocess.TimeoutExpired) as exc:
                row["floor"] = {"error": str(exc)}
                log(f"{size}", f"floor failed: {exc}")
            for tool in tools:
                row["tools"].append(run_tool(tool, size, workdir, registry, s))
                row["tools"][-1]["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except KeyboardInterrupt:
        log("bench", "interrupted: ending every process started, no results written")
        return 130
    finally:
        registry.sweep()
        if args.keep:
            log("bench", f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    data["meta"]["duration_s"] = round(time.monotonic() - began, 1)
    data["meta"]["uptime_at_end"] = _uptime()
    paths = write_results(data, args.out)
    print(markdown(data))
    log("bench", "wrote " + ", ".join(str(path.relative_to(HERE.parent)) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
