"""Cover page cost: CPU milliseconds per cover, and per message with 1 and 10 recipients.

    python bench/cover_page.py [--rounds 30]

Measured with `time.process_time()` in this process, as a document worker would pay it:
the first cover (which parses the fonts), then covers in steady state (different recipients,
so nothing is reused between them but the fonts), the text-only cover (a third font), and
whole messages: the covers of 1 and of 10 recipients, drawn as the intake draws them
(`render_covers`, one pool task per message; on a tree without it, one `render_cover` each).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.documents import cover
from bridge.models import CoverNote

TEXT = "Dear Jane,\n\nplease find the signed contract attached.\n\nAlice"


def note(number: int) -> CoverNote:
    return CoverNote(
        to_name=f"Recipient {number:03d} Practice",
        to_number=f"+1 212-555-{number:04d}",
        from_name="Alice Example",
        from_number="+1 212-555-0100",
        subject="Referral: patient records",
        notes="Please call me when it arrives.",
        date=datetime(2024, 5, 3, 14, 5, tzinfo=UTC),
        pages=4,
    )


def covers_of(notes: Sequence[CoverNote]) -> list[bytes]:
    batch: Callable[[Sequence[CoverNote]], list[bytes]] | None = getattr(
        cover, "render_covers", None
    )
    if batch is not None:
        return batch(notes)
    return [cover.render_cover(n) for n in notes]


def cpu_ms(work: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        work()
        times.append((time.process_time() - started) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30, help="repetitions per figure (30)")
    args = parser.parse_args(argv)
    counter = iter(range(10**6))

    [first] = cpu_ms(lambda: cover.render_cover(note(next(counter))), 1)
    rows = [
        ("first cover in a process (parses the fonts)", [first]),
        (
            "cover, steady state",
            cpu_ms(lambda: cover.render_cover(note(next(counter))), args.rounds),
        ),
        (
            "text-only mail on its cover (third font)",
            cpu_ms(lambda: cover.render_cover(note(next(counter)), TEXT), args.rounds),
        ),
        ("message, 1 recipient", cpu_ms(lambda: covers_of([note(next(counter))]), args.rounds)),
        (
            "message, 10 recipients",
            cpu_ms(
                lambda: covers_of([note(next(counter)) for _ in range(10)]),
                max(args.rounds // 5, 3),
            ),
        ),
    ]
    print(f"{'CPU ms':<46} {'median':>8} {'min':>8} {'max':>8}")
    for label, times in rows:
        print(f"{label:<46} {statistics.median(times):>8.1f} {min(times):>8.1f} {max(times):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
