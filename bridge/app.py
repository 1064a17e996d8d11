"""Wires one event loop: SMTP listener, HTTP (callbacks), fax worker and mail worker.

Start-up order matters: the store first (nothing is accepted without it), the HTTP listener
before the providers start (they call back into it), the SMTP listener last. Shutdown runs the
other way: stop accepting mail, finish sessions and sends in flight, then close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from bridge import metrics
from bridge.config import Config, DocumentsConfig, split_host_port
from bridge.converters import converter_problems, converters_for, start_office
from bridge.documents.office import OfficeService, find_soffice
from bridge.documents.pool import DocumentPool
from bridge.http.app import create_app
from bridge.notify.mailer import make_mailer
from bridge.notify.outbox import MailWorker
from bridge.providers.registry import build_providers
from bridge.smtp.intake import Intake
from bridge.smtp.server import FaxHandler, start_smtp_servers
from bridge.store import Store
from bridge.worker import FaxWorker

log = logging.getLogger(__name__)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the bridge owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def document_pool_size() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def make_document_pool(config: DocumentsConfig | None = None) -> DocumentPool:
    """Processes, not threads: PDF and image work is CPU-bound and holds the GIL."""
    limits = config or DocumentsConfig()
    return DocumentPool(
        document_pool_size(),
        memory_mb=limits.worker_memory_mb,
        cpu_s=limits.worker_cpu_s,
        timeout_s=limits.worker_timeout_s,
    )


def open_file_limit(needed: int) -> int:
    """Raise the soft limit on open files to the hard one; warn when it is below `needed`.

    Every SMTP connection, provider request, database connection and worker pipe is a file
    descriptor; 1024, a common soft default, runs out long before `smtp.max_connections`.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = needed * 4 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
            soft = max(soft, target)
    if soft < needed:
        log.warning(
            "only %d open files allowed (ulimit -n); smtp.max_connections needs about %d: "
            "raise LimitNOFILE (systemd) or --ulimit nofile (Docker)",
            soft,
            needed,
        )
    return soft


class Bridge:
    def __init__(
        self, config: Config, pool: DocumentPool | None = None, office: OfficeService | None = None
    ) -> None:
        self.config = config
        self.ready = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._own_pool = pool is None
        if pool is not None:
            self.pool = pool
        self._own_office = office is None
        self.office = office

    async def start(self) -> None:
        config = self.config
        config.storage.data_dir.mkdir(parents=True, exist_ok=True)
        open_file_limit(2 * config.smtp.max_connections + 256)
        self.store = Store.for_config(config.storage)
        await asyncio.to_thread(self.store.create_schema)
        self.metrics = metrics.install(metrics.Metrics(self.store, config.providers))

        if self._own_pool:
            self.pool = make_document_pool(config.documents)
            await self.pool.warm_up()

        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0), limits=httpx.Limits(max_connections=50)
        )
        self.providers = build_providers(config, self.client)
        self.jobs_ready = asyncio.Event()
        for problem in converter_problems(config.documents):
            log.warning("%s", problem)
        if self._own_office:  # starts in the background; the first Office file waits for it
            self.office = await asyncio.to_thread(start_office, config.documents)
        elif not find_soffice(config.documents.libreoffice or None):
            self.office = None  # one handed in (tests share one), but this config has none
        self.intake = Intake(config, self.store, self.pool)
        self.intake.converters = converters_for(config.documents, self.office)
        self.intake.jobs_ready = self.jobs_ready
        self.handler = FaxHandler(config, self.store, self.intake)

        http_host, http_port = split_host_port(config.http.listen)
        app = create_app(config, self.store, self.providers, self.ready, self.pool)
        self.http = _EmbeddedUvicorn(
            uvicorn.Config(
                app,
                host=http_host,
                port=http_port,
                log_level="warning",
                lifespan="off",
                access_log=False,
                log_config=None,  # its lines go through our handler (text or JSON)
            )
        )
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.http.serve(), name="http"))
        while not self.http.started:
            if self._tasks[0].done():
                self._tasks[0].result()  # raises the listen error
                raise OSError(f"HTTP listener on {config.http.listen} did not start")
            await asyncio.sleep(0.01)
        for provider in self.providers.values():
            await provider.start()

        self.mailer = make_mailer(config.mail, local_hostname=config.smtp.hostname)
        self.mail_wake = asyncio.Event()
        self.fax_worker = FaxWorker(config, self.store, self.providers, self.jobs_ready)
        self.mail_worker = MailWorker(config, self.store, self.mailer, self.mail_wake)
        self._tasks.append(loop.create_task(self.fax_worker.run(), name="fax-worker"))
        self._tasks.append(loop.create_task(self.mail_worker.run(), name="mail-worker"))
        self._tasks.append(loop.create_task(self._housekeeping(), name="housekeeping"))

        self.smtp_servers = await start_smtp_servers(config, self.handler)
        self.ready.set()
        log.info("faxbridge ready: SMTP %s, HTTP %s", config.smtp.listen, config.http.listen)

    async def _housekeeping(self) -> None:
        while True:
            try:
                removed = await asyncio.to_thread(
                    self.store.purge, self.config.storage.retention_days
                )
                if removed:
                    log.info("purged %d old smtplog records", removed)
            except Exception:
                log.exception("housekeeping failed")
            await asyncio.sleep(3600)

    async def stop(self) -> None:
        """Graceful: no new mail, sessions finish, sends in flight are recorded, then exit.

        1. Close the SMTP listeners: from here on a new connection is refused.
        2. Hang up on idle sessions (421); open transactions get `smtp.shutdown_grace_s` to
           finish, so a client in the middle of DATA still hears its 250.
        3. Stop claiming work, wait for the worker loops to leave the claim or delivery in
           hand, then for every send in flight to record its outcome.
        4. Close HTTP last: provider callbacks keep arriving until then.
        """
        self.ready.clear()
        grace_s = self.config.smtp.shutdown_grace_s
        if hasattr(self, "smtp_servers"):
            for server in self.smtp_servers:
                server.close()
        if hasattr(self, "handler"):
            await self.handler.shut_down(grace_s)
            await self.handler.drain()
        if hasattr(self, "smtp_servers"):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(s.wait_closed() for s in self.smtp_servers)), grace_s
                )
        if hasattr(self, "fax_worker"):
            await self._stop_workers(grace_s)
        for task in self._tasks:
            if task.get_name() != "http":
                task.cancel()
        if hasattr(self, "providers"):
            for provider in self.providers.values():
                await provider.aclose()
        if hasattr(self, "http"):
            self.http.should_exit = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if hasattr(self, "mailer"):
            await self.mailer.aclose()
        if hasattr(self, "client"):
            await self.client.aclose()
        if self._own_pool and hasattr(self, "pool"):
            self.pool.shutdown()
        if self._own_office and self.office is not None:
            await asyncio.to_thread(self.office.stop)
        if hasattr(self, "store"):
            self.store.close()

    async def _stop_workers(self, grace_s: float) -> None:
        await self.fax_worker.stop()
        await self.mail_worker.stop()
        # A loop may be claiming right now: wait until it has started what it claimed (or
        # delivered the mail it holds) and left, rather than cancel it with work leased.
        loops = [t for t in self._tasks if t.get_name() in ("fax-worker", "mail-worker")]
        _, late = await asyncio.wait(loops, timeout=grace_s) if loops else (set(), set())
        for task in late:
            log.warning("%s still busy after %g s; stopping it", task.get_name(), grace_s)
        await self.fax_worker.stop()  # the sends that last claim started


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT."""
    bridge = Bridge(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await bridge.start()
        await stop.wait()
        log.info("shutting down")
    finally:
        await bridge.stop()
