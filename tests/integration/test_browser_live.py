"""In a real browser (headless Chromium): pages follow the code, the error page comes and goes
by itself, stylesheets are swapped in place. The app is tests/integration/apps/webapp.py
behind reloadkit's WSGI middleware."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from chromium import chromium_page
from support import WEBAPP, Reloadkit, try_get, wait_for, webapp_project, write_file

pytestmark = pytest.mark.timeout(120)
TEXT_IS = "(t) => document.getElementById('text') !== null && document.getElementById('text').textContent === t"


def _start(project: Path, *app: str) -> Reloadkit:
    return Reloadkit(["-v", "-b", "127.0.0.1:0", "--livereload", "--", sys.executable, str(WEBAPP), *app], cwd=project)


LIVE = "() => window.__reloadkit === 'live'"


def _open(page: Any, rk: Reloadkit, text: str) -> None:
    """The page, shown and listening: an edit made before its event stream answered would
    be an event the page never had a chance to see."""
    wait_for(lambda: f">{text}<" in (try_get(rk.url) or ""), 20, f"the app to serve {text!r}")
    page.goto(rk.url)
    page.wait_for_function(TEXT_IS, arg=text)
    page.wait_for_function(LIVE)


def _requests(project: Path, generation: str) -> list[tuple[float, str]]:
    """(time, what) for one generation: '/ ready', '/ early', 'READY', ..."""
    rows = []
    for line in (project / "requests.txt").read_text().splitlines():
        stamp, gen, what = line.split(" ", 2)
        if gen == generation:
            rows.append((float(stamp), what))
    return rows


def test_an_edit_reloads_the_page_once_the_new_generation_is_ready(tmp_path: Path) -> None:
    """The new generation takes 1.5 s before it accepts (which is its readiness: reloadkit's
    probe is taken then): the page must not reload at the restart, only after that."""
    project = webapp_project(tmp_path / "project")
    with _start(project, "--start-delay", "1.5") as rk, chromium_page(tmp_path / "profile") as page:
        rk.wait_listening()
        rk.wait_for_output(r"ready in \d+ ms")
        _open(page, rk, "one")
        page.evaluate("window.before = 1")
        write_file(project / "view.py", "TEXT = 'two'\n")
        page.wait_for_function(TEXT_IS, arg="two")  # no action of ours: the page reloaded itself
        assert page.evaluate("window.before") is None
        assert page.inner_text("#generation") == "1"
        rk.wait_for_output(r"ready in \d+ ms", count=2)
        serving = next(stamp for stamp, what in _requests(project, "1") if what == "SERVING")
        navigation = page.evaluate("performance.timeOrigin") / 1000  # when this page's load began
        assert navigation >= serving, (navigation, serving)  # not at the restart, 1.5 s earlier


def test_a_syntax_error_turns_the_page_into_the_error_page_and_the_fix_turns_it_back(tmp_path: Path) -> None:
    project = webapp_project(tmp_path / "project")
    with _start(project) as rk, chromium_page(tmp_path / "profile") as page:
        rk.wait_listening()
        _open(page, rk, "one")
        write_file(project / "view.py", "TEXT = (\n")
        page.wait_for_function("() => document.title.startsWith('reloadkit')")
        stderr = page.inner_text("#stderr")
        assert "SyntaxError" in stderr and "TEXT = (" in stderr
        assert "view.py" in page.inner_text("body")
        write_file(project / "view.py", "TEXT = 'fixed'\n")
        page.wait_for_function(TEXT_IS, arg="fixed")
        assert page.inner_text("#generation") == "2"


def test_a_css_edit_swaps_the_stylesheet_without_a_reload_or_a_restart(tmp_path: Path) -> None:
    project = webapp_project(tmp_path / "project")
    with _start(project) as rk, chromium_page(tmp_path / "profile") as page:
        rk.wait_listening()
        _open(page, rk, "one")
        color = "() => getComputedStyle(document.querySelector('h1')).color"
        assert page.evaluate(color) == "rgb(255, 0, 0)"
        pid = page.inner_text("#pid")
        page.evaluate("window.kept = 42")
        write_file(project / "static" / "style.css", "h1 { color: rgb(0, 0, 255); }\n")
        page.wait_for_function(f"() => ({color})() === 'rgb(0, 0, 255)'")
        assert page.evaluate("window.kept") == 42  # the same page: no reload
        assert page.inner_text("#pid") == pid and rk.generations() == 1  # the same server
        # Another static file reloads the page, still without a restart.
        write_file(project / "static" / "app.js", "window.fromScript = 1;\n")
        page.wait_for_function("() => window.kept === undefined && document.getElementById('pid') !== null")
        assert page.inner_text("#pid") == pid and rk.generations() == 1
        assert "restarting" not in rk.output


def test_a_page_with_the_plain_script_tag_reloads_once_per_new_generation(tmp_path: Path) -> None:
    """No middleware, no data-token: the page takes the first "ready" as its own (no reload
    loop), and reloads when the next generation is ready."""
    project = webapp_project(tmp_path / "project")
    with _start(project) as rk, chromium_page(tmp_path / "profile") as page:
        rk.wait_listening()
        wait_for(lambda: ">one<" in (try_get(rk.url) or ""), 20, "the app to serve")
        page.goto(rk.url + "/plain")
        page.wait_for_function(TEXT_IS, arg="one")
        page.wait_for_function(LIVE)  # the plain tag has taken generation 0's "ready" as its own
        write_file(project / "view.py", "TEXT = 'two'\n")
        page.wait_for_function(TEXT_IS, arg="two")
        plain = [what for _stamp, what in _requests(project, "0") + _requests(project, "1") if what == "/plain"]
        assert len(plain) == 2, plain  # the first load and one reload
