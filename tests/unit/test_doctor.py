"""``reloadkit doctor``: the facts come from the code that relies on them, one per line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reloadkit import __version__, doctor
from reloadkit.watch.inotify import INOTIFY_LIMITS

LINUX = sys.platform.startswith("linux")

#: A mountinfo with an NFS mount and a local one (see proc_pid_mountinfo(5)).
MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / {share} rw,relatime shared:20 - nfs4 server:/export rw,vers=4.2
"""


def test_the_facts_in_order() -> None:
    names = [name for name, _ in doctor.facts(["."])]
    expected = ["reloadkit", "python", "system", "watchdog"]
    expected += ["inotify", "inotify limits"] if LINUX else ["inotify"]
    expected += ["sock_diag", "subreaper", "pidfd", "watch .", "mounts polled when watched"]
    assert names == expected
    assert dict(doctor.facts(["."]))["reloadkit"].startswith(f"{__version__} (")


@pytest.mark.skipif(not LINUX, reason="inotify and /proc/sys are Linux's")
def test_inotify_limits_are_the_kernel_s() -> None:
    shown = dict(doctor.facts(["."]))["inotify limits"]
    for key in INOTIFY_LIMITS:
        value = Path(f"/proc/sys/fs/inotify/{key}").read_text().strip()
        assert f"{key}={value}" in shown


def test_a_root_on_nfs_is_said_to_be_polled(tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / "app").mkdir(parents=True)
    local = tmp_path / "local"
    local.mkdir()
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO.format(share=share.resolve()))
    found = dict(doctor.facts([str(share / "app"), str(local), str(tmp_path / "missing")], mountinfo=str(mountinfo)))
    assert found[f"watch {share / 'app'}"] == "polled (NFS)"
    assert found[f"watch {local}"] == "events (ext4 at /)"
    assert found[f"watch {tmp_path / 'missing'}"] == "not found"
    assert found["mounts polled when watched"] == f"{share.resolve()} (NFS)"


def test_an_unreadable_mount_table_polls_nothing(tmp_path: Path) -> None:
    found = dict(doctor.facts(["."], mountinfo=str(tmp_path / "absent")))
    assert found["mounts"].startswith("unknown (")


def test_options_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor.main(["--bogus"]) == 2
    err = capsys.readouterr().err
    assert err == "reloadkit: error: doctor takes paths, not options: --bogus\n"
