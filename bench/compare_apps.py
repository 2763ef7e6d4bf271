"""Benchmark reloaders on real framework apps: FastAPI, Django, Flask (bench/apps/).

    python bench/compare_apps.py                       # every app, every tool: about 15 minutes
    python bench/compare_apps.py --quick               # 4 edits per tool: about 5 minutes
    python bench/compare_apps.py --apps fastapi --tools framework,reloadkit --reloads 6
    python bench/compare_apps.py --render apps         # redo the tables and chart from apps.json

Per app, in one run: the framework's own reloader (``uvicorn --reload``, ``manage.py
runserver``, ``flask run --debug``), the watchfiles CLI and reloadkit in each of its modes,
each on a fresh copy of the app on a free port. Measured: cold start (process start → first
response), save → first response from the new code (median and max), failed requests of a
looping client during the reloads, what a syntax error does, Ctrl+C; and per app the
project's own import and set-up time (the floor). Results go to bench/results/ (``apps.*``, or
``apps-quick.*`` with --quick): markdown, reST, JSON and a PNG chart.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _appphases import QUICK_APPS, AppSettings, AppToolBench, Project, import_floor
from _appreport import chart, markdown, rst
from _harness import Registry, take_over_run
from _phases import log
from _realapps import by_keys, reloadkit_options, tools_for
from _report import machine, results_name
from _tools import versions

RESULTS = Path(__file__).resolve().parent / "results"
_LIBRARIES = ("fastapi", "pydantic", "sqlalchemy", "django", "flask", "flask-sqlalchemy", "werkzeug", "uvicorn",
              "gunicorn", "watchfiles", "starlette", "h11")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (4 edits per tool, fewer repeats)")
    parser.add_argument("--apps", help="comma-separated app keys: fastapi,django,flask (default: all)")
    parser.add_argument("--tools", help="comma-separated tool keys (default: all; see --list)")
    parser.add_argument("--reloads", type=int, help="edits per tool (default 12; 4 with --quick)")
    parser.add_argument("--out", type=results_name, help="results name in bench/results/ (default apps, or apps-quick)")
    parser.add_argument("--list", action="store_true", help="list the apps and tools and exit")
    parser.add_argument("--render", metavar="NAME", help="only redo the tables and chart from bench/results/NAME.json")
    return parser.parse_args(argv)


def write_results(data: dict[str, Any], name: str) -> tuple[Path, ...]:
    RESULTS.mkdir(exist_ok=True)
    paths = (RESULTS / f"{name}.json", RESULTS / f"{name}.md", RESULTS / f"{name}.rst", RESULTS / f"{name}.png")
    texts = (json.dumps(data, indent=1) + "\n", markdown(data), rst(data))
    for path, text in zip(paths[:3], texts, strict=True):
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, path)
    temporary = paths[3].with_suffix(".png.tmp")
    chart(data, temporary)
    os.replace(temporary, paths[3])
    return paths


def library_versions() -> dict[str, str]:
    found = versions()
    for name in _LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def prepare_database(app: Any, workdir: Path) -> Path | None:
    """Migrations run once per app (Django); each tool's copy starts from that database."""
    if not app.migrate:
        return None
    project = Project(app, workdir / f"{app.key}-migrate", None)
    result = subprocess.run(app.migrate, cwd=project.src, env=project.env(), capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"{app.key}: migrations failed: {result.stderr.strip()[-300:]}")
    databases = sorted(project.state.glob("*.sqlite3"))
    return databases[0] if databases else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        saved = json.loads((RESULTS / f"{args.render}.json").read_text())
        write_results(saved, args.render)
        print(markdown(saved))
        return 0
    apps = by_keys(args.apps.split(",") if args.apps else None)
    wanted = set(args.tools.split(",")) if args.tools else None
    if args.list:
        for app in apps:
            print(f"{app.key}: {app.label}; server: {app.server_note}")
            for tool in tools_for(app):
                print(f"  {tool.key:26} {tool.label}")
        return 0
    settings: AppSettings = QUICK_APPS if args.quick else AppSettings()
    if args.reloads:
        settings = replace(settings, reloads=args.reloads)
    if not take_over_run():
        log("bench", "could not become a child subreaper: orphans of orphans may escape the final sweep")
    registry = Registry()
    workdir = Path(tempfile.mkdtemp(prefix="reloadkit-apps-"))
    began = time.monotonic()
    data: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "mode": "quick" if args.quick else "full",
            "command": " ".join(["python", "bench/compare_apps.py", *(sys.argv[1:] if argv is None else argv)]),
            "machine": machine(),
            "versions": library_versions(),
            "reloadkit_options": sorted(reloadkit_options()),
            "settings": asdict(settings),
        },
        "apps": [],
    }
    try:
        log("bench", f"workdir {workdir}")
        for app in apps:
            log(app.key, f"=== {app.label}")
            entry: dict[str, Any] = {"key": app.key, "label": app.label, "server": app.server_note,
                                     "framework_label": app.framework_label, "tools": []}
            data["apps"].append(entry)
            database = prepare_database(app, workdir)
            floor_project = Project(app, workdir / f"{app.key}-floor", database)
            entry["floor"] = import_floor(app, floor_project, settings.floor_runs)
            log(app.key, f"import floor: {entry['floor']}")
            for index, tool in enumerate(tools_for(app)):
                if wanted and tool.key not in wanted:
                    continue
                log(f"{app.key}/{tool.key}", f"--- {tool.label}")
                bench = AppToolBench(app, tool, settings, registry, workdir / f"{app.key}-{index}-{tool.key}",
                                     database)
                entry["tools"].append(bench.run())
                entry["tools"][-1]["load_average"] = [round(value, 2) for value in os.getloadavg()]
    except KeyboardInterrupt:
        log("bench", "interrupted: ending every process started, no results written")
        return 130
    finally:
        registry.sweep()
        shutil.rmtree(workdir, ignore_errors=True)
    data["meta"]["duration_s"] = round(time.monotonic() - began, 1)
    data["meta"]["machine"]["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    paths = write_results(data, args.out or ("apps-quick" if args.quick else "apps"))
    print(markdown(data))
    log("bench", "wrote " + ", ".join(str(path.relative_to(RESULTS.parent.parent)) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
