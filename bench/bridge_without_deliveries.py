"""`faxbridge serve -c CONFIG` whose fax worker never starts: deliveries stay out of a benchmark.

The SMTP intake (parse, convert, cover page, files, smtplog, fsync, commit) runs exactly as
in `faxbridge serve`; only `FaxWorker.run` waits for the shutdown instead of claiming jobs,
so the simulator's sends and callbacks cost nothing while the benchmark measures. The jobs
stay queued in the store, where the benchmark counts them.

    python bench/bridge_without_deliveries.py CONFIG
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.cli import main
from bridge.worker import FaxWorker


async def _held(self: FaxWorker) -> None:
    """Wait for `stop()` (SIGTERM) without claiming anything."""
    while not self._stopping.is_set():
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    FaxWorker.run = _held  # type: ignore[method-assign]
    sys.exit(main(["serve", "-c", sys.argv[1]]))
