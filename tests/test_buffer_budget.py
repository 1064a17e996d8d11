"""smtp.max_buffered_mb: big messages past their end-of-data wait in their spool files rather
than all being read into memory at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from email.policy import SMTP

from bridge.config import Config
from bridge.smtp.budget import ByteBudget
from tests.bridge_runner import BridgeThread
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail
from tests.test_storage_full import noisy_png

MiB = 1024 * 1024


async def test_a_message_waits_until_the_bytes_before_it_are_given_back() -> None:
    budget = ByteBudget(10 * MiB)
    assert await budget.acquire(6 * MiB) == 6 * MiB
    second = asyncio.ensure_future(budget.acquire(6 * MiB))
    third = asyncio.ensure_future(budget.acquire(1 * MiB))  # fits, but waits its turn
    await asyncio.sleep(0.05)
    assert not second.done() and not third.done()
    budget.release(6 * MiB)
    assert await second == 6 * MiB
    assert await third == 1 * MiB
    assert budget.used == 7 * MiB


async def test_one_message_bigger_than_the_ceiling_goes_through_alone() -> None:
    budget = ByteBudget(4 * MiB)
    assert await budget.acquire(30 * MiB) == 4 * MiB  # takes it all, waits for nobody
    late = asyncio.ensure_future(budget.acquire(1))
    await asyncio.sleep(0.05)
    assert not late.done()
    budget.release(4 * MiB)
    assert await late == 1


async def test_a_waiter_that_gives_up_does_not_block_the_next() -> None:
    budget = ByteBudget(4 * MiB)
    await budget.acquire(3 * MiB)
    gone = asyncio.ensure_future(budget.acquire(2 * MiB))
    small = asyncio.ensure_future(budget.acquire(1 * MiB))
    await asyncio.sleep(0.05)
    gone.cancel()  # the client hung up while waiting
    assert await small == 1 * MiB
    assert budget.used == 4 * MiB


def test_big_messages_at_once_over_a_small_ceiling_are_all_faxed(
    make_config: Callable[..., Config], start_bridge: Callable[[Config], BridgeThread]
) -> None:
    bridge = start_bridge(make_config(smtp={"max_buffered_mb": 2}))
    replies: list[int] = []

    def send(n: int) -> None:
        message = fax_mail(subject=f"Scan {n}", pdf_pages=0)
        message.add_attachment(
            noisy_png(600 + n), maintype="image", subtype="png", filename=f"scan{n}.png"
        )
        with smtp_client(bridge.smtp_address) as client:
            client.mail("alice@example.com")
            client.rcpt("12125550123@fax.localhost")
            replies.append(client.data(message.as_bytes(policy=SMTP))[0])

    senders = [threading.Thread(target=send, args=(n,)) for n in range(3)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(120)
    assert replies == [250, 250, 250]
    wait_for(lambda: len(bridge.store.jobs.recent()) == 3, what="three fax jobs")
    budget = bridge.bridge.handler.buffered
    wait_for(lambda: budget.used == 0, what="the budget given back")
