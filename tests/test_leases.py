"""Lease holders: a dead process of this host is recognised, a live one or another host never."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from bridge.leases import is_dead_local_owner, process_owner


def test_our_own_lease_is_alive() -> None:
    assert not is_dead_local_owner(process_owner())


def test_our_pid_with_another_nonce_is_the_bridge_before_a_restart() -> None:
    host = socket.gethostname()
    assert is_dead_local_owner(f"{host}:{os.getpid()}:00000000")


def test_a_process_that_exited_is_dead_and_a_running_one_is_not() -> None:
    host = socket.gethostname()
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    assert is_dead_local_owner(f"{host}:{done.stdout.strip()}:abcd1234")
    assert not is_dead_local_owner(f"{host}:1:abcd1234")  # init is always running


def test_another_hosts_lease_is_never_judged_here() -> None:
    assert not is_dead_local_owner("some-other-host.example:999999:abcd1234")
    assert not is_dead_local_owner(None)
    assert not is_dead_local_owner("garbage")
