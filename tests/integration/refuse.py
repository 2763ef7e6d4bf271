"""``python refuse.py WHAT ARGS...``: run ``python ARGS...`` where the kernel refuses a call,
by a seccomp filter that the exec and every descendant inherit. A real missing capability,
for tests of what reloadkit does on a platform without it. WHAT is:

* ``subreaper``: ``prctl(PR_SET_CHILD_SUBREAPER)`` fails with EINVAL, as a kernel without it
  answers (macOS has no such call either);
* ``clone-parent``: ``clone(2)`` with ``CLONE_PARENT`` fails with EINVAL (macOS has no
  ``clone``), while every other fork works.

Linux on x86-64 or arm64 only (exit 77 elsewhere).
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
CLONE_PARENT = 0x00008000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
#: machine -> (AUDIT_ARCH_*, the prctl syscall's number, the clone syscall's number)
ARCHES = {"x86_64": (0xC000003E, 157, 56), "aarch64": (0xC00000B7, 167, 220)}
LOAD, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JSET|K, BPF_RET|K


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def _program(what: str, audit_arch: int, prctl_nr: int, clone_nr: int) -> bytes:
    """Allow everything but the one call: syscall number, then the first argument's low half
    (little-endian) equal to (prctl's option) or sharing a bit with (clone's flags) the value."""
    number, test, value = (prctl_nr, JEQ, PR_SET_CHILD_SUBREAPER) if what == "subreaper" else (clone_nr, JSET, CLONE_PARENT)
    return b"".join([
        _insn(LOAD, 0, 0, 4),  # seccomp_data.arch
        _insn(JEQ, 0, 5, audit_arch),
        _insn(LOAD, 0, 0, 0),  # seccomp_data.nr
        _insn(JEQ, 0, 3, number),
        _insn(LOAD, 0, 0, 16),  # seccomp_data.args[0], low half
        _insn(test, 0, 1, value),
        _insn(RET, 0, 0, SECCOMP_RET_ERRNO | errno.EINVAL),
        _insn(RET, 0, 0, SECCOMP_RET_ALLOW),
    ])


def main() -> None:
    arch = ARCHES.get(platform.machine())
    if arch is None or not sys.platform.startswith("linux") or len(sys.argv) < 2:
        sys.exit(77)
    what = sys.argv[1]
    if what not in ("subreaper", "clone-parent"):
        sys.exit(f"refuse.py: unknown call to refuse: {what}")
    program = _program(what, *arch)
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
    os.execv(sys.executable, [sys.executable, *sys.argv[2:]])


if __name__ == "__main__":
    main()
