"""Headless Chromium (Debian's ``chromium``) driven by Playwright with the system executable.

Never ``playwright install``: the browser is the distribution's. Every process the browser
started is ended by pid when the context manager exits, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from support import needs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-quic", "--disable-sync", "--disable-dev-shm-usage",
]


def _browser_processes(known: set[int]) -> dict[int, psutil.Process]:
    """Our descendants that belong to the browser (Playwright's driver and Chromium)."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.Process().children(recursive=True):
        if proc.pid in known:
            found[proc.pid] = proc
            continue
        with contextlib.suppress(psutil.Error):
            line = " ".join(proc.cmdline())
            if "chrom" in proc.name() or "playwright" in line or "chromium" in line:
                found[proc.pid] = proc
    return found


@contextlib.contextmanager
def chromium_page(profile: Path) -> Iterator[Any]:
    """A page in a fresh headless Chromium (``profile``: an empty directory of its own)."""
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None  # type: ignore[assignment]
    needs(sync_api, "the playwright package")
    needs(os.path.exists(CHROMIUM), f"{CHROMIUM} (apt-get install chromium)")
    seen: dict[int, psutil.Process] = {}
    try:
        with sync_api.sync_playwright() as playwright:
            seen.update(_browser_processes(set()))
            context = playwright.chromium.launch_persistent_context(
                str(profile), executable_path=CHROMIUM, headless=True, args=ARGS, viewport={"width": 1000, "height": 760},
            )
            try:
                seen.update(_browser_processes(set(seen)))
                page = context.new_page()
                page.set_default_timeout(30_000)
                seen.update(_browser_processes(set(seen)))
                yield page
            finally:
                seen.update(_browser_processes(set(seen)))
                with contextlib.suppress(Exception):
                    context.close()
    finally:
        for proc in seen.values():
            with contextlib.suppress(psutil.Error):
                if proc.is_running():
                    proc.kill()
        _gone, alive = psutil.wait_procs(list(seen.values()), timeout=5)
        assert not alive, f"browser processes left: {alive}"
