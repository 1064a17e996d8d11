"""Free space under the data directory, and telling a full disk from other storage faults.

Like Postfix's `queue_minfree`, the bridge refuses new mail with 452 4.3.1 before the disk is
actually full, so a message it has answered 250 never has to be written to a disk without room.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

# ENOSPC: no space left on device; EDQUOT: disk quota exceeded (same remedy for the admin).
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = "database or disk is full"
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding `path`."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stat = os.statvfs(probe)
    return stat.f_bavail * stat.f_frsize


def os_error_is_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FULL_ERRNOS


def database_error_is_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL, PostgreSQL's disk_full, or an OS error underneath either."""
    original = getattr(exc, "orig", None) or exc
    if getattr(original, "sqlstate", None) == _PG_DISK_FULL:
        return True
    if os_error_is_full(original):
        return True
    return _SQLITE_FULL in str(original) or "No space left on device" in str(original)
