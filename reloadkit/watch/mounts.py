"""Which watched roots lie on a mount that delivers no inotify events, and so must be polled.

inotify reports what this kernel does to a file. On a network or host-share file system the
edits usually happen elsewhere — on the file server, on the Windows or macOS side of WSL, a
VM or Docker Desktop — and no event is ever generated here: the watcher sits silent while the
user saves. Those mounts are recognised by their type in ``/proc/self/mountinfo``.

Pure functions over the text of mountinfo (see ``proc_pid_mountinfo(5)``); the path of the file
can be injected, so the decision is testable with real samples.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["MOUNTINFO", "Mount", "mount_of", "no_events_reason", "parse_mountinfo", "polled_roots"]

MOUNTINFO = "/proc/self/mountinfo"

#: File system types whose remote or host-side changes never reach inotify, with what they are.
_NO_EVENTS: dict[str, str] = {
    "9p": "9p, a VM's host share",
    "virtiofs": "virtiofs, a VM's or Docker Desktop's host share",
    "fakeowner": "Docker Desktop's host share",
    "nfs": "NFS",
    "nfs4": "NFS",
    "cifs": "SMB/CIFS",
    "smb3": "SMB/CIFS",
    "smbfs": "SMB/CIFS",
    "vboxsf": "a VirtualBox shared folder",
    "vmhgfs": "a VMware shared folder",
    "prl_fs": "a Parallels shared folder",
    "drvfs": "WSL's drvfs",
    "afs": "AFS",
    "ceph": "CephFS",
    "glusterfs": "GlusterFS",
    "lustre": "Lustre",
}
#: FUSE types that are a local disk (ntfs-3g, exfat...): their changes are made here.
_LOCAL_FUSE = frozenset({"fuseblk"})


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo: where, what type, from what, with which options."""

    mount_point: str
    fstype: str
    source: str
    super_options: str = ""


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\040``, ``\\011``, ``\\012``, ``\\134``."""
    if "\\" not in field:
        return field
    out: list[str] = []
    i = 0
    while i < len(field):
        chunk = field[i + 1 : i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts, in the file's order (a later mount on the same point is on top)."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        try:
            dash = fields.index("-", 6)  # optional fields (shared:N, master:N) end at "-"
        except ValueError:
            continue  # not a mountinfo line
        if len(fields) < dash + 3:
            continue
        mounts.append(
            Mount(
                mount_point=_unescape(fields[4]),
                fstype=fields[dash + 1],
                source=_unescape(fields[dash + 2]),
                super_options=fields[dash + 3] if len(fields) > dash + 3 else "",
            )
        )
    return mounts


def mount_of(path: str, mounts: Sequence[Mount]) -> Mount | None:
    """The mount that holds ``path`` (an absolute, symlink-free path): the longest mount point
    at or above it; of two on the same point, the later one."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point
        inside = path == point or path.startswith(point if point.endswith("/") else point + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    return best


def no_events_reason(mount: Mount) -> str | None:
    """Why changes on this mount send no inotify events, or None when they do."""
    fstype = mount.fstype
    if fstype == "9p" and "aname=drvfs" in mount.super_options:
        return "9p, WSL's drvfs (a Windows drive)"
    if fstype in _NO_EVENTS:
        return _NO_EVENTS[fstype]
    if fstype in _LOCAL_FUSE:
        return None
    if fstype == "fuse" or fstype.startswith("fuse."):
        subtype = fstype.partition(".")[2] or "unknown"
        if subtype == "grpcfuse":
            return "fuse.grpcfuse, Docker Desktop's host share"
        return f"{fstype}, a FUSE file system"
    return None


def polled_roots(roots: Iterable[str], mountinfo: str = MOUNTINFO) -> dict[str, str]:
    """The roots (as given) that must be polled, each with the reason, from ``mountinfo``.

    An unreadable mountinfo (not Linux, a sandbox) means no root is polled automatically.
    """
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            mounts = parse_mountinfo(f.read())
    except OSError:
        return {}
    found: dict[str, str] = {}
    for root in roots:
        mount = mount_of(os.path.realpath(root), mounts)
        reason = no_events_reason(mount) if mount is not None else None
        if reason is not None:
            found[root] = reason
    return found
