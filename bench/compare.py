"""Benchmark reloadkit side by side with today's reloaders.

    python bench/compare.py            # full run, about 10 minutes on 2 cores
    python bench/compare.py --quick    # a short run, 1-2 minutes
    python bench/compare.py --tools reloadkit,hupper

Each tool runs the same trivial app (its version string in ``version.py``, which the benchmark
rewrites) in a fresh temporary directory on a free port, and is measured for reload latency,
failed requests, latency during reloads, restarts per burst, idle CPU with big trees,
supervisor memory, Ctrl+C shutdown and orphaned processes. Results go to bench/results/
(``latest.*`` for a full run, ``quick.*`` for --quick): a markdown table, the raw numbers as
JSON, the same table as reST for README.rst, and a PNG chart. All traffic goes to 127.0.0.1; every process started is ended.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Registry, take_over_run
from _phases import QUICK, Settings, ToolBench, app_startup, as_dict, log
from _report import chart, machine, markdown, results_name, rst
from _tools import by_keys, versions
from _workload import TreeStore

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (fewer reloads, smaller trees)")
    parser.add_argument("--tools", help="comma-separated tool keys (default: all)")
    parser.add_argument("--reloads", type=int, help="edits per tool (default 20; 5 with --quick)")
    parser.add_argument("--idle-seconds", type=float, help="idle CPU window (default 10 s; 3 s with --quick)")
    parser.add_argument("--trees", help="one or two extra-file tree sizes, e.g. 20000,100000")
    parser.add_argument("--out", type=results_name, help="results name in bench/results/ (default latest, or quick)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects and tool logs")
    parser.add_argument("--list", action="store_true", help="list the tools and exit")
    parser.add_argument("--render", metavar="NAME", help="only redo the tables and chart from bench/results/NAME.json")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    settings = QUICK if args.quick else Settings()
    if args.reloads:
        settings = replace(settings, reloads=args.reloads)
    if args.idle_seconds:
        settings = replace(settings, idle_seconds=args.idle_seconds)
    if args.trees:
        trees = tuple(sorted(int(size) for size in args.trees.split(",")))
        if not 1 <= len(trees) <= 2:
            raise SystemExit("--trees takes one or two sizes")
        settings = replace(settings, trees=trees)
    return settings


def write_results(data: dict[str, Any], name: str) -> tuple[Path, ...]:
    RESULTS.mkdir(exist_ok=True)
    paths = (RESULTS / f"{name}.json", RESULTS / f"{name}.md", RESULTS / f"{name}.rst", RESULTS / f"{name}.png")
    texts = (json.dumps(data, indent=1) + "\n", markdown(data), rst(data, f"bench/results/{name}.png"))
    for path, text in zip(paths[:3], texts, strict=True):
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, path)
    temporary = paths[3].with_suffix(".png.tmp")
    chart(data, temporary)
    os.replace(temporary, paths[3])
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        saved = json.loads((RESULTS / f"{args.render}.json").read_text())
        write_results(saved, args.render)
        print(markdown(saved))
        return 0
    tools = by_keys(args.tools.split(",") if args.tools else None)
    if args.list:
        for tool in tools:
            print(f"{tool.key:22} {tool.setup}")
        return 0
    settings = settings_from(args)
    if not take_over_run():
        log("bench", "could not become a child subreaper: orphans of orphans may escape the final sweep")
    registry = Registry()
    workdir = Path(tempfile.mkdtemp(prefix="reloadkit-bench-"))
    began = time.monotonic()
    data: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "mode": "quick" if args.quick else "full",
            "command": " ".join(["python", "bench/compare.py", *(sys.argv[1:] if argv is None else argv)]),
            "machine": machine(),
            "versions": versions(),
            "settings": as_dict(settings),
        },
        "tools": [],
    }
    trees = TreeStore(workdir / "trees")
    try:
        log("bench", f"workdir {workdir}")
        data["meta"]["app_startup_ms"] = {}
        for kind in ("wsgi", "asgi"):
            try:
                found = app_startup(kind, settings.startup_runs, registry, workdir)
            except Exception as exc:  # noqa: BLE001 - the tools can still be measured
                found = {"median": None, "error": f"{type(exc).__name__}: {exc}"}
            data["meta"]["app_startup_ms"][kind] = found
        log("bench", f"app start-up: {data['meta']['app_startup_ms']['wsgi']['median']} ms (WSGI), "
                     f"{data['meta']['app_startup_ms']['asgi']['median']} ms (ASGI)")
        for tool in tools:
            log(tool.key, f"--- {tool.setup}")
            row = ToolBench(tool, settings, registry, workdir, trees, keep=args.keep).run()
            data["tools"].append(row)
            if row["status"] != "ok":
                log(tool.key, row["status"])
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
    data["meta"]["machine"]["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    paths = write_results(data, args.out or ("quick" if args.quick else "latest"))
    print(markdown(data))
    log("bench", "wrote " + ", ".join(str(path.relative_to(RESULTS.parent.parent)) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
