"""The document pool: CPU work in processes that may die, hang or run away, and a bridge that
does not go down with them.

PDF, image and MIME work runs in spawned worker processes (it is CPU-bound and holds the GIL).
A worker can die (the OOM killer, a crash in a C library), hang (a decoder that never returns)
or try to use unbounded CPU or memory on a crafted file. Each case ends one message, not the
service:

- a worker that dies breaks the whole `ProcessPoolExecutor` (`BrokenProcessPool`, for every task
  in it); the pool is rebuilt at once, each task caught in the breakage is tried once more in a
  worker of its own, and the one that kills that one too is answered 451 4.3.0 (try later);
- a task past `timeout_s` of wall-clock time is taken for hung: the workers are killed, the pool
  rebuilt, the message answered 451 4.3.0;
- each task may use `cpu_s` seconds of CPU (`RLIMIT_CPU`, renewed per task) and the worker
  `memory_mb` of address space (`RLIMIT_AS`); past either, the conversion stops with
  `ConversionLimit`, which the message's reply names with the file (552 5.3.4).

`restarts` and the metric `faxbridge_document_pool_restarts_total` count rebuilds; `/readyz`
reads `healthy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import resource
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import FrameType
from typing import Any

from bridge.errors import DocumentError

log = logging.getLogger(__name__)

POOL_DIED_REPLY = (
    "451 4.3.0 The document converter stopped while reading this message (it was restarted); "
    "please send it again later"
)


def hung_reply(timeout_s: float) -> str:
    return (
        f"451 4.3.0 The document converter did not finish this message within {timeout_s:g} s "
        "and was restarted; please send it again later"
    )


class ConversionLimit(BaseException):
    """A document needed more CPU time or memory than a worker may use.

    A BaseException so that no converter's broad `except Exception` turns it into "unreadable".
    `filename` is filled in by the code converting a part (see `bridge.documents.parts`).
    """

    def __init__(self, need: str) -> None:
        super().__init__(need)
        self.need = need
        self.filename: str | None = None

    def reply(self) -> str:
        what = f'"{self.filename}"' if self.filename else "This message"
        return f"552 5.3.4 {what} needs more than {self.need} to convert"


class PoolFault(DocumentError):
    """The pool failed this message (a worker died or hung): a temporary refusal."""


@dataclass(frozen=True)
class Limits:
    memory_mb: int  # address space per worker process; 0: none
    cpu_s: float  # CPU seconds per task; 0: none


# -- inside a worker process ----------------------------------------------------------------
_limits = Limits(0, 0.0)


def _worker_start(limits: Limits) -> None:
    global _limits
    _limits = limits
    if limits.memory_mb:
        size = limits.memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (size, hard if hard != -1 else -1))
    signal.signal(signal.SIGXCPU, _cpu_exhausted)
    import bridge.documents  # noqa: F401 - import once here, not on the first mail


def _cpu_exhausted(signum: int, frame: FrameType | None) -> None:
    # Past the soft limit the kernel sends SIGXCPU once a second; lift the limit first so the
    # handler's own unwinding is not interrupted again, then stop the conversion.
    resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    raise ConversionLimit(f"{_limits.cpu_s:g} s of CPU time")


def _run_limited(func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if _limits.cpu_s:
        times = os.times()
        used = times.user + times.system
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(used + _limits.cpu_s), hard))
    try:
        return func(*args)
    except MemoryError:
        raise ConversionLimit(f"{_limits.memory_mb} MB of memory") from None
    finally:
        if _limits.cpu_s:
            resource.setrlimit(
                resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            )


def _ping() -> int:
    """A worker started, its fonts parsed: otherwise the first cover would pay ~0.3 s."""
    from bridge.documents.text import preload_fonts

    preload_fonts()
    return os.getpid()


# -- in the bridge ------------------------------------------------------------------------------
class DocumentPool:
    """A `ProcessPoolExecutor` that is rebuilt when it breaks (one small interface: `run`)."""

    def __init__(
        self, size: int, *, memory_mb: int = 0, cpu_s: float = 0.0, timeout_s: float = 300.0
    ) -> None:
        self.size = size
        self.limits = Limits(memory_mb, cpu_s)
        self.timeout_s = timeout_s
        self.restarts = 0
        self.last_fault: str | None = None
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = self._new_executor()

    def _new_executor(self, size: int | None = None) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=size or self.size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(self.limits,),
        )

    @property
    def healthy(self) -> bool:
        return self._executor is not None

    async def warm_up(self) -> None:
        """Start every worker now, so the first mail does not wait for imports."""
        await asyncio.gather(*(self._submit(_ping) for _ in range(self.size)))

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """`func(*args)` in a worker, within the limits; raises `ConversionLimit` or `PoolFault`
        for this message only."""
        executor = self._executor or self._rebuild(None, "the pool could not be started")
        try:
            return await self._await(executor, func, args)
        except BrokenProcessPool:
            self._rebuild(executor, "a document worker died")
        except TimeoutError:
            self._rebuild(executor, f"a task ran past {self.timeout_s:g} s", kill=True)
            raise PoolFault(hung_reply(self.timeout_s)) from None
        # Every task in the pool failed with the one that killed a worker, and nothing tells
        # which it was: each is tried again in a worker of its own, so the culprit cannot
        # take the others down a second time.
        alone = self._new_executor(1)
        try:
            return await self._await(alone, func, args)
        except BrokenProcessPool:
            log.error("a document task killed its worker twice: its message is refused (451)")
            raise PoolFault(POOL_DIED_REPLY) from None
        except TimeoutError:
            raise PoolFault(hung_reply(self.timeout_s)) from None
        finally:
            self._discard(alone, kill=True)

    async def _await(
        self, executor: ProcessPoolExecutor, func: Callable[..., Any], args: tuple[Any, ...]
    ) -> Any:
        future = asyncio.wrap_future(executor.submit(_run_limited, func, args))
        return await asyncio.wait_for(future, self.timeout_s)

    async def _submit(self, func: Callable[..., Any]) -> Any:
        executor = self._executor or self._rebuild(None, "the pool could not be started")
        return await asyncio.wrap_future(executor.submit(func))

    def _rebuild(
        self, broken: ProcessPoolExecutor | None, why: str, *, kill: bool = False
    ) -> ProcessPoolExecutor:
        with self._lock:
            current = self._executor
            if current is not None and current is not broken:
                return current  # another task rebuilt it already
            if broken is not None:
                self.restarts += 1
                self.last_fault = why
                from bridge import metrics  # here: worker processes need none of it

                metrics.pool_restarted("hung" if kill else "died")
                log.error("document pool restarted: %s", why)
                self._discard(broken, kill=kill)
            self._executor = None
            try:
                self._executor = self._new_executor()
            except OSError as exc:
                log.error("document pool cannot be rebuilt: %s", exc)
                raise PoolFault(POOL_DIED_REPLY) from exc
            return self._executor

    @staticmethod
    def _discard(executor: ProcessPoolExecutor, *, kill: bool) -> None:
        if kill:
            # A hung worker never returns: the executor keeps no public handle on its
            # processes, so the private map is the only way to end them.
            processes = list(getattr(executor, "_processes", {}).values())
            for process in processes:
                with contextlib.suppress(Exception):
                    process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
