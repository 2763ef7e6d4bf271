"""The machine description, the markdown tables, the target check and the chart."""

from __future__ import annotations

import argparse
import os
import platform
import random
from pathlib import Path
from typing import Any

import psutil

Row = dict[str, Any]


def results_name(value: str) -> str:
    """``--out``: a name in ``bench/results/``, checked before a run of minutes, not after it."""
    if not value or os.sep in value or value.startswith("."):
        raise argparse.ArgumentTypeError(f"a name for bench/results/, not a path: {value!r}")
    return value


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    distro = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "os": distro,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _failed(row: Row) -> str:
    d = row.get("during_reloads")
    if not d:
        return "-"
    if not d["failed"]:
        return f"0 of {d['requests']}"
    parts = f"{d['refused']}/{d['reset']}/{d['timeout']}" + (f" +{d['error']} other" if d["error"] else "")
    return f"**{d['failed']}** of {d['requests']} ({parts})"


def _idle_cpu(row: Row) -> str:
    entries = row.get("idle_cpu") or []
    return " / ".join("err" if "percent_core" not in e else _num(e["percent_core"], 2) for e in entries) or "-"


def _orphans(row: Row) -> str:
    reload = row.get("orphans_after_reload")
    exit_ = (row.get("shutdown") or {}).get("orphans")
    return f"{_num(reload)} / {_num(exit_)}"


def _shutdown(row: Row) -> str:
    shutdown = row.get("shutdown")
    if not shutdown:
        return "-"
    return "timeout" if shutdown["ms"] is None else _num(shutdown["ms"])


def _reload(row: Row) -> str:
    r = row.get("reload")
    if not r:
        return "-"
    text = f"{_num(r['median'])} / {_num(r['max'])}"
    return text + (f" ({r['lost']} lost)" if r["lost"] else "")


def _restarts(row: Row) -> str:
    burst = row.get("burst")
    return _num(burst["restarts"]) if burst else "-"


def _memory(row: Row) -> str:
    memory = row.get("memory")
    if not memory:
        return "-"
    return f"{_num(memory.get('supervisor_mb'), 1)} / {_num(memory.get('warm_parent_mb'), 1)}"


def main_cells(rows: list[Row], trees: tuple[int, ...]) -> tuple[list[str], list[list[str]]]:
    sizes = " / ".join(f"{size // 1000}k" for size in trees)
    header = [
        "tool", "reload latency median / max (ms)", "failed requests (refused/reset/timeout)",
        "idle latency p50 (ms)", "worst latency during reloads (ms)", "restarts per 300-file burst",
        f"idle CPU, % of a core ({sizes} files)", "supervisor RSS (MB)", "Ctrl+C → all gone (ms)",
        "orphans (reload / exit)",
    ]
    body = []
    for row in rows:
        if row["status"] != "ok":
            cells = [row["label"], row["status"].replace("|", "/")] + [""] * (len(header) - 2)
        else:
            cells = [
                row["label"], _reload(row), _failed(row), _num((row.get("idle") or {}).get("p50_ms"), 1),
                _num((row.get("during_reloads") or {}).get("max_ms")), _restarts(row), _idle_cpu(row),
                _num(row.get("rss_mb"), 1), _shutdown(row), _orphans(row),
            ]
        body.append(cells)
    return header, body


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def rst_table(header: list[str], body: list[list[str]]) -> str:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for cells in [header, *body]:
        first, *rest = cells
        lines.append(f"   * - {first}".rstrip())
        lines += [f"     - {cell}".rstrip() for cell in rest]
    return "\n".join(lines)


def main_table(rows: list[Row], trees: tuple[int, ...]) -> str:
    return markdown_table(*main_cells(rows, trees))


def details_table(rows: list[Row], reloads: int) -> str:
    header = [
        "tool", "setup", "tool start-up (ms)", "app alone, measured just before (ms)",
        f"app start-ups for {reloads} edits", "supervisor CPU during the edits (s)", "idle latency max (ms)",
        "RSS with the largest tree (MB)", "edit in the extra tree restarts", "old app processes left",
        "reloadkit RSS: supervisor + guardian / warm parent (MB)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if row["status"] != "ok":
            continue
        trees = row.get("idle_cpu") or []
        watched = next((e.get("tree_watched") for e in trees if "tree_watched" in e), None)
        reload = row.get("reload") or {}
        cells = [
            row["label"], f"`{row['setup']}`", _num(row.get("start_ms")),
            _num((row.get("app_startup_near_ms") or {}).get("median")),
            _num(reload.get("app_starts")), _num(reload.get("supervisor_cpu_s"), 2),
            _num((row.get("idle") or {}).get("max_ms"), 1),
            _num(trees[-1].get("rss_mb"), 1) if trees else "-",
            {True: "yes", False: "no", None: "-"}[watched], _num(row.get("stale_apps_after_reload")),
            _memory(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: list[Row], startup_ms: float | None) -> list[tuple[str, bool | None, str]]:
    """Each issue target for reloadkit rows: (target, met?, what was measured)."""
    found: list[tuple[str, bool | None, str]] = []
    kit = [row for row in rows if row["key"].startswith("reloadkit") and row["status"] == "ok"]
    others = [row for row in rows if not row["key"].startswith("reloadkit") and row.get("reload")]
    for row in kit:
        label = row["label"]
        d = row.get("during_reloads") or {}
        found.append((f"{label}: zero failed requests", d.get("failed") == 0 if d else None, _failed(row)))
        shutdown = row.get("shutdown") or {}
        orphan_ok = row.get("orphans_after_reload") == 0 and shutdown.get("orphans") == 0
        found.append((f"{label}: zero orphans", orphan_ok if shutdown else None, _orphans(row) + " (reload / exit)"))
        burst = row.get("burst")
        found.append((f"{label}: one restart per burst", burst["restarts"] == 1 if burst else None, _restarts(row)))
        median = (row.get("reload") or {}).get("median")
        near = (row.get("app_startup_near_ms") or {}).get("median")
        baseline = near if near is not None else startup_ms
        if median is not None and baseline is not None:
            limit = baseline + 20
            which = "measured just before this tool" if near is not None else "at the start of the run"
            found.append((
                f"{label}: median reload ≤ app start-up + 20 ms", median <= limit,
                f"{median:.0f} ms vs {baseline:.0f} + 20 = {limit:.0f} ms; start-up {which}",
            ))
        nodemon = next((o["reload"]["median"] for o in others if o["key"] == "nodemon"), None)
        if median is not None and nodemon is not None:
            found.append((f"{label}: median reload ≤ nodemon's", median <= nodemon,
                          f"{median:.0f} ms vs nodemon {nodemon:.0f} ms"))
        best_other = min((o["reload"]["median"] for o in others if o["reload"]["median"] is not None), default=None)
        if median is not None and best_other is not None:
            found.append((
                f"{label}: median reload below every other tool", median < best_other,
                f"{median:.0f} ms vs best other {best_other:.0f} ms",
            ))
        for entry in row.get("idle_cpu") or []:
            if "percent_core" in entry:
                found.append((
                    f"{label}: idle CPU < 1% of a core, {entry['files']} files", entry["percent_core"] < 1,
                    f"{entry['percent_core']:.2f}%",
                ))
        rss = [row.get("rss_mb"), *[e.get("rss_mb") for e in row.get("idle_cpu") or []]]
        rss_values = [value for value in rss if value]
        if rss_values:
            found.append((f"{label}: supervisor RSS < 30 MB", max(rss_values) < 30, f"max {max(rss_values):.1f} MB"))
    medians = {row["key"]: (row.get("reload") or {}).get("median") for row in kit}
    for warm, cold in (("reloadkit-warm", "reloadkit"), ("reloadkit-warm-overlap", "reloadkit-overlap")):
        if medians.get(warm) is not None and medians.get(cold) is not None:
            found.append((
                f"{warm}: median reload no slower than {cold} (--no-warm)", medians[warm] <= medians[cold],
                f"{medians[warm]:.0f} ms vs {medians[cold]:.0f} ms",
            ))
    for overlap in (row for row in kit if "overlap" in row["key"]):
        during, idle = overlap.get("during_reloads"), overlap.get("idle")
        if not during or not idle or during["max_ms"] is None or not idle["max_ms"]:
            continue
        worst, idle_max, idle_p50 = during["max_ms"], idle["max_ms"], idle["p50_ms"]
        found.append((
            f"{overlap['label']}: worst latency during reloads ≤ 2x idle latency", worst <= 2 * idle_max,
            f"{worst:.1f} ms vs idle max {idle_max:.1f} ms (idle p50 {idle_p50:.1f} ms)",
        ))
    return found


def markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    m = meta["machine"]
    rows = data["tools"]
    startup = meta["app_startup_ms"]
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    out = [
        f"## Reloaders side by side ({meta['mode']} run, {meta['date']})",
        "",
        f"Command: `{meta['command']}` ({meta['duration_s']:.0f} s)",
        "",
        f"Machine: {m['cpu']}, {m['usable_cores']} of {m['cores']} cores usable, {m['memory_gib']} GiB, "
        f"{m['kernel']}, {m['os']}, {m['python']}; load average (1/5/15 min) at start {m['load_average_at_start']}, "
        f"at end {m.get('load_average_at_end', '?')} (a shared machine: other work ran beside the benchmark).",
        "",
        f"Versions: {versions}.",
        *[line for note in meta.get("notes", []) for line in ("", note)],
        "",
        "App start-up without a reloader (process start → first response, median of "
        f"{len(startup['wsgi'].get('runs_ms', []))}): WSGI app (werkzeug's server) "
        f"{_num(startup['wsgi'].get('median'))} ms; ASGI app (uvicorn) {_num(startup['asgi'].get('median'))} ms.",
        "",
        main_table(rows, tuple(meta["settings"]["trees"])),
        "",
        details_table(rows, meta["settings"]["reloads"]),
    ]
    checks = targets(rows, startup["wsgi"].get("median"))
    if checks:
        out += ["", "Targets (reloadkit):", ""]
        for name, met, measured in checks:
            mark = {True: "met", False: "**MISSED**", None: "not measured"}[met]
            out.append(f"- {name}: {mark} ({measured})")
    own = [row for row in rows if row.get("reload", {}).get("reloadkit_child_ready_ms_median") is not None]
    if own:
        out += ["", "reloadkit's own log during the edits (medians; max in brackets):", ""]
        for row in own:
            r = row["reload"]
            stop = (
                f", old child stopped in {_num(r['reloadkit_stop_ms_median'])} ms ({_num(r['reloadkit_stop_ms_max'])})"
                if "reloadkit_stop_ms_median" in r else ""
            )
            out.append(
                f"- {row['label']}: new child ready {_num(r['reloadkit_child_ready_ms_median'])} ms after its start"
                f" ({_num(r['reloadkit_child_ready_ms_max'])}){stop}"
            )
    notes = [f"- {row['label']}: {error}" for row in rows for error in row.get("errors", [])]
    if notes:
        out += ["", "Errors during the run:", "", *notes]
    return "\n".join(out) + "\n"


def rst(data: dict[str, Any], image: str = "bench/results/latest.png") -> str:
    """The headline for README.rst: command, machine, start-up, the main table, the chart."""
    meta = data["meta"]
    m = meta["machine"]
    startup = meta["app_startup_ms"]
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    return "\n".join([
        f"``{meta['command']}`` ({meta['mode']} run, {meta['date']}, {meta['duration_s']:.0f} s) on {m['cpu']},"
        f" {m['usable_cores']} cores, {m['memory_gib']} GiB, {m['kernel']}, {m['os']}, {m['python']};"
        f" load average {m['load_average_at_start']} at start, {m.get('load_average_at_end', '?')} at end.",
        f"Versions: {versions}. The app alone starts in {_num(startup['wsgi'].get('median'))} ms (WSGI, werkzeug's"
        f" server) and {_num(startup['asgi'].get('median'))} ms (ASGI, uvicorn): process start to first response.",
        *[line for note in meta.get("notes", []) for line in ("", note.replace("`", "``"))],
        "",
        rst_table(*main_cells(data["tools"], tuple(meta["settings"]["trees"]))),
        "",
        f".. image:: {image}",
        "   :alt: reload latency per tool, and failed requests per tool",
        "",
    ])


def chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in data["tools"] if row["status"] == "ok" and row.get("reload")]
    labels = [row["label"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    series = [[v for v in row["reload"]["latencies_ms"] if v is not None] for row in rows]
    if rows:
        left.boxplot(series, orientation="horizontal", tick_labels=labels, showfliers=False, widths=0.6)
        rng = random.Random(0)
        for index, values in enumerate(series, start=1):
            left.scatter(values, [index + rng.uniform(-0.18, 0.18) for _ in values], s=10, alpha=0.6, zorder=3)
        startup = data["meta"]["app_startup_ms"]["wsgi"].get("median")
        if startup:
            left.axvline(startup, color="grey", linestyle=":", label=f"app alone starts in {startup:.0f} ms")
            left.axvline(startup + 20, color="red", linestyle="--", linewidth=1, label="start-up + 20 ms")
            left.legend(loc="lower right", fontsize=8)
        left.set_xscale("log")
        left.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _pos: f"{value:g}"))
        left.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
            lambda value, _pos: f"{value:g}" if str(int(value))[0] in "25" else ""
        ))
        left.invert_yaxis()
    left.set_xlabel("reload latency, file written → first new response (ms, log scale)")
    left.set_title(f"Reload latency ({data['meta']['settings']['reloads']} edits per tool)")
    kinds = [("refused", "tab:red"), ("reset", "tab:orange"), ("timeout", "tab:purple"), ("error", "tab:grey")]
    offsets = [0] * len(rows)
    for kind, colour in kinds:
        counts = [row["during_reloads"][kind] for row in rows]
        right.barh(labels, counts, left=offsets, color=colour, label=kind)
        offsets = [a + b for a, b in zip(offsets, counts, strict=True)]
    for index, total in enumerate(offsets):
        right.text(total, index, f" {total}", va="center", fontsize=8)
    right.set_xlim(0, max([*offsets, 1]) * 1.15)
    right.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    right.invert_yaxis()
    right.set_yticks(range(len(labels)), labels=[""] * len(labels))
    right.set_xlabel("failed requests during the reloads (client loop)")
    right.set_title("Failed requests")
    right.legend(fontsize=8, loc="lower right")
    failed = [f"{row['label']}: {row['status']}" for row in data["tools"] if row["status"] != "ok"]
    if failed:
        fig.text(0.01, 0.01, "Not shown: " + "; ".join(failed), fontsize=7, color="dimgrey")
    fig.suptitle(f"{data['meta']['machine']['cpu']}, {data['meta']['machine']['usable_cores']} cores, "
                 f"{data['meta']['date']} ({data['meta']['mode']} run)", fontsize=9)
    fig.tight_layout(rect=(0, 0.03 if failed else 0, 1, 1))
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)
