"""A server that does not use the held socket: the lines reloadkit says, from real stderr texts
and this process's own listening sockets in /proc."""

from __future__ import annotations

import os
import socket
import sys

import pytest

from reloadkit.child.adopt import Address
from reloadkit.config.settings import Config
from reloadkit.net.bindcheck import BindCheck, bind_failure, listening_elsewhere, server_flag, tree_listeners
from reloadkit.supervisor.loop import rules_for

pytestmark = pytest.mark.timeout(30)

HELD = [Address(socket.AF_INET, "127.0.0.1", 8000)]
NODE = """node:events:497
      throw er; // Unhandled 'error' event
Error: listen EADDRINUSE: address already in use 127.0.0.1:8000
    at Server.setupListenHandle [as _listen2] (node:net:1872:16)""".splitlines()
PYTHON = ["OSError: [Errno 98] Address already in use"]
GO = ["2026/12/04 listen tcp 127.0.0.1:8000: bind: address already in use"]
ASYNCIO = ["OSError: [Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): address already in use"]


@pytest.mark.parametrize("stderr", [NODE, PYTHON, GO, ASYNCIO])
def test_a_failed_bind_of_a_held_address_is_one_line(stderr: list[str]) -> None:
    line = bind_failure(stderr, HELD, ["node", "server.js"])
    assert line is not None
    assert line.startswith("node server.js could not bind 127.0.0.1:8000, which reloadkit holds")
    assert "server.listen({fd: 3})" in line and "docs/servers.rst" in line


def test_another_port_in_use_or_another_error_is_not_ours() -> None:
    assert bind_failure(["Error: listen EADDRINUSE: address already in use 127.0.0.1:9999"], HELD, ["node"]) is None
    assert bind_failure(["Traceback ...", "NameError: name 'x' is not defined"], HELD, ["python"]) is None
    assert bind_failure(NODE, [], ["node"]) is None
    assert bind_failure(["error while attempting to bind on address ('::', 9999): address already in use"], HELD, ["x"]) is None


def test_the_flag_for_each_server() -> None:
    assert server_flag(["/venv/bin/uvicorn", "app:app"]) == "uvicorn --fd 3"
    assert server_flag(["hypercorn", "app:app"]) == "hypercorn --bind fd://3"
    assert "LISTEN_FDS" in server_flag(["./my-go-server"])


def test_exits_by_a_signal_or_with_success_are_not_looked_at() -> None:
    check = BindCheck(["node", "server.js"])
    assert check.exited(143, NODE, HELD) is None
    assert check.exited(0, NODE, HELD) is None
    assert check.exited(1, NODE, HELD) is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_this_process_listening_elsewhere_is_seen_in_proc() -> None:
    with socket.create_server(("127.0.0.1", 0)) as held, socket.create_server(("127.0.0.1", 0)) as other:
        mine = tree_listeners([os.getpid()])
        inode = os.fstat(other.fileno()).st_ino
        assert mine[inode] == Address(socket.AF_INET, "127.0.0.1", other.getsockname()[1])
        held_address = Address(socket.AF_INET, "127.0.0.1", held.getsockname()[1])
        elsewhere = listening_elsewhere([os.getpid()], [held_address], [os.fstat(held.fileno()).st_ino])
        assert Address(socket.AF_INET, "127.0.0.1", other.getsockname()[1]) in elsewhere
        assert held_address not in elsewhere


def test_where_nothing_is_held_generations_never_overlap() -> None:
    config = Config(command=("x",))
    assert rules_for(config, drain=False).strict_order is True
    assert rules_for(config, drain=True).strict_order is False
    assert rules_for(Config(command=("x",), overlap=True), drain=False).strict_order is False
