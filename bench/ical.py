"""(f) Reading the largest real-world iCalendar file of the corpus (issue 12).

``../shared/corpus/ics`` (outside the repository, see its README) holds a 1.65 MB export with
4,778 VEVENTs. Its read time through ``calsync_caldav.parse_resource`` is printed as a ratio to
``icalendar.Calendar.from_ical`` of the same text (the parse alone, which every reader pays):

- in a sync's horizon (S10: a day back, 60 days on) around the file's median event: what a
  CalDAV sync of this resource costs;
- in a horizon spanning every event of the file: the worst case, everything expanded;
- for comparison, recurring-ical-events (``of(from_ical(text)).between``) in the sync's horizon.

Medians of interleaved runs; times depend on the machine, ratios much less.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "ics"
TARGET = 1.0  # parse_resource in a sync's horizon / Calendar.from_ical
_DTSTART = re.compile(r"^DTSTART[^:\r\n]*:(\d{8})", re.MULTILINE)


def _median_day(text: str) -> date:
    days = sorted(datetime.strptime(d, "%Y%m%d").date() for d in _DTSTART.findall(text))
    return days[len(days) // 2]


def _span(text: str) -> tuple[datetime, datetime]:
    days = sorted(datetime.strptime(d, "%Y%m%d").date() for d in _DTSTART.findall(text))
    start = datetime.combine(days[0], datetime.min.time(), UTC) - timedelta(days=1)
    return start, datetime.combine(days[-1], datetime.min.time(), UTC) + timedelta(days=366)


def _timed(runs: int, fns: list[Callable[[], object]]) -> list[float]:
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def bench_ical(runs: int = 3) -> int:
    from bench.__main__ import fmt_ms, table, verdict

    files = sorted(CORPUS.glob("*.ics"), key=lambda p: p.stat().st_size) if CORPUS.is_dir() else []
    if not files:
        print(f"(f) iCalendar reading: skipped, the corpus is not there ({CORPUS})")
        return 0
    import recurring_ical_events  # type: ignore[import-untyped]
    from icalendar import Calendar

    from calsync_caldav import ParseContext, parse_resource

    path = files[-1]
    text = path.read_bytes().decode("utf-8", errors="replace")
    ctx = ParseContext(account_id="bench", calendar_id="bench")
    middle = datetime.combine(_median_day(text), datetime.min.time(), UTC)
    sync = (middle - timedelta(days=1), middle + timedelta(days=60))
    everything = _span(text)
    counts = {
        "sync": len(parse_resource(text, ctx, *sync).occurrences),
        "all": len(parse_resource(text, ctx, *everything).occurrences),
    }
    base, in_sync, in_all, theirs = _timed(
        runs,
        [
            lambda: Calendar.from_ical(text),
            lambda: parse_resource(text, ctx, *sync),
            lambda: parse_resource(text, ctx, *everything),
            lambda: list(recurring_ical_events.of(Calendar.from_ical(text)).between(*sync)),
        ],
    )
    ratio = in_sync / base
    rows = [
        ["icalendar Calendar.from_ical (baseline)", fmt_ms(base), "1.00x", "", ""],
        [
            f"parse_resource, sync horizon {sync[0]:%Y-%m-%d}..{sync[1]:%Y-%m-%d}",
            fmt_ms(in_sync),
            f"{ratio:4.2f}x",
            str(counts["sync"]),
            verdict(ratio, TARGET),
        ],
        [
            f"parse_resource, every event {everything[0]:%Y}..{everything[1]:%Y}",
            fmt_ms(in_all),
            f"{in_all / base:4.2f}x",
            str(counts["all"]),
            "worst case (info)",
        ],
        [
            "recurring-ical-events, sync horizon",
            fmt_ms(theirs),
            f"{theirs / base:4.2f}x",
            "",
            "for comparison",
        ],
    ]
    size = path.stat().st_size
    print(
        f"(f) iCalendar reading: {path.name} ({size / 1e6:.2f} MB, {text.count('BEGIN:VEVENT'):,} VEVENTs), "
        f"median of {runs} interleaved runs"
    )
    print(table(["read", "median", "vs from_ical", "occurrences", "note"], rows))
    return int(ratio > TARGET)
