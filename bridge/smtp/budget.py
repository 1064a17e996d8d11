"""A ceiling on the message bytes held in memory at once by messages being taken in.

Big messages arrive into unnamed spool files (bridge.smtp.data); only when one is complete is
it read into memory, parsed and converted. Without a ceiling, twenty scanners finishing 20 MB
each at the same moment would hold 400 MB at once. A message that would go over waits, first
come first served (its client waits for the reply, as with a slow disk), until earlier ones
are stored; one larger than the whole ceiling takes all of it, so nothing waits forever.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ByteBudget:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, size: int) -> int:
        """Wait until `size` bytes fit (at most the whole capacity); return what was taken."""
        size = min(size, self.capacity)
        if not self._waiting and self.used + size <= self.capacity:
            self.used += size
            return size
        entry = (size, asyncio.get_running_loop().create_future())
        self._waiting.append(entry)
        try:
            await entry[1]
        except asyncio.CancelledError:
            if entry[1].done() and not entry[1].cancelled():
                self.release(size)  # granted just as the client went away
            elif entry in self._waiting:
                self._waiting.remove(entry)
                self._grant()
            raise
        return size

    def release(self, size: int) -> None:
        self.used -= size
        self._grant()

    def _grant(self) -> None:
        while self._waiting:
            size, future = self._waiting[0]
            if future.done():
                self._waiting.popleft()
                continue
            if self.used + size > self.capacity:
                return
            self._waiting.popleft()
            self.used += size
            future.set_result(None)
