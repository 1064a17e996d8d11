"""Run a whole bridge in a background thread with its own event loop, for socket tests."""

from __future__ import annotations

import asyncio
import threading

from bridge.app import Bridge
from bridge.config import Config, split_host_port
from bridge.documents.office import OfficeService
from bridge.documents.pool import DocumentPool
from bridge.store import Store


class BridgeThread:
    def __init__(
        self, config: Config, pool: DocumentPool | None = None, office: OfficeService | None = None
    ) -> None:
        self.config = config
        self.pool = pool
        self.office = office
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="bridge", daemon=True)
        self.store = Store(config.storage.url, config.storage.data_dir)

    @property
    def smtp_address(self) -> tuple[str, int]:
        return split_host_port(self.config.smtp.listen)

    @property
    def http_url(self) -> str:
        host, port = split_host_port(self.config.http.listen)
        return f"http://{host}:{port}"

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.bridge = Bridge(self.config, pool=self.pool, office=self.office)
        try:
            await self.bridge.start()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            await self.bridge.stop()
            return
        self._started.set()
        await self._stop.wait()
        await self.bridge.stop()

    def start(self) -> BridgeThread:
        self._thread.start()
        if not self._started.wait(60):
            raise RuntimeError("the bridge did not start within 60 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        self.store.close()
