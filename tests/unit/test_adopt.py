"""Bind adoption: addresses matched as the kernel matches them, the child's patched bind (in a
real Python process), and the supervisor's answers (real sockets, descriptors passed for real)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import reloadkit.child.adopt as adopt
from reloadkit.child.adopt import Address, conflicts, decode_request, encode_request, format_held, normalize, parse_held
from reloadkit.net.adoption import AdoptService, held_address, match
from reloadkit.net.binding import Listener
from reloadkit.net.handover import Handover
from reloadkit.supervisor.adopting import Adopter

pytestmark = pytest.mark.timeout(30)

V4, V6, UNIX = socket.AF_INET, socket.AF_INET6, socket.AF_UNIX
ADOPT_PY = Path(adopt.__file__)


@pytest.mark.parametrize(
    ("family", "given", "host"),
    [
        (V4, ("", 80), "0.0.0.0"),
        (V4, ("localhost", 80), "127.0.0.1"),
        (V6, ("", 80, 0, 0), "::"),
        (V6, ("::ffff:127.0.0.1", 80), "::ffff:127.0.0.1"),
        (V6, ("0:0::1", 80), "::1"),
    ],
)
def test_normalize_names_addresses_as_the_kernel_sees_them(family: int, given: tuple, host: str) -> None:
    address = normalize(family, given)
    assert address is not None and address.host == host and address.port == 80


def test_normalize_leaves_out_what_cannot_be_adopted(tmp_path: Path) -> None:
    assert normalize(UNIX, "\0abstract") is None
    assert normalize(UNIX, "") is None
    assert normalize(V4, ("no-such-host.invalid", 80)) is None
    assert normalize(V4, "not a tuple") is None
    assert normalize(UNIX, "rel.sock") == Address(UNIX, path=os.path.abspath("rel.sock"))


def _v4(host: str, port: int = 8000) -> Address:
    return Address(V4, host, port)


def _v6(host: str, port: int = 8000, v6only: bool = False) -> Address:
    return Address(V6, host, port, v6only=v6only)


@pytest.mark.parametrize(
    ("one", "other", "expected"),
    [
        (_v4("127.0.0.1"), _v4("127.0.0.1"), True),
        (_v4("127.0.0.1"), _v4("0.0.0.0"), True),
        (_v4("0.0.0.0"), _v4("10.1.2.3"), True),
        (_v4("127.0.0.1"), _v4("127.0.0.2"), False),
        (_v4("127.0.0.1"), _v4("127.0.0.1", 8001), False),
        (_v4("127.0.0.1", 0), _v4("127.0.0.1", 0), False),  # port 0 is never the same address
        (_v6("::"), _v4("127.0.0.1"), True),  # dual-stack wildcard
        (_v6("::", v6only=True), _v4("127.0.0.1"), False),
        (_v6("::ffff:127.0.0.1"), _v4("127.0.0.1"), True),  # IPv4-mapped
        (_v6("::ffff:127.0.0.1", v6only=True), _v4("127.0.0.1"), False),
        (_v6("::1"), _v6("::"), True),
        (_v6("::1"), _v6("::1"), True),
        (_v6("::1"), _v4("127.0.0.1"), False),
        (Address(UNIX, path="/tmp/a"), Address(UNIX, path="/tmp/a"), True),
        (Address(UNIX, path="/tmp/a"), Address(UNIX, path="/tmp/b"), False),
        (Address(UNIX, path="/tmp/a"), _v4("127.0.0.1"), False),
    ],
)
def test_conflicts_as_the_kernel_would(one: Address, other: Address, expected: bool) -> None:
    assert conflicts(one, other) is expected
    assert conflicts(other, one) is expected


def test_held_lines_and_requests_round_trip() -> None:
    entries = [(3, 11, _v4("127.0.0.1")), (4, 12, Address(UNIX, path="/tmp/with space.sock")), (5, 13, _v6("::1", 9))]
    assert parse_held(format_held(entries)) == entries
    assert parse_held("garbage\n3 x 2 80 127.0.0.1") == []
    for address in (_v4("127.0.0.1"), _v6("::", 80, v6only=True), Address(UNIX, path="/tmp/x y")):
        assert decode_request(encode_request(address)) == address
    assert decode_request(b"HELLO") is None


# --- the child's patched bind, in a real process -------------------------------------------------

_CHILD = textwrap.dedent("""
    import importlib.util, json, os, socket, sys
    spec = importlib.util.spec_from_file_location("_reloadkit_adopt", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.install()
    out = {}
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind(("0.0.0.0", int(sys.argv[2])))  # the kernel's rule: the wildcard meets 127.0.0.1
    sock.listen(1)
    out["inode"] = os.fstat(sock.fileno()).st_ino
    out["name"] = list(sock.getsockname())
    out["blocking"] = sock.getblocking() and os.get_blocking(sock.fileno())
    other = socket.socket()
    other.bind(("127.0.0.1", 0))  # port 0 binds as usual
    out["other"] = other.getsockname()[1] != int(sys.argv[2])
    print(json.dumps(out), flush=True)
    sock.setblocking(True)
    conn, _ = sock.accept()
    conn.sendall(b"adopted")
    conn.close()
""")


def test_a_bind_to_a_held_address_takes_the_held_socket(tmp_path: Path) -> None:
    import json

    held = socket.create_server(("127.0.0.1", 0), backlog=64)
    port = held.getsockname()[1]
    inode = os.fstat(held.fileno()).st_ino
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, RELOADKIT_BINDS_ASK="@nobody-listens",
               RELOADKIT_BINDS_HELD=format_held([(held.fileno(), inode, _v4("127.0.0.1", port))]))
    with held, subprocess.Popen([sys.executable, str(script), str(ADOPT_PY), str(port)], env=env,
                                pass_fds=[held.fileno()], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            result = json.loads(child.stdout.readline())
            assert result == {"inode": inode, "name": ["127.0.0.1", port], "blocking": False, "other": True}
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                assert client.recv(100) == b"adopted"
        finally:
            child.kill()


def test_without_the_variables_nothing_is_patched() -> None:
    before = socket.socket.bind
    assert adopt.install({}) is False
    assert adopt.install({"RELOADKIT_BINDS_ASK": "@x"}) is False  # nothing held, nothing to learn
    assert socket.socket.bind is before


# --- the supervisor's answers ------------------------------------------------------------------


class _Selector:
    def register(self, *args: object) -> None:
        pass

    def unregister(self, *args: object) -> None:
        pass


def _adopter(listeners: list[Listener], lines: list[str], owner: int | None = 1234) -> tuple[Adopter, Handover]:
    handover = Handover(listeners, _Selector(), lines.append, lines.append)  # type: ignore[arg-type]
    service = AdoptService()
    adopter = Adopter(service, listeners, handover, backlog=16, owner=lambda pid: owner,
                      on_learned=lambda succession: None, info=lines.append, debug=lines.append)
    return adopter, handover


def _ask(adopter: Adopter, address: Address) -> int | None:
    """A child's request, answered by the supervisor's side between send and receive."""
    with socket.socket(UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("")
        sock.settimeout(5)
        sock.sendto(encode_request(address), "\0" + adopter.service.address[1:])
        adopter.on_requests()
        data, fds, _flags, _addr = socket.recv_fds(sock, 512, 1)
    return fds[0] if data == b"OK" and fds else None


def test_a_learning_generation_gets_the_address_bound_and_held() -> None:
    lines: list[str] = []
    listeners: list[Listener] = []
    adopter, handover = _adopter(listeners, lines)
    try:
        assert adopter.learning()
        adopter.started(1234, learn=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        fd = _ask(adopter, _v4("127.0.0.1", port))
        assert fd is not None
        with socket.socket(fileno=fd) as given:
            assert given.getsockname() == ("127.0.0.1", port)
            assert given.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert [held_address(listener) for listener in listeners] == [_v4("127.0.0.1", port)]
        assert handover.held[1234] == [listeners[0].sock]
        assert f"holding 127.0.0.1:{port} (bound by the command)" in lines
        assert not adopter.learning()
        # the same address again (a second process of the generation): the same socket, no second line
        again = _ask(adopter, _v4("0.0.0.0", port))
        assert again is not None
        with socket.socket(fileno=again) as same:
            assert os.fstat(same.fileno()).st_ino == os.fstat(listeners[0].sock.fileno()).st_ino
        assert sum("holding" in line for line in lines) == 1
        # port 0, and a Unix socket of its own, are never learned
        assert _ask(adopter, _v4("127.0.0.1", 0)) is None
        assert _ask(adopter, Address(UNIX, path="/tmp/its-own.sock")) is None
    finally:
        handover.close()
        for listener in listeners:
            listener.close()
        adopter.service.close()


def test_only_a_learning_generation_learns_and_a_taken_port_is_refused() -> None:
    lines: list[str] = []
    listeners: list[Listener] = []
    adopter, handover = _adopter(listeners, lines)
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        adopter.started(1234, learn=False)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        assert _ask(adopter, _v4("127.0.0.1", free)) is None
        assert listeners == []
        adopter.started(1234, learn=True)
        assert _ask(adopter, _v4("127.0.0.1", port)) is None  # somebody else's: the child's bind fails by itself
        assert listeners == []
        assert any(f"cannot hold 127.0.0.1:{port}" in line and "in use" in line for line in lines), lines
    finally:
        taken.close()
        handover.close()
        adopter.service.close()


def test_a_process_outside_every_generation_is_refused() -> None:
    lines: list[str] = []
    held = socket.create_server(("127.0.0.1", 0))
    listeners = [Listener("tcp", held)]
    adopter, handover = _adopter(listeners, lines, owner=None)
    try:
        assert match(listeners, _v4("127.0.0.1", held.getsockname()[1])) == 0
        assert _ask(adopter, _v4("127.0.0.1", held.getsockname()[1])) is None
    finally:
        handover.close()
        held.close()
        adopter.service.close()
