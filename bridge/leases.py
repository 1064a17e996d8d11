"""Who holds a lease, and whether that holder is gone: short leases that heal at once.

A lease owner is `host:pid:nonce`. The nonce tells a restarted bridge from its dead
predecessor even when both got the same pid (pid 1 or 7 in a container, every time), so at
start-up a bridge frees at once the leases of every dead process of its own host instead of
waiting them out. Leases of other hosts (bridges sharing a PostgreSQL) end when their holder
stops renewing them: each worker renews the leases of its sends in flight every third of
the lease, so a live slow send is never taken over.
"""

from __future__ import annotations

import os
import secrets
import socket

_NONCE = secrets.token_hex(4)


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_NONCE}"


def is_dead_local_owner(owner: str | None) -> bool:
    """True for a lease holder of this host that is certainly no longer running."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, nonce = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return nonce != _NONCE  # our pid, another incarnation: the one before a restart
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False
