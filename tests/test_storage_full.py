"""A full disk is answered 452 4.3.1, never a 250, and leaves no half-written file behind.

The data directory is a real, small tmpfs mounted for the test (root can mount one here; the
tests skip with the reason where it cannot), filled with a real file, so every write the bridge
makes meets the kernel's own ENOSPC.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
from collections.abc import Callable, Iterator
from email.policy import SMTP
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from bridge.config import Config
from bridge.errors import StorageFull
from bridge.store.db import Database
from bridge.store.space import database_error_is_full
from tests.bridge_runner import BridgeThread
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail

FULL = (
    "452 4.3.1 Insufficient system storage: the fax bridge's disk is full, please try again later"
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB file system of its own."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` with one file until only about `leave` bytes are free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    filler = disk / "filler"
    with open(filler, "ab") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


def noisy_png(side: int) -> bytes:
    """An image that does not compress: its size is about 3 * side * side bytes."""
    rng = random.Random(side)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(3 * side * side))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=0)
    return out.getvalue()


def big_mail(side: int) -> bytes:
    message = fax_mail(subject="Big scan", pdf_pages=0)
    message.add_attachment(noisy_png(side), maintype="image", subtype="png", filename="scan.png")
    return message.as_bytes(policy=SMTP)


def send(bridge: BridgeThread, data: bytes) -> tuple[int, str]:
    """MAIL without SIZE (as many scanners do), so the check at MAIL cannot see it coming."""
    with smtp_client(bridge.smtp_address) as client:
        assert client.mail("alice@example.com")[0] == 250
        assert client.rcpt("12125550123@fax.localhost")[0] == 250
        code, text = client.data(data)
    return code, text.decode()


def leftovers(data_dir: Path) -> list[str]:
    """Files a failed write must not leave: temporaries, spool files, orphan documents."""
    found = [str(p.relative_to(data_dir)) for p in data_dir.rglob("*.tmp")]
    found += [str(p.relative_to(data_dir)) for p in (data_dir / "spool").glob("*")]
    found += [str(p.relative_to(data_dir)) for p in data_dir.glob("documents/*")]
    found += [str(p.relative_to(data_dir)) for p in data_dir.glob("covers/*")]
    return found


def latest_row(bridge: BridgeThread) -> dict[str, Any]:
    rows: list[dict[str, Any]] = wait_for(lambda: bridge.store.smtplog.recent(limit=1) or None)
    return rows[0]


def test_a_message_that_does_not_fit_gets_452_and_leaves_nothing_half_written(
    small_disk: Path,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> None:
    data_dir = small_disk / "var"
    bridge = start_bridge(make_config(storage={"data_dir": str(data_dir), "min_free_mb": 0}))
    filler = fill(small_disk, leave=400_000)
    message = fax_mail(subject="Does not fit", pdf_pages=0)
    message.add_attachment(noisy_png(330), maintype="image", subtype="png", filename="scan.png")
    data = message.as_bytes(policy=SMTP)  # ~440 KB in memory, more than the disk has left

    code, text = send(bridge, data)

    assert (code, f"{code} {text}") == (452, FULL)
    row = latest_row(bridge)
    assert row["outcome"] == "rejected"
    assert row["reply"] == FULL
    assert row["error"].startswith("disk full: cannot write "), row["error"]
    assert "No space left on device" in row["error"]
    assert leftovers(data_dir) == []
    assert bridge.store.jobs.recent() == []

    filler.unlink()  # the admin makes room: the same message is now taken, no restart
    code, text = send(bridge, data)
    assert code == 250, text
    wait_for(lambda: bridge.store.jobs.recent() or None, what="a fax job")


def test_a_big_message_that_cannot_be_spooled_gets_452_at_the_end_of_data(
    small_disk: Path,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> None:
    data_dir = small_disk / "var"
    bridge = start_bridge(make_config(storage={"data_dir": str(data_dir), "min_free_mb": 0}))
    fill(small_disk, leave=1_500_000)
    data = big_mail(900)  # ~3.3 MB: spooled past 1 MiB, and the spool runs out of room

    code, text = send(bridge, data)

    assert (code, f"{code} {text}") == (452, FULL)
    row = latest_row(bridge)
    assert row["outcome"] == "rejected"
    assert row["error"].startswith(f"cannot spool the message under {data_dir / 'spool'}: ")
    assert row["error"].endswith("No space left on device"), row["error"]
    assert leftovers(data_dir) == []
    # The session goes on: the next, small message on the same disk is taken.
    code, text = send(bridge, fax_mail(subject="Small").as_bytes(policy=SMTP))
    assert code == 250, text


def test_too_little_free_space_refuses_at_mail_from_and_fails_readyz(
    small_disk: Path,
    make_config: Callable[..., Config],
    start_bridge: Callable[[Config], BridgeThread],
) -> None:
    data_dir = small_disk / "var"
    bridge = start_bridge(make_config(storage={"data_dir": str(data_dir), "min_free_mb": 3}))
    ready = httpx.get(f"{bridge.http_url}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["disk"] is True
    filler = fill(small_disk, leave=2 * 1024 * 1024)

    with smtp_client(bridge.smtp_address) as client:
        code, text = client.mail("alice@example.com")
    assert (code, f"{code} {text.decode()}") == (452, FULL)
    row = latest_row(bridge)
    assert row["outcome"] == "rejected"
    assert row["from"] == "alice@example.com"
    assert row["error"] == f"2 MB free under {data_dir}; storage.min_free_mb is 3"
    ready = httpx.get(f"{bridge.http_url}/readyz", timeout=5)
    assert ready.status_code == 503
    assert ready.json()["disk"] is False and ready.json()["disk_free_mb"] == 2

    filler.unlink()
    with smtp_client(bridge.smtp_address) as client:
        # A declared SIZE counts too, as in Postfix: room now, but not for 6 MB more.
        code, _ = client.mail("alice@example.com", ["SIZE=6000000"])
        assert code == 452
        client.rset()
        code, _ = client.mail("alice@example.com", ["SIZE=20000"])
        assert code == 250
    assert httpx.get(f"{bridge.http_url}/readyz", timeout=5).status_code == 200


def test_sqlite_on_a_full_disk_is_told_apart_from_other_faults(small_disk: Path) -> None:
    db = Database(f"sqlite:///{small_disk}/full.db", small_disk)
    with db.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (v BLOB)"))
    fill(small_disk, leave=0)
    with pytest.raises(StorageFull) as caught:
        with db.begin() as conn:
            for _ in range(64):
                conn.execute(sa.text("INSERT INTO t VALUES (:v)"), {"v": os.urandom(65536)})
    assert database_error_is_full(caught.value.__cause__)  # type: ignore[arg-type]
    db.dispose()


def test_a_big_message_is_on_disk_not_in_memory_while_it_arrives(bridge: BridgeThread) -> None:
    """Twenty slow senders of 20 MB scans must not cost 400 MB of memory (measured in
    bench/slow_senders.py); here: the spooled message is byte for byte what was sent."""
    body = "\r\n".join(["Lines that start with a dot are dot-stuffed:", ".one", "..two", ""])
    message = fax_mail(subject="Spooled", body=body, pdf_pages=0)
    message.add_attachment(noisy_png(800), maintype="image", subtype="png", filename="scan.png")
    data = message.as_bytes(policy=SMTP)
    assert len(data) > 2 * 1024 * 1024
    spool = bridge.config.storage.data_dir / "spool"

    def spooled() -> list[str]:
        fds = Path("/proc/self/fd")
        links = []
        for fd in fds.iterdir():
            try:
                links.append(os.readlink(fd))
            except OSError:
                continue
        return [link for link in links if link.startswith(str(spool))]

    with smtp_client(bridge.smtp_address) as client:
        client.mail("alice@example.com")
        client.rcpt("12125550123@fax.localhost")
        client.putcmd("data")
        assert client.getreply()[0] == 354
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        client.send(stuffed[: len(stuffed) // 2])
        held = wait_for(spooled, what="a spool file while the message arrives")
        assert all(link.endswith("(deleted)") for link in held), held  # no name: no leftovers
        assert stuffed.endswith(b"\r\n")
        client.send(stuffed[len(stuffed) // 2 :] + b".\r\n")
        code, text = client.getreply()
    assert code == 250, text
    assert spooled() == []
    assert list(spool.iterdir()) == []
    row = latest_row(bridge)
    (stored,) = bridge.config.storage.data_dir.glob(f"messages/*/*/*/{row['id']}.eml")
    assert stored.read_bytes() == data


def test_a_spool_that_fails_for_another_reason_is_451_not_a_full_disk(
    bridge: BridgeThread,
) -> None:
    spool = bridge.config.storage.data_dir / "spool"
    spool.parent.mkdir(parents=True, exist_ok=True)
    spool.write_text("a file where the spool directory should be")  # no room is not the issue

    code, text = send(bridge, big_mail(700))  # ~2 MB: spooled past 1 MiB

    assert (code, f"{code} {text}") == (
        451,
        "451 4.3.0 Temporary local problem, please try again later",
    )
    row = latest_row(bridge)
    assert row["outcome"] == "rejected"
    assert row["error"].startswith(f"cannot spool the message under {spool}: ")
