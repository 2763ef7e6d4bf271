"""``reloadkit run``'s own options set from Python, for real: ``run_simple(..., warm=True,
poll=0.2, livereload=True, strict_order=True, env_files=[...])`` against RELOADKIT_* variables
that say the opposite (a keyword beats its variable).

tests/unit/test_options.py proves every option reaches the Config from every face; this
proves the supervisor then does what those options mean.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from support import Reloadkit, http_get, wait_for, write_file

pytestmark = pytest.mark.timeout(60)
APPS = Path(__file__).parent / "library_apps"


def test_warm_poll_livereload_strict_order_and_env_files_from_python(tmp_path: Path) -> None:
    shutil.copy(APPS / "options_app.py", tmp_path)
    write_file(tmp_path / "views.py", "VERSION = 'v1'\n")
    write_file(tmp_path / ".env", "GREETING=hello\n")
    env = {"PYTHONDONTWRITEBYTECODE": "1", "RELOADKIT_WARM": "0", "RELOADKIT_LIVERELOAD": "0"}
    with Reloadkit([], argv=[sys.executable, "options_app.py"], cwd=tmp_path, env=env) as rk:
        url = rk.wait_listening()[0]
        rk.wait_for_output(r"ready in \d+ ms")
        # poll=0.2: the poller, not inotify, watches the directory.
        assert re.search(rf"watching with poll: {re.escape(str(tmp_path))}", rk.output), rk.output
        # livereload=True beats RELOADKIT_LIVERELOAD=0: the channel runs and the child knows it.
        channel = rk.wait_for_output(r"live reload on (http://\S+)").group(1)
        address = urlsplit(channel)
        status, script = http_get(f"http://{address.netloc}", address.path)
        assert status == 200 and "EventSource" in script, script[:200]
        status, body = http_get(url)
        assert status == 200 and body.startswith("v1 "), body
        assert "greeting=hello" in body  # env_files
        assert f"livereload={address.netloc}" in body, body

        first = rk.child_pid()
        rk.wait_for_output(r"warm parent pid \d+ ready")  # it has imported what generation 0 did
        write_file(tmp_path / "views.py", "VERSION = 'v2'\n")
        # warm=True beats RELOADKIT_WARM=0: the new generation is forked from the warm parent.
        rk.wait_for_output(r"generation 1 forked warm from pid \d+")
        # strict_order=True: the old generation stopped before the new one started.
        rk.wait_for_output(r"restarting \(views\.py changed\): started pid \d+ \(generation 1\), stop took \d+ ms")
        wait_for(lambda: http_get(url)[1].startswith("v2 "), 20, "the new version")
        assert rk.child_pid() != first
        assert " while pid " not in rk.output
