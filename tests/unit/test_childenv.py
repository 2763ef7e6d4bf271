"""Pure helpers of the supervisor: the child's environment and stale bytecode."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from reloadkit.net.binding import Listener
from reloadkit.proc.childenv import HOOK_DIR, child_environment, drop_stale_bytecode

pytestmark = pytest.mark.timeout(30)


def test_child_environment_replaces_stale_contract_and_adds_ours() -> None:
    base = {"PATH": "/bin", "LISTEN_FDS": "9", "LISTEN_PID": "1", "NOTIFY_SOCKET": "/run/systemd/notify",
            "RELOADKIT_PID": "5", "WERKZEUG_SERVER_FD": "12", "PYTHONPATH": "/app"}
    with socket.socket() as sock:
        env = child_environment(base, [Listener("web", sock)], notify_address="@rk", generation=4,
                                cookie="c00k1e", changed=["/p/b.py", "/p/a.py"], imports=True)
    assert env["PATH"] == "/bin"
    assert env["LISTEN_FDS"] == "1" and env["LISTEN_FDNAMES"] == "web"
    assert "LISTEN_PID" not in env and "RELOADKIT_PID" not in env  # set after fork
    assert env["NOTIFY_SOCKET"] == "@rk"
    assert env["WERKZEUG_SERVER_FD"] == "3"
    assert env["RELOADKIT_GENERATION"] == "4"
    assert env["RELOADKIT_TREE"] == "c00k1e"
    assert env["RELOADKIT_CHANGED"] == "/p/a.py:/p/b.py"
    assert env["PYTHONPATH"] == f"{HOOK_DIR}:/app"


def test_child_environment_without_sockets_has_no_contract() -> None:
    env = child_environment({"LISTEN_FDS": "2"}, [], notify_address="@rk", generation=0, cookie="c")
    assert not any(key.startswith(("LISTEN_", "WERKZEUG_")) for key in env)
    assert "RELOADKIT_CHANGED" not in env and "RELOADKIT_IMPORTS" not in env


def test_drop_stale_bytecode(tmp_path: Path) -> None:
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    for name in ("app.cpython-311.pyc", "app.cpython-312.opt-1.pyc", "application.cpython-311.pyc", "other.cpython-311.pyc"):
        (cache / name).write_bytes(b"")
    assert drop_stale_bytecode([str(tmp_path / "app.py"), str(tmp_path / "config.toml"), "/nowhere/x.py"]) == 2
    assert sorted(p.name for p in cache.iterdir()) == ["application.cpython-311.pyc", "other.cpython-311.pyc"]
