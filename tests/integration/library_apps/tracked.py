"""run_with_reloader around a main() that imports a local module lazily (only the child does).

Prints one line per generation once its imports are done, then says READY=1: the supervisor
reads datagrams in order, so by the "ready" line it has seen every file this child reported.
"""

from __future__ import annotations

import os
import sys
import threading

import helper

import reloadkit


def main() -> None:
    import lazy

    generation = os.environ.get("RELOADKIT_GENERATION")
    print(
        f"CHILD gen={generation} helper={helper.VALUE} lazy={lazy.VALUE} child={reloadkit.is_child()}"
        f" xoptions={sorted(sys._xoptions)}",
        flush=True,
    )
    reloadkit.notify_ready()
    if os.environ.get("TRIGGER_RELOAD_IN_GENERATION") == generation:
        reloadkit.trigger_reload()
    threading.Event().wait()


if __name__ == "__main__":
    print(f"PARENT is_child={reloadkit.is_child()}", flush=True)
    reloadkit.run_with_reloader(main, verbosity=1)
