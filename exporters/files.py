"""Durable files: what is written is on disk before anything depends on it; folders swapped atomically."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # Linux renameat2 flag (linux/fs.h)
_RENAME_SWAP = 2  # macOS renamex_np flag (sys/stdio.h)


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (so that a rename or a new file in it survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def _atomic_exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step, where the system can: Linux ``renameat2(RENAME_EXCHANGE)`` (since 3.15,
    ext4 first, other file systems each on its own; glibc 2.28 has the wrapper), macOS
    ``renamex_np(RENAME_SWAP)``. False where it cannot (no such call, or the file system refuses it)."""
    if _LIBC is None:
        return False
    old, new = os.fsencode(a), os.fsencode(b)
    if sys.platform.startswith("linux") and hasattr(_LIBC, "renameat2"):
        result = _LIBC.renameat2(_AT_FDCWD, old, _AT_FDCWD, new, _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(_LIBC, "renamex_np"):
        result = _LIBC.renamex_np(old, new, _RENAME_SWAP)
    else:
        return False
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing folders: afterwards ``a`` holds what ``b`` held and the other way round.

    Atomic where the system can (:func:`_atomic_exchange`; returns True): a reader that resolves either path
    gets one folder or the other, never neither. Elsewhere two renames through a third name (returns False):
    for the instant between them, ``a`` does not exist. The caller fsyncs the parent folders."""
    if _atomic_exchange(a, b):
        return True
    aside = b.with_name(f"{b.name}.aside")  # beside b: out of a's parent, which readers list
    os.rename(a, aside)
    os.rename(b, a)
    os.rename(aside, b)
    return False
