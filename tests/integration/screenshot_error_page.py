"""Take docs/_static/error-page.png: headless Chromium on a real app broken by a syntax error.

    python tests/integration/screenshot_error_page.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from chromium import chromium_page  # noqa: E402
from support import Reloadkit, try_get, wait_for, write_file  # noqa: E402

OUT = HERE.parents[1] / "docs" / "_static" / "error-page.png"
VIEW = '''"""The page's text."""

GREETING = "Hello"
TEXT = f"{GREETING}, world"
'''


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "myapp"
        (project / "static").mkdir(parents=True)
        (project / "static" / "style.css").write_text("h1 { color: #333; }\n")
        (project / "view.py").write_text(VIEW)
        argv = ["-b", "127.0.0.1:0", "--livereload", "--", sys.executable, str(HERE / "apps" / "webapp.py")]
        with Reloadkit(argv, cwd=project) as rk, chromium_page(Path(tmp) / "profile") as page:
            rk.wait_listening()
            wait_for(lambda: try_get(rk.url), 20, "the app")
            page.goto(rk.url)
            write_file(project / "view.py", VIEW.replace('f"{GREETING}, world"', 'f"{GREETING}, world"(\n'))
            page.wait_for_function("() => document.title.startsWith('reloadkit')")
            OUT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(OUT), full_page=True)
    print(OUT)


if __name__ == "__main__":
    main()
