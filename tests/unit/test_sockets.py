"""The bind-spec grammar and the child's side of the contract, without processes."""

from __future__ import annotations

import importlib
import os
import socket

import pytest

from reloadkit.child.sockets import sockets_by_name
from reloadkit.errors import BindError, BindSpecError, NoSocketsError
from reloadkit.net.binding import (
    BindSpec,
    Listener,
    contract_environment,
    open_listeners,
    parse_bind,
    parse_binds,
)

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("spec", "kind", "host", "port"),
    [
        ("8000", "tcp", "127.0.0.1", 8000),
        ("0", "tcp", "127.0.0.1", 0),
        (":8000", "tcp", "127.0.0.1", 8000),
        ("127.0.0.1:80", "tcp", "127.0.0.1", 80),
        ("0.0.0.0:65535", "tcp", "0.0.0.0", 65535),
        ("localhost:8080", "tcp", "localhost", 8080),
        ("[::1]:8000", "tcp", "::1", 8000),
        ("[::]:0", "tcp", "::", 0),
        ("web=127.0.0.1:5000", "tcp", "127.0.0.1", 5000),
    ],
)
def test_tcp_specs(spec: str, kind: str, host: str, port: int) -> None:
    parsed = parse_bind(spec)
    assert (parsed.kind, parsed.host, parsed.port) == (kind, host, port)


def test_unix_spec_with_mode_and_name(tmp_path: os.PathLike[str]) -> None:
    parsed = parse_bind(f"api=unix:{tmp_path}/a.sock,mode=660")
    assert parsed.kind == "unix"
    assert parsed.path == f"{tmp_path}/a.sock"
    assert parsed.mode == 0o660
    assert parsed.name == "api"


def test_unix_relative_path_is_made_absolute() -> None:
    assert parse_bind("unix:x.sock").path == os.path.abspath("x.sock")


def test_fd_spec() -> None:
    assert parse_bind("fd://7") == BindSpec(text="fd://7", name="", kind="fd", fd=7)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("abc", "expected PORT"),
        ("host:", "missing port"),
        (":99999", "out of range"),
        ("[::1:80", "missing ']'"),
        ("[::1]80", "expected ':PORT'"),
        ("[]:80", "empty IPv6"),
        ("::1:80", "brackets"),
        ("fd://x", "descriptor number"),
        ("fd://", "descriptor number"),
        ("host:http", "not a number"),
        ("", "empty address"),
        ("web=", "empty address"),
        ("unix:", "missing socket path"),
        ("unix:/tmp/a.sock,mode=999", "mode=OCTAL"),
        ("unix:/tmp/a.sock,owner=me", "mode=OCTAL"),
        ("unix:/" + "x" * 200, "longer than"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(BindSpecError, match="bad bind spec") as info:
        parse_bind(spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_default_names_are_unique_and_ordered() -> None:
    names = [spec.name for spec in parse_binds(["8000", "tcp=8001", "unix:/tmp/x.sock", "[::1]:0", "fd://9"])]
    assert names == ["tcp2", "tcp", "unix", "tcp3", "fd"]


def test_duplicate_explicit_names_are_refused() -> None:
    with pytest.raises(BindSpecError, match="unique"):
        parse_binds(["a=8000", "a=8001"])


def _listener(family: socket.AddressFamily, name: str) -> Listener:
    return Listener(name, socket.socket(family, socket.SOCK_STREAM))


def test_contract_environment_names_and_werkzeug_fd() -> None:
    unix = _listener(socket.AF_UNIX, "admin")
    tcp = _listener(socket.AF_INET, "web")
    try:
        env = contract_environment([unix, tcp])
    finally:
        unix.sock.close()
        tcp.sock.close()
    assert env == {
        "LISTEN_FDS": "2",
        "LISTEN_FDNAMES": "admin:web",
        "LISTEN_FDS_FIRST_FD": "3",
        "WERKZEUG_SERVER_FD": "4",
        "WERKZEUG_RUN_MAIN": "true",
    }


def test_no_listeners_no_contract() -> None:
    assert contract_environment([]) == {}


def test_child_side_refuses_missing_and_foreign_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("reloadkit.child.sockets")

    monkeypatch.setattr(module, "_inherited", None)
    with pytest.raises(NoSocketsError, match="LISTEN_FDS is not set"):
        sockets_by_name({})
    with pytest.raises(NoSocketsError, match="not this one"):
        sockets_by_name({"LISTEN_FDS": "1", "LISTEN_PID": "1"})


def test_child_side_takes_listening_sockets_and_clears_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("reloadkit.child.sockets")

    monkeypatch.setattr(module, "_inherited", None)
    monkeypatch.setattr(module, "FIRST_FD", 3)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    env = {
        "LISTEN_FDS": "1",
        "LISTEN_PID": str(os.getpid()),
        "LISTEN_FDNAMES": "web",
        "LISTEN_FDS_FIRST_FD": str(server.fileno()),
        "WERKZEUG_SERVER_FD": str(server.fileno()),
        "OTHER": "kept",
    }
    found = sockets_by_name(env)
    try:
        assert list(found) == ["web"]
        assert found["web"].getsockname() == server.getsockname()
        assert found["web"].get_inheritable() is False
        assert env == {"OTHER": "kept"}
        assert sockets_by_name(env) == found  # later calls give the same objects
    finally:
        monkeypatch.setattr(module, "_inherited", None)
        found["web"].detach()
        server.close()


def test_child_side_refuses_a_socket_that_does_not_listen(monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("reloadkit.child.sockets")

    monkeypatch.setattr(module, "_inherited", None)
    plain = socket.socket()
    try:
        env = {"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid()), "LISTEN_FDS_FIRST_FD": str(plain.fileno())}
        with pytest.raises(NoSocketsError, match="not a listening socket"):
            sockets_by_name(env)
    finally:
        plain.close()


def test_port_in_use_is_one_line(tmp_path: os.PathLike[str]) -> None:
    with open_listeners(parse_binds(["127.0.0.1:0"])) as first:
        port = first[0].sock.getsockname()[1]
        with pytest.raises(BindError, match=f"cannot bind 127.0.0.1:{port}: address already in use"):
            with open_listeners(parse_binds(["127.0.0.1:0", f"127.0.0.1:{port}"])):
                pass


def test_unix_socket_lifecycle(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "s.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # a stale file: nobody listens
    with open_listeners(parse_binds([f"unix:{path},mode=600"])) as listeners:
        assert os.stat(path).st_mode & 0o777 == 0o600
        with pytest.raises(BindError, match="another process is listening"):
            with open_listeners(parse_binds([f"unix:{path}"])):
                pass
        assert listeners[0].sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    assert not os.path.exists(path)


def test_unix_path_that_is_a_regular_file(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "file")
    with open(path, "w") as handle:
        handle.write("data")
    with pytest.raises(BindError, match="not a socket"):
        with open_listeners(parse_binds([f"unix:{path}"])):
            pass
    assert os.path.exists(path)
