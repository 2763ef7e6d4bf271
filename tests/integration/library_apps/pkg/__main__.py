"""``python -m pkg``: run_with_reloader from a package's __main__, a submodule imported lazily."""

from __future__ import annotations

import os
import sys
import threading

import reloadkit


def main() -> None:
    from pkg import mod

    print(
        f"CHILD gen={os.environ.get('RELOADKIT_GENERATION')} mod={mod.VALUE} spec={__spec__.name}"
        f" orig={sys.orig_argv[1:]}",
        flush=True,
    )
    reloadkit.notify_ready()
    threading.Event().wait()


reloadkit.run_with_reloader(main)
