"""A plain script that knows nothing of reloadkit, for ``reloadkit run --imports``."""

from __future__ import annotations

import os
import threading

import helper

print(f"PLAIN gen={os.environ.get('RELOADKIT_GENERATION')} helper={helper.VALUE}", flush=True)
threading.Event().wait()
