"""The real-app results: markdown and reST tables, the target check, the chart."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from _report import markdown_table, rst_table

Row = dict[str, Any]

#: issue 14's warm targets: median reload ≤ this fraction of the framework's own reloader
WARM_RATIO = {"fastapi": 1 / 3, "django": 1 / 4, "flask": 1 / 3}
#: issue 13's reading of "≤ cold start + 60 ms" on the apps it measured
COLD_RATIO_HINT = {"fastapi": 0.85, "django": 0.5}


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _median(row: Row) -> float | None:
    return (row.get("reload") or {}).get("median")


def _framework(app: dict[str, Any]) -> Row | None:
    return next((row for row in app["tools"] if row["key"] == "framework" and _median(row) is not None), None)


def _failed(row: Row) -> str:
    d = row.get("during_reloads")
    if not d:
        return "-"
    if not d["failed"]:
        return f"0 of {d['requests']}"
    parts = f"{d['refused']}/{d['reset']}/{d['timeout']}" + (f" +{d['error']} other" if d["error"] else "")
    return f"**{d['failed']}** of {d['requests']} ({parts})"


def _broken(row: Row) -> str:
    b = row.get("broken")
    if not b:
        return "-"
    if b["requests"] and b["old_version_served"] == b["requests"]:
        text = f"yes, {b['requests']} of {b['requests']}"
    else:
        text = f"no: {b['old_version_served']} of {b['requests']} answered"
    return text + f"; fix served in {_num(b['fixed_served_ms'])} ms"


def _left(row: Row) -> str:
    exit_ = (row.get("shutdown") or {}).get("left_alive")
    return f"{_num(row.get('left_after_reloads'))} / {_num(exit_)}"


def app_cells(app: dict[str, Any], reloads: int) -> tuple[list[str], list[list[str]]]:
    header = [
        "tool", "cold start (ms)", "reload median / max (ms)", f"÷ {app['framework_label']}",
        "failed requests (refused/reset/timeout)", f"app starts for {reloads} edits",
        "syntax error saved: old version still answers", "Ctrl+C → all gone (ms)", "processes left (reloads / exit)",
    ]
    base = _framework(app)
    body = []
    for row in app["tools"]:
        if row["status"] != "ok":
            body.append([row["label"], row["status"].replace("|", "/")] + [""] * (len(header) - 2))
            continue
        r = row.get("reload") or {}
        median = r.get("median")
        ratio = "-" if median is None or base is None else f"{median / _median(base):.2f}"
        shutdown = row.get("shutdown") or {}
        body.append([
            row["label"], _num(row.get("start_ms")),
            f"{_num(median)} / {_num(r.get('max'))}" + (f" ({r['lost']} lost)" if r.get("lost") else "") if r else "-",
            ratio, _failed(row), _num(r.get("app_starts")), _broken(row),
            "timeout" if shutdown and shutdown.get("ms") is None else _num(shutdown.get("ms")), _left(row),
        ])
    return header, body


def _alone(app: dict[str, Any]) -> float | None:
    values = [(row.get("app_alone_ms") or {}).get("median") for row in app["tools"]]
    values = [value for value in values if value is not None]
    return sorted(values)[len(values) // 2] if values else None


def app_intro(app: dict[str, Any]) -> str:
    floor = app.get("floor") or {}
    return (
        f"Server: {app['server']}. The app alone (that server binding its port, no reloader) starts in "
        f"{_num(_alone(app))} ms (median over the tools' runs; each row's own is in the JSON). Import floor: "
        f"the project's own modules take {_num(floor.get('own_self_ms'))} ms of self time (`python -X importtime`); "
        f"its whole import and set-up takes {_num(floor.get('warm_setup_ms'))} ms in a process that had already "
        f"imported the {_num(floor.get('outside_modules'))} outside modules it uses."
    )


def targets(app: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    found: list[tuple[str, bool | None, str]] = []
    base = _framework(app)
    floor = (app.get("floor") or {}).get("warm_setup_ms")
    warm_rows = [row for row in app["tools"] if "warm" in row["key"]]
    for row in app["tools"]:
        if not row["key"].startswith("reloadkit") or row["status"] != "ok":
            continue
        label, median = row["label"], _median(row)
        near = (row.get("app_alone_ms") or {}).get("median")
        if median is not None and near is not None:
            found.append((f"#13 {label}: median reload ≤ app cold start + 60 ms", median <= near + 60,
                          f"{median:.0f} ms vs {near:.0f} + 60 = {near + 60:.0f} ms"))
        if median is not None and base is not None:
            ratio = median / _median(base)
            hint = COLD_RATIO_HINT.get(app["key"])
            text = f"{median:.0f} ms ÷ {_median(base):.0f} ms = {ratio:.2f}"
            if "warm" in row["key"]:
                limit = WARM_RATIO[app["key"]]
                found.append((f"#14 {label}: median reload ≤ {limit:.2f} x {app['framework_label']}", ratio <= limit,
                              text))
            elif hint:
                found.append((f"#13 {label}: ≈ ≤ {hint} x {app['framework_label']} (the issue's reading)",
                              ratio <= hint, text))
        if "warm" in row["key"] and median is not None and floor is not None:
            found.append((f"#14 {label}: median reload ≤ import floor + 40 ms", median <= floor + 40,
                          f"{median:.0f} ms vs {floor:.0f} + 40 = {floor + 40:.0f} ms"))
        d = row.get("during_reloads")
        if d:
            found.append((f"{label}: 0 failed requests", d["failed"] == 0, _failed(row)))
        shutdown = row.get("shutdown") or {}
        if shutdown:
            found.append((f"{label}: 0 processes left", row.get("left_after_reloads") == 0
                          and shutdown.get("left_alive") == 0, _left(row) + " (reloads / exit)"))
        if "overlap" in row["key"] and row.get("broken"):
            b = row["broken"]
            found.append((f"#13 {label}: a broken new version keeps the old one serving",
                          b["failed"] == 0 and b["old_version_served"] == b["requests"], _broken(row)))
    if not warm_rows:
        found.append(("#14 warm mode", None, "this checkout's reloadkit has no --warm"))
    return found


def _meta_lines(data: dict[str, Any]) -> list[str]:
    meta = data["meta"]
    m = meta["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    return [
        f"Command: `{meta['command']}` ({meta['mode']} run, {meta['date']}, {meta.get('duration_s', 0):.0f} s)",
        "",
        f"Machine: {m['cpu']}, {m['usable_cores']} of {m['cores']} cores usable, {m['memory_gib']} GiB, "
        f"{m['kernel']}, {m['os']}, {m['python']}; load average (1/5/15 min) at start {m['load_average_at_start']}, "
        f"at end {m.get('load_average_at_end', '?')} (a shared machine: other developers' tests ran beside it;"
        " each row's load average at its end is in the JSON).",
        "",
        f"Versions: {versions}.",
        *[line for note in meta.get("notes", []) for line in ("", note)],
    ]


def markdown(data: dict[str, Any]) -> str:
    reloads = data["meta"]["settings"]["reloads"]
    out = [f"## Real apps: reloaders side by side ({data['meta']['mode']} run, {data['meta']['date']})", "",
           *_meta_lines(data)]
    for app in data["apps"]:
        out += ["", f"### {app['label']}", "", app_intro(app), "", markdown_table(*app_cells(app, reloads)), ""]
        for row in app["tools"]:
            memory = row.get("memory")
            if memory:
                out.append(f"- {row['label']}: RSS of the supervisor and its guardian {_num(memory['supervisor_mb'], 1)}"
                           f" MB, of the warm parent {_num(memory['warm_parent_mb'], 1)} MB")
            r = row.get("reload") or {}
            parts = r.get("parts")
            if parts and parts["to_spawn"]["median"] is not None:
                out.append(f"- {row['label']}, one reload taken apart (medians, max in brackets): save → new child"
                           f" started {_num(parts['to_spawn']['median'])} ms ({_num(parts['to_spawn']['max'])}),"
                           f" → its first response {_num(parts['spawn_to_response']['median'])} ms"
                           f" ({_num(parts['spawn_to_response']['max'])})")
            if "reloadkit_child_ready_ms_median" in r:
                stop = (f"; old child stopped in {_num(r.get('reloadkit_stop_ms_median'))} ms"
                        f" ({_num(r.get('reloadkit_stop_ms_max'))})" if "reloadkit_stop_ms_median" in r else "")
                out.append(f"- {row['label']}, its log: new child ready {_num(r['reloadkit_child_ready_ms_median'])}"
                           f" ms after its start ({_num(r['reloadkit_child_ready_ms_max'])} max){stop}")
        out += ["", "Targets:", ""]
        for name, met, measured in targets(app):
            mark = {True: "met", False: "**MISSED**", None: "not measured"}[met]
            out.append(f"- {name}: {mark} ({measured})")
        notes = [f"- {row['label']}: {error}" for row in app["tools"] for error in row.get("errors", [])]
        if notes:
            out += ["", "Errors during the run:", "", *notes]
    out += ["", "Setups:", ""]
    for app in data["apps"]:
        for row in app["tools"]:
            out.append(f"- {app['key']}, {row['label']}: `{row['setup']}`")
    return "\n".join(out) + "\n"


def rst(data: dict[str, Any], image: str | None = None) -> str:
    """The tables as reST, for docs/benchmarks.rst to include (which places the chart itself)."""
    meta = data["meta"]
    reloads = meta["settings"]["reloads"]
    m = meta["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in meta["versions"].items())
    out = [
        f"``{meta['command']}`` ({meta['mode']} run, {meta['date']}, {meta.get('duration_s', 0):.0f} s) on {m['cpu']},"
        f" {m['usable_cores']} cores, {m['memory_gib']} GiB, {m['kernel']}, {m['python']};"
        f" load average {m['load_average_at_start']} at start, {m.get('load_average_at_end', '?')} at end"
        " (a shared machine). Versions: " + versions + ".",
        *[line for note in meta.get("notes", []) for line in ("", note.replace("`", "``"))],
    ]
    for app in data["apps"]:
        title = app["label"]
        out += ["", title, "^" * len(title), "", app_intro(app).replace("`", "``"), "",
                rst_table(*app_cells(app, reloads)).replace("**", ""), ""]
        checks = targets(app)
        if checks:
            out.append("Targets:")
            out.append("")
            for name, met, measured in checks:
                mark = {True: "met", False: "**missed**", None: "not measured"}[met]
                out.append(f"* {name}: {mark} ({measured.replace('**', '')})")
    if image:
        out += ["", f".. image:: {image}", "   :alt: reload latency per tool on each real app"]
    return "\n".join([*out, ""])


def chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apps = [app for app in data["apps"] if any(row.get("reload") for row in app["tools"])]
    fig, axes = plt.subplots(max(1, len(apps)), 1, figsize=(11, 2.2 + 0.45 * sum(len(a["tools"]) for a in apps)),
                             squeeze=False)
    rng = random.Random(0)
    for axis, app in zip(axes[:, 0], apps, strict=False):
        rows = [row for row in app["tools"] if row.get("reload") and _median(row) is not None]
        series = [[v for v in row["reload"]["latencies_ms"] if v is not None] for row in rows]
        labels = [f"{row['label']} ({(row.get('during_reloads') or {}).get('failed', '?')} failed)" for row in rows]
        axis.boxplot(series, orientation="horizontal", tick_labels=labels, showfliers=False, widths=0.6)
        for index, values in enumerate(series, start=1):
            axis.scatter(values, [index + rng.uniform(-0.18, 0.18) for _ in values], s=10, alpha=0.6, zorder=3)
        alone = _alone(app)
        if alone:
            axis.axvline(alone, color="grey", linestyle=":", label=f"app alone starts in {alone:.0f} ms")
        floor = (app.get("floor") or {}).get("warm_setup_ms")
        if floor:
            axis.axvline(floor, color="green", linestyle="--", linewidth=1,
                         label=f"import floor (warm import + set-up) {floor:.0f} ms")
        axis.set_xlim(left=0)
        axis.invert_yaxis()
        axis.legend(loc="lower right", fontsize=7)
        axis.set_title(app["label"], fontsize=9)
        axis.set_xlabel("file saved → first response from the new code (ms)", fontsize=8)
        axis.tick_params(labelsize=8)
    fig.suptitle(f"{data['meta']['machine']['cpu']}, {data['meta']['machine']['usable_cores']} cores, "
                 f"{data['meta']['date']} ({data['meta']['mode']} run)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)
