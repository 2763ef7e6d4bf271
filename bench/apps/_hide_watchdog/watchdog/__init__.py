"""Put on PYTHONPATH to hide the installed watchdog: werkzeug's reloader then uses its stat loop.

That is what ``flask run --debug`` does for everyone who has not installed watchdog (Flask does
not depend on it); reloadkit depends on watchdog, so the benchmark's venv always has it.
"""

raise ImportError("watchdog is hidden by the benchmark (bench/apps/_hide_watchdog)")
