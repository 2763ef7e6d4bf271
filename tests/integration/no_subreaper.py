"""``python no_subreaper.py ARGS...``: run ``python ARGS...`` where the kernel refuses
``prctl(PR_SET_CHILD_SUBREAPER)`` (EINVAL, as a kernel without it answers), by a seccomp
filter that the exec and every descendant inherit. A real missing capability, for tests of
what reloadkit does on a platform without it. Linux on x86-64 or arm64 only (exit 77 elsewhere).
"""

import ctypes
import errno
import os
import platform
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
#: machine -> (AUDIT_ARCH_*, the prctl syscall's number)
ARCHES = {"x86_64": (0xC000003E, 157), "aarch64": (0xC00000B7, 167)}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def main() -> None:
    arch = ARCHES.get(platform.machine())
    if arch is None or not sys.platform.startswith("linux"):
        sys.exit(77)
    audit_arch, prctl_nr = arch
    load, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    program = b"".join([
        _insn(load, 0, 0, 4),  # seccomp_data.arch
        _insn(jeq, 0, 5, audit_arch),
        _insn(load, 0, 0, 0),  # seccomp_data.nr
        _insn(jeq, 0, 3, prctl_nr),
        _insn(load, 0, 0, 16),  # seccomp_data.args[0], low half (little-endian)
        _insn(jeq, 0, 1, PR_SET_CHILD_SUBREAPER),
        _insn(ret, 0, 0, SECCOMP_RET_ERRNO | errno.EINVAL),
        _insn(ret, 0, 0, SECCOMP_RET_ALLOW),
    ])
    filters = ctypes.create_string_buffer(program, len(program))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Program(len(program) // 8, ctypes.addressof(filters))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        sys.exit(77)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        sys.exit(77)
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])


if __name__ == "__main__":
    main()
