"""The child's fd contract, checked from inside real children, and bad input at the door."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import Reloadkit, assert_all_gone, http_get, reloadkit_env, wait_for

import reloadkit.demo

pytestmark = pytest.mark.timeout(60)
APP = Path(__file__).parent / "apps" / "contract.py"


def _report(path: Path) -> dict[str, Any]:
    wait_for(path.exists, 20, f"the child's contract report {path}")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _run_contract(tmp_path: Path, binds: list[str], mode: str = "exit:0", **kwargs: Any) -> tuple[dict[str, Any], Reloadkit, int]:
    report = tmp_path / "report.json"
    args = [a for spec in binds for a in ("-b", spec)]
    with Reloadkit([*args, "--no-reload", "--", sys.executable, str(APP), str(report), mode], cwd=tmp_path, **kwargs) as rk:
        code = rk.wait_exit(30)
        data = _report(report)
    return data, rk, code


def _check_contract(data: dict[str, Any], names: list[str]) -> None:
    count = len(names)
    env = data["env"]
    assert env["LISTEN_FDS"] == str(count)
    assert env["LISTEN_PID"] == str(data["pid"])  # the exec'd command itself, not the supervisor
    assert env["LISTEN_FDNAMES"] == ":".join(names)
    assert env["LISTEN_FDS_FIRST_FD"] == "3"
    assert env["RELOADKIT_GENERATION"] == "0"
    # Only stdio and the sockets (plus the fd listdir itself used, which is the next free one).
    expected = [0, 1, 2, *range(3, 3 + count)]
    assert data["fds"][: len(expected)] == expected
    assert len(data["fds"]) <= len(expected) + 1
    for fd in range(3, 3 + count):
        assert data["inheritable"][str(fd)] is True  # no FD_CLOEXEC on the way in
    assert [s["fd"] for s in data["sockets"]] == list(range(3, 3 + count))
    assert all(s["listening"] and s["cloexec_after"] for s in data["sockets"])
    assert data["env_after"] == {}  # sockets() removed LISTEN_* and werkzeug's variables


def test_ipv4_port_zero_contract(tmp_path: Path) -> None:
    data, rk, code = _run_contract(tmp_path, ["127.0.0.1:0"])
    assert code == 0
    _check_contract(data, ["tcp"])
    sock = data["sockets"][0]
    assert sock["family"] == "AF_INET" and sock["type"] == "SOCK_STREAM"
    port = sock["address"][1]
    assert port != 0
    assert f"listening on http://127.0.0.1:{port} (fd 3)" in rk.output
    assert data["env"]["WERKZEUG_SERVER_FD"] == "3"
    assert data["env"]["WERKZEUG_RUN_MAIN"] == "true"


def test_ipv6_contract(tmp_path: Path) -> None:
    data, rk, _ = _run_contract(tmp_path, ["v6=[::1]:0"])
    _check_contract(data, ["v6"])
    assert data["sockets"][0]["family"] == "AF_INET6"
    assert data["sockets"][0]["address"][0] == "::1"
    assert "listening on http://[::1]:" in rk.output


def test_unix_and_tcp_together(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    data, rk, _ = _run_contract(tmp_path, [f"admin=unix:{path},mode=600", "127.0.0.1:0"])
    _check_contract(data, ["admin", "tcp"])
    assert data["sockets"][0]["family"] == "AF_UNIX"
    # The socket's own name is a hidden second name of the file at the path (a hand-over
    # links the next generation's socket over the path; the old name stays its own).
    address = Path(data["sockets"][0]["address"])
    assert address.parent == path.parent and address.name.startswith(".app.sock.rk"), address
    assert data["sockets"][1]["family"] == "AF_INET"
    assert data["env"]["WERKZEUG_SERVER_FD"] == "4"  # the first TCP socket
    assert f"listening on unix:{path} (fd 3)" in rk.output
    assert not path.exists() and not list(path.parent.glob(".app.sock.rk*"))  # removed when reloadkit exited


def test_exit_status_is_forwarded(tmp_path: Path) -> None:
    _, _, code = _run_contract(tmp_path, ["127.0.0.1:0"], mode="exit:7")
    assert code == 7


def test_no_bind_is_a_plain_supervisor(tmp_path: Path) -> None:
    data, _rk, code = _run_contract(tmp_path, [], mode="exit:0")
    assert code == 0
    assert "LISTEN_FDS" not in data["env"] and "LISTEN_PID" not in data["env"]
    assert "inherited sockets" in data["error"]
    assert data["fds"][:3] == [0, 1, 2] and len(data["fds"]) <= 4


def test_serves_on_held_socket_and_forwards_sigint(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    with Reloadkit(["-b", "127.0.0.1:0", "--no-reload", "--", sys.executable, str(APP), str(report)], cwd=tmp_path) as rk:
        rk.wait_listening()
        data = _report(report)
        status, body = http_get(rk.url)
        assert status == 200 and body == f"pid {data['pid']} gen 0"
        pids = rk.tree_pids()
        rk.signal(signal.SIGINT)
        assert rk.wait_exit() == 128 + signal.SIGINT  # the child died of the forwarded SIGINT
    assert_all_gone(pids)


def test_adopts_an_open_listening_fd(tmp_path: Path) -> None:
    outer = socket.socket()
    outer.bind(("127.0.0.1", 0))
    outer.listen()
    try:
        fd = outer.fileno()
        report = tmp_path / "report.json"
        with Reloadkit(["-b", f"fd://{fd}", "--no-reload", "--", sys.executable, str(APP), str(report), "exit:0"],
                       cwd=tmp_path, pass_fds=[fd]) as rk:
            assert rk.wait_exit() == 0
        data = _report(report)
        _check_contract(data, ["fd"])
        assert data["sockets"][0]["address"] == list(outer.getsockname())
    finally:
        outer.close()


def test_socket_activation_of_reloadkit_itself(tmp_path: Path) -> None:
    """Started like systemd would (sockets at fd 3, LISTEN_PID = reloadkit's pid), no --bind."""
    outer = socket.socket()
    outer.bind(("127.0.0.1", 0))
    outer.listen()
    report = tmp_path / "report.json"
    launcher = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); "
        "os.environ.update(LISTEN_FDS='1', LISTEN_FDNAMES='web', LISTEN_PID=str(os.getpid())); "
        "os.execv(sys.executable, [sys.executable, '-m', 'reloadkit', *sys.argv[2:]])"
    )
    try:
        argv = [sys.executable, "-c", launcher, str(outer.fileno()), "run", "--no-reload", "--",
                sys.executable, str(APP), str(report), "exit:0"]
        with Reloadkit([], argv=argv, cwd=tmp_path, pass_fds=[outer.fileno()]) as rk:
            assert rk.wait_exit() == 0
        data = _report(report)
        _check_contract(data, ["web"])
        assert data["sockets"][0]["address"] == list(outer.getsockname())
    finally:
        outer.close()


def test_demo_server_serves_a_request(tmp_path: Path) -> None:
    with Reloadkit(["-b", "127.0.0.1:0", "--no-reload", "--", sys.executable, "-m", "reloadkit.demo"], cwd=tmp_path) as rk:
        rk.wait_listening()
        body = wait_for(lambda: _get_body(rk.url), 20, "the demo server's answer")
        assert "Hello from reloadkit's demo" in body and "generation 0" in body
        # A newcomer is told which file to edit to see a reload, and that the file is the demo's own.
        assert f"edit the <code>GREETING</code> line of <code>{os.path.abspath(reloadkit.demo.__file__)}</code>" in body
        rk.wait_for_output(r"ready in \d+ ms")


def _get_body(url: str) -> str | None:
    try:
        return http_get(url, timeout=10)[1]
    except OSError:
        return None


def test_gunicorn_reads_listen_fds_without_flags(tmp_path: Path) -> None:
    (tmp_path / "wsgiapp.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'gunicorn on the held socket']\n"
    )
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    with Reloadkit(["-b", "127.0.0.1:0", "--no-reload", "--", gunicorn, "-w", "1", "wsgiapp:app"], cwd=tmp_path) as rk:
        rk.wait_listening()
        body = wait_for(lambda: _get_body(rk.url), 30, "gunicorn's answer")
        assert body == "gunicorn on the held socket"
        rk.wait_for_output(r"ready in \d+ ms")  # gunicorn sends READY=1 to NOTIFY_SOCKET
        pids = rk.tree_pids()
    assert_all_gone(pids)


# --- bad input: one line, exit status 2, no child, nothing left behind -------------------


def _bad(args: list[str], tmp_path: Path, pass_fds: tuple[int, ...] = ()) -> tuple[int, str]:
    marker = tmp_path / "child-ran"
    command = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    argv = [sys.executable, "-m", "reloadkit", "run", *args]
    if "--" not in args:
        argv += ["--", *command] if "NOCMD" not in args else []
    argv = [a for a in argv if a != "NOCMD"]
    result = subprocess.run(argv, cwd=tmp_path, env=reloadkit_env(), capture_output=True, text=True,
                            timeout=30, pass_fds=pass_fds)
    assert not marker.exists(), "a child was spawned despite bad input"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {result.stderr!r}"
    assert "Traceback" not in result.stderr
    return result.returncode, lines[0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("abc", "bad bind spec 'abc'"),
        ("host:", "missing port"),
        (":99999", "out of range"),
        ("[::1:80", "missing ']'"),
        ("fd://x", "descriptor number"),
        ("192.0.2.1:0", "address not available"),
        ("no-such-host.invalid:80", "cannot bind"),
        ("fd://99", "not open"),
        ("fd://0", "standard stream"),
    ],
)
def test_bad_bind_specs(spec: str, message: str, tmp_path: Path) -> None:
    code, line = _bad(["-b", spec], tmp_path)
    assert code == 2
    assert line.startswith("reloadkit: error: ") and message in line


def test_port_in_use(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        unix = tmp_path / "first.sock"
        code, line = _bad(["-b", f"unix:{unix}", "-b", f"127.0.0.1:{port}"], tmp_path)
    finally:
        taken.close()
    assert code == 2 and "address already in use" in line
    assert not unix.exists()  # what was bound before the failure is cleaned up


def test_fd_that_is_not_a_listening_socket(tmp_path: Path) -> None:
    plain = socket.socket()
    read_end, write_end = os.pipe()
    try:
        code, line = _bad(["-b", f"fd://{plain.fileno()}"], tmp_path, pass_fds=(plain.fileno(),))
        assert code == 2 and "not a listening socket" in line
        code, line = _bad(["-b", f"fd://{read_end}"], tmp_path, pass_fds=(read_end,))
        assert code == 2 and "not a socket" in line
    finally:
        plain.close()
        os.close(read_end)
        os.close(write_end)


def test_unix_path_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "regular"
    path.write_text("keep me")
    code, line = _bad(["-b", f"unix:{path}"], tmp_path)
    assert code == 2 and "not a socket" in line
    assert path.read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-b", "0", "--", "no-such-command-reloadkit"], "command not found: no-such-command-reloadkit"),
        (["-b", "0", "--", "./missing.sh"], "command not found: ./missing.sh"),
        (["-b", "0", "NOCMD"], "missing --"),
        (["-b", "0", "--"], "no command after --"),
        (["-w", "does-not-exist", "--", "true"], "watch path not found"),
        (["--bogus", "--", "true"], "unrecognized arguments"),
    ],
)
def test_bad_commands_and_options(args: list[str], message: str, tmp_path: Path) -> None:
    code, line = _bad(args, tmp_path)
    assert code == 2 and message in line


def test_installed_entry_points_exist(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "reloadkit", "--version"], env=reloadkit_env(),
                            capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("reloadkit ")
