"""The document pool heals: a worker that dies or hangs costs one message, never the service."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from email.policy import SMTP

import httpx
import pytest

from bridge.config import Config
from bridge.documents.office import OfficeService
from bridge.documents.pool import ConversionLimit, DocumentPool, PoolFault
from tests import pool_tasks
from tests.bridge_runner import BridgeThread
from tests.helpers import smtp_client, wait_for
from tests.messages import fax_mail


@pytest.fixture
def make_pool() -> Iterator[Callable[..., DocumentPool]]:
    pools: list[DocumentPool] = []

    def make(**limits: float) -> DocumentPool:
        pools.append(DocumentPool(2, **limits))  # type: ignore[arg-type]
        return pools[-1]

    yield make
    for pool in pools:
        pool.shutdown()


async def test_a_worker_that_dies_costs_its_task_a_451_and_the_next_task_runs(
    make_pool: Callable[..., DocumentPool],
) -> None:
    pool = make_pool()
    with pytest.raises(PoolFault) as caught:
        await pool.run(pool_tasks.die)
    assert caught.value.reply.startswith("451 4.3.0 The document converter stopped")
    assert pool.restarts == 1  # tried once more in a worker of its own, which it killed too
    assert isinstance(await pool.run(pool_tasks.pid), int)
    assert pool.healthy


async def test_tasks_caught_in_another_task_s_crash_are_run_again(
    make_pool: Callable[..., DocumentPool],
) -> None:
    pool = make_pool()
    innocent = asyncio.ensure_future(pool.run(pool_tasks.slow_pid, 0.5))
    await asyncio.sleep(0.1)
    with pytest.raises(PoolFault):
        await pool.run(pool_tasks.die)
    assert isinstance(await innocent, int)


async def test_a_hung_task_is_killed_and_its_message_answered_451(
    make_pool: Callable[..., DocumentPool],
) -> None:
    # 5 s, not 1: the timeout counts from the task's hand-over, and on a loaded machine two
    # spawned workers importing the bridge take more than a second to start.
    pool = make_pool(timeout_s=5.0)
    before = await asyncio.gather(*(pool.run(pool_tasks.slow_pid, 0.2) for _ in range(2)))
    with pytest.raises(PoolFault) as caught:
        await pool.run(pool_tasks.hang)
    assert caught.value.reply == (
        "451 4.3.0 The document converter did not finish this message within 5 s and was "
        "restarted; please send it again later"
    )
    assert pool.restarts == 1
    for worker in before:  # the hung worker and its siblings are gone, not left running
        wait_for(lambda w=worker: not _alive(w), timeout_s=10, what=f"worker {worker} to end")
    assert await pool.run(pool_tasks.pid) not in before


async def test_a_task_past_its_cpu_time_stops_with_a_limit_not_a_crash(
    make_pool: Callable[..., DocumentPool],
) -> None:
    pool = make_pool(cpu_s=1.0)
    with pytest.raises(ConversionLimit) as caught:
        await pool.run(pool_tasks.spin)
    assert (
        caught.value.reply() == "552 5.3.4 This message needs more than 1 s of CPU time to convert"
    )
    assert pool.restarts == 0
    assert isinstance(await pool.run(pool_tasks.pid), int)  # the same worker goes on


async def test_a_task_past_the_memory_limit_stops_with_a_limit(
    make_pool: Callable[..., DocumentPool],
) -> None:
    pool = make_pool(memory_mb=600)
    with pytest.raises(ConversionLimit) as caught:
        await pool.run(pool_tasks.allocate, 1024)
    assert (
        caught.value.reply() == "552 5.3.4 This message needs more than 600 MB of memory to convert"
    )
    assert await pool.run(pool_tasks.allocate, 50) == 50 * 1024 * 1024
    assert pool.restarts == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_mail_after_a_worker_was_killed_is_faxed_and_readyz_counts_the_restart(
    make_config: Callable[..., Config], office: OfficeService
) -> None:
    """What the OOM killer does: one worker gone; the next mails must not all get 451."""
    config = make_config({"http": {"api_tokens": ["t"]}})
    bridge = BridgeThread(config, pool=None, office=office).start()
    try:
        pool = bridge.bridge.pool
        victim = asyncio.run_coroutine_threadsafe(pool.run(pool_tasks.pid), bridge._loop).result(30)
        os.kill(victim, signal.SIGKILL)
        for n in range(3):
            with smtp_client(bridge.smtp_address) as client:
                client.mail("alice@example.com")
                client.rcpt("12125550123@fax.localhost")
                code, text = client.data(fax_mail(subject=f"Crash {n}").as_bytes(policy=SMTP))
            assert code == 250, text
        jobs = wait_for(lambda: len(r := bridge.store.jobs.recent()) == 3 and r)
        assert len(jobs) == 3
        ready = httpx.get(f"{bridge.http_url}/readyz").json()
        assert ready["documents"] is True
        assert ready["document_pool_restarts"] == 1
        assert ready["document_pool_last_fault"] == "a document worker died"
        scrape = httpx.get(f"{bridge.http_url}/metrics", headers={"X-Auth-Token": "t"}).text
        assert 'faxbridge_document_pool_restarts_total{reason="died"} 1.0' in scrape
    finally:
        bridge.stop()
