"""The mountinfo decision: which roots are polled, from real-looking /proc/self/mountinfo lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from reloadkit.watch.mounts import mount_of, no_events_reason, parse_mountinfo, polled_roots

pytestmark = pytest.mark.timeout(30)

# One machine's worth of mounts, each line in the kernel's format (proc_pid_mountinfo(5)).
SAMPLE = r"""
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
26 22 0:26 / /tmp rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=8119604k,inode64
40 22 259:3 / /home rw,relatime shared:20 - xfs /dev/nvme0n1p3 rw,attr2,inode64,logbufs=8
45 22 0:44 / /mnt/nfs rw,relatime shared:25 - nfs4 fileserver:/export/home rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.5,local_lock=none,addr=10.0.0.2
46 22 0:45 / /srv/nfs3 rw,relatime shared:26 - nfs nas:/volume1/code rw,vers=3,rsize=131072,wsize=131072,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,mountaddr=10.0.0.3,mountvers=3,mountport=892,mountproto=udp,local_lock=none,addr=10.0.0.3
47 22 0:46 / /mnt/smb rw,relatime shared:27 - cifs //nas/share rw,vers=3.1.1,cache=strict,username=me,uid=1000,noforceuid,gid=1000,noforcegid,addr=10.0.0.3,file_mode=0755,dir_mode=0755,soft,nounix,serverino,mapposix,rsize=4194304,wsize=4194304,bsize=1048576,echo_interval=60,actimeo=1,closetimeo=1
48 40 0:47 / /home/me/remote rw,nosuid,nodev,relatime shared:28 - fuse.sshfs me@devbox:/srv/app rw,user_id=1000,group_id=1000
49 22 0:48 / /media/sf_project rw,nodev,relatime shared:29 - vboxsf project rw,uid=0,gid=999,ttl=0,dcachettl=0
50 22 0:49 / /mnt/host rw,relatime shared:30 - 9p hostshare rw,sync,dirsync,access=client,trans=virtio
51 22 0:50 / /mnt/My\040Projects rw,relatime shared:31 - nfs4 nas:/My\040Projects rw,vers=4.1,hard,proto=tcp,sec=sys,addr=10.0.0.3
52 22 8:17 / /media/usb rw,nosuid,nodev,relatime shared:32 - fuseblk /dev/sdb1 rw,user_id=0,group_id=0,default_permissions,allow_other,blksize=4096
53 40 0:51 / /home/me/vault rw,nosuid,nodev,relatime shared:33 - fuse.gocryptfs /home/me/.vault rw,user_id=1000,group_id=1000
54 45 259:2 /srv/local /mnt/nfs/local rw,relatime shared:34 - ext4 /dev/nvme0n1p2 rw
55 26 0:52 / /tmp/stacked rw,relatime shared:35 - tmpfs tmpfs rw
56 26 0:53 / /tmp/stacked rw,relatime shared:36 - nfs4 nas:/stack rw,vers=4.2
""".strip()

# WSL 2: Windows drives are 9p mounts of drvfs; WSL 1: drvfs itself.
WSL2 = r"""
61 1 8:32 / / rw,relatime - ext4 /dev/sdc rw,discard,errors=remount-ro,data=ordered
84 61 0:53 / /mnt/c rw,noatime - 9p C:\134 rw,dirsync,aname=drvfs;path=C:\134;uid=1000;gid=1000;symlinkroot=/mnt/,mmap,access=client,msize=262144,trans=virtio
""".strip()
WSL1 = r"""
2 2 0:2 / / rw,noatime - lxfs rootfs rw
7 2 0:5 / /mnt/c rw,noatime - drvfs C:\134 rw,uid=1000,gid=1000,case=off
""".strip()

# Inside containers of Docker Desktop (macOS/Windows): the bind-mounted project.
DOCKER_DESKTOP = r"""
1170 1099 0:179 / / rw,relatime master:430 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work
1189 1170 0:190 /Users/me/project /app rw,relatime - virtiofs virtiofs0 rw
1190 1170 0:191 /Users/me/other /other rw,nosuid,nodev,relatime - fuse.grpcfuse grpcfuse rw,user_id=0,group_id=0,allow_other,max_read=1048576
1191 1170 0:192 /Users/me/third /third rw,relatime - fakeowner /run/host_mark/Users rw,fakeowner
1192 1170 254:1 /docker/volumes/data/_data /data rw,relatime - ext4 /dev/vda1 rw,discard
""".strip()


@pytest.mark.parametrize(("path", "reason"), [
    ("/home/me/app", None),  # xfs
    ("/tmp/x", None),  # tmpfs
    ("/", None),
    ("/mnt/nfs/src", "NFS"),
    ("/mnt/nfs", "NFS"),
    ("/mnt/nfsother", None),  # a prefix of the name is not a mount point
    ("/srv/nfs3/app", "NFS"),
    ("/mnt/smb/app", "SMB/CIFS"),
    ("/home/me/remote/app", "fuse.sshfs, a FUSE file system"),
    ("/media/sf_project/app", "a VirtualBox shared folder"),
    ("/mnt/host/app", "9p, a VM's host share"),
    ("/mnt/My Projects/app", "NFS"),  # \040 in the mount point
    ("/media/usb/app", None),  # fuseblk: a local disk
    ("/home/me/vault/app", "fuse.gocryptfs, a FUSE file system"),
    ("/mnt/nfs/local/app", None),  # a local mount inside an NFS one
    ("/tmp/stacked/app", "NFS"),  # two mounts on one point: the later is on top
])
def test_sample_machine(path: str, reason: str | None) -> None:
    mount = mount_of(path, parse_mountinfo(SAMPLE))
    assert mount is not None
    assert no_events_reason(mount) == reason


@pytest.mark.parametrize(("sample", "path", "reason"), [
    (WSL2, "/mnt/c/Users/me/app", "9p, WSL's drvfs (a Windows drive)"),
    (WSL2, "/home/me/app", None),
    (WSL1, "/mnt/c/Users/me/app", "WSL's drvfs"),
    (DOCKER_DESKTOP, "/app/src", "virtiofs, a VM's or Docker Desktop's host share"),
    (DOCKER_DESKTOP, "/other", "fuse.grpcfuse, Docker Desktop's host share"),
    (DOCKER_DESKTOP, "/third/x", "Docker Desktop's host share"),
    (DOCKER_DESKTOP, "/data/x", None),  # a named volume lives in the VM: events work
    (DOCKER_DESKTOP, "/usr/src", None),  # the container's overlay
])
def test_wsl_and_docker_desktop(sample: str, path: str, reason: str | None) -> None:
    mount = mount_of(path, parse_mountinfo(sample))
    assert mount is not None and no_events_reason(mount) == reason


def test_parse_fields_and_escapes() -> None:
    mounts = parse_mountinfo(SAMPLE + "\nnot a mountinfo line\n")
    spaced = next(m for m in mounts if m.mount_point.startswith("/mnt/My"))
    assert spaced.mount_point == "/mnt/My Projects" and spaced.source == "nas:/My Projects"
    assert spaced.fstype == "nfs4" and "vers=4.1" in spaced.super_options
    wsl = parse_mountinfo(WSL2)[1]
    assert wsl.source == "C:\\" and "aname=drvfs" in wsl.super_options
    assert len(mounts) == SAMPLE.count("\n") + 1


def test_polled_roots_reads_an_injected_mountinfo(tmp_path: Path) -> None:
    share = tmp_path / "share"
    local = tmp_path / "local"
    share.mkdir()
    local.mkdir()
    (share / "link").symlink_to(local)
    info = tmp_path / "mountinfo"
    info.write_text(f"22 1 259:2 / / rw - ext4 /dev/sda1 rw\n60 22 0:60 / {share} rw - cifs //nas/x rw\n")
    roots = [str(local), str(share), str(share / "sub"), str(share / "link")]
    assert polled_roots(roots, str(info)) == {str(share): "SMB/CIFS", str(share / "sub"): "SMB/CIFS"}
    assert polled_roots(roots, str(tmp_path / "missing")) == {}
