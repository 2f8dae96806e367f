"""`python -m bench [--runs N] [--events N]`: see bench/__init__.py."""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench import table

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "core"
RULES_TARGET = 1.0  # select_for_person / json.loads, same events
SEED = 20250310

# ------------------------------------------------------------------------------ helpers

__all__ = ["fmt_ms", "table", "verdict"]  # bench/*.py import them from here


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def verdict(ratio: float, target: float) -> str:
    return f"{'met' if ratio <= target else 'NOT met'} (target <= {target:.1f})"


# ------------------------------------------------------------------------------ (a) cold start


def bench_coldstart_section(
    runs: int, *, build: bool, only: list[str] | None, compiled: bool, build_dir: Path | None
) -> int:
    """See bench/coldstart.py: import + first answer of every function, from its built artifacts."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.coldstart import bench_coldstart
    from local.artifacts import BUILD_DIR

    return bench_coldstart(runs, build=build, only=only, compiled=compiled, build_dir=build_dir or BUILD_DIR)


# ------------------------------------------------------------------------------ (b) rules throughput


def generate(n: int, now: datetime, zone: ZoneInfo) -> list[Any]:
    """``n`` occurrences like one person's read returns them: the window and the day before it,
    timed and all-day, a few long, recurring, private, cancelled, legacy and duplicated."""
    from calsync.domain.models import Occurrence, Provider, Status, Visibility
    from calsync.domain.rules import window

    rnd = random.Random(SEED)
    ws, we = (t.astimezone(ZoneInfo("UTC")) for t in window(now, zone))
    span = int((we - ws).total_seconds()) + 86_400
    calendars = [f"cal-{i}" for i in range(4)]
    links = [
        None,
        None,
        "https://zoom.us/j/{n}",
        "https://meet.google.com/abc-{n}",
        "https://classic.calsync.test/{n}",
    ]
    out: list[Any] = []
    for i in range(n):
        cal = rnd.choice(calendars)
        title = f"Meeting {rnd.randrange(n // 3)}"
        link_tpl = rnd.choice(links)
        link = link_tpl.format(n=rnd.randrange(1000)) if link_tpl else None
        common: dict[str, Any] = {
            "visibility": Visibility.PRIVATE if rnd.random() < 0.05 else Visibility.DEFAULT,
            "meeting_link": link,
            "recurring": rnd.random() < 0.15,
            "updatable": rnd.random() > 0.03,
            "legacy": bool(link and "classic" in link),
            "status": Status.CANCELLED if rnd.random() < 0.02 else Status.CONFIRMED,
            "organizer": f"person{rnd.randrange(50)}@example.com",
            "etag": f'"{rnd.getrandbits(32):x}"',
        }
        if rnd.random() < 0.04:
            day = (ws - timedelta(days=1)).date() + timedelta(days=rnd.randrange(5))
            end_day: date = day + timedelta(days=rnd.choice([1, 1, 1, 2, 5]))
            out.append(
                Occurrence(
                    Provider.GOOGLE, "acc", cal, f"ev-{i}", title, start_date=day, end_date=end_day, **common
                )
            )
            continue
        if out and rnd.random() < 0.05 and out[-1].start is not None:  # the same meeting on another calendar
            prev = out[-1]
            title, start, common["meeting_link"] = prev.title, prev.start, prev.meeting_link
        else:
            start = ws - timedelta(days=1) + timedelta(seconds=rnd.randrange(span) // 900 * 900)
        length = timedelta(minutes=rnd.choice([15, 30, 30, 60, 60, 60, 90, 120, 30 * 60, 72 * 60]))
        out.append(
            Occurrence(
                Provider.GOOGLE, "acc", cal, f"ev-{i}", title, start=start, end=start + length, **common
            )
        )
    return out


def interleaved(runs: int, *fns: Callable[[], object]) -> list[list[float]]:
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:  # warm-up
        fn()
    for _ in range(runs):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return times


def bench_rules(runs: int, n: int) -> int:
    sys.path.insert(0, str(LAYER))
    from calsync.domain.models import UTC, OwnerSettings
    from calsync.domain.rules import select_for_person
    from calsync.store.items import item_to_occurrence, occurrence_to_item

    now = datetime(2025, 3, 10, 9, 30, tzinfo=UTC)
    zone = ZoneInfo("Europe/Berlin")
    owner = OwnerSettings(zone, frozenset({"cal-0"}))
    occurrences = generate(n, now, zone)  # constructed beforehand: not timed
    items = [occurrence_to_item(o, "primary") for o in occurrences]
    for item, occ in zip(items, occurrences, strict=True):
        item.update({"pk": "USER#bench", "sk": f"EV#{occ.id}#0"})
    text = json.dumps(items)
    selection = select_for_person(occurrences, now, owner)

    t_json, t_rules, t_map = interleaved(
        runs,
        lambda: json.loads(text),
        lambda: select_for_person(occurrences, now, owner),
        lambda: [item_to_occurrence(i) for i in items],
    )
    m_json, m_rules, m_map = (statistics.median(t) for t in (t_json, t_rules, t_map))
    ratio = m_rules / m_json
    rows = [
        [
            "json.loads (baseline)",
            fmt_ms(m_json),
            f"{n / m_json:12,.0f}",
            "1.00x",
            f"{len(text) / 1e6:.1f} MB JSON",
        ],
        [
            "select_for_person",
            fmt_ms(m_rules),
            f"{n / m_rules:12,.0f}",
            f"{ratio:4.2f}x",
            verdict(ratio, RULES_TARGET),
        ],
        ["item_to_occurrence (info)", fmt_ms(m_map), f"{n / m_map:12,.0f}", f"{m_map / m_json:4.2f}x", ""],
    ]
    print(
        f"(b) rules throughput: {n:,} events (seed {SEED}; {len(selection.listed)} listed, "
        f"{len(selection.excluded)} excluded), median of {runs} interleaved runs"
    )
    print(table(["step", "median", "events/s", "vs json", "note"], rows))
    return int(ratio > RULES_TARGET)


# ------------------------------------------------------------------------------ (c) CalDAV polls


def bench_caldav_section() -> int:
    """See bench/caldav.py: CalDAV requests and DynamoDB writes per poll, by calendar size."""
    for path in (LAYER, ROOT / "layers" / "caldav", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from bench.caldav import bench_caldav

    return bench_caldav()


# ------------------------------------------------------------------------------ (d) Microsoft


def bench_microsoft_section() -> int:
    """See bench/microsoft.py: Graph calls and writes per notification; peak Graph per mailbox."""
    for path in (LAYER, ROOT / "layers" / "microsoft", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from bench.microsoft import bench_microsoft

    return bench_microsoft()


# ------------------------------------------------------------------------------ (e) Google


def bench_google_section() -> int:
    """See bench/google.py: Google API calls and writes per notification; built sizes."""
    for path in (LAYER, ROOT / "layers" / "google", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from bench.google import bench_google

    return bench_google()


# ------------------------------------------------------------------------------ (f) iCalendar


def bench_ical_section(runs: int) -> int:
    """See bench/ical.py: the largest corpus file read, as a ratio to icalendar's parse alone."""
    for path in (LAYER, ROOT / "layers" / "caldav", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from bench.ical import bench_ical

    return bench_ical(runs)


# ------------------------------------------------------------------------------ (g) full sync


def bench_fullsync_section() -> int:
    """See bench/fullsync.py: events per second of the full sync of a large calendar."""
    for path in (LAYER, ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from bench.fullsync import bench_fullsync

    return bench_fullsync()


# ------------------------------------------------------------------------------ (h) cost


def bench_cost_section() -> int:
    """See bench/cost.py: reads and updates per 1,000 people per month, polling vs live."""
    for path in (LAYER, ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from bench.cost import bench_cost

    return bench_cost()


# ------------------------------------------------------------------------------ (i) shared calendars


def bench_sharing_section() -> int:
    """See bench/sharing.py: write cost of one moved event at 1, 10, 100, 1,000 subscribers, and one
    subscriber's read, before (copies) and after (wide calendars, ADR 0021)."""
    for path in (LAYER, ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from bench.sharing import bench_sharing

    return bench_sharing()


def main(argv: list[str] | None = None) -> int:
    # the functions run in-process in sections (c)-(e): keep their logs and metrics out of the tables
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="interleaved runs per measurement (default 7)")
    parser.add_argument("--events", type=int, default=10_000, help="events for the rules benchmark")
    parser.add_argument(
        "--only",
        choices=[
            "coldstart",
            "rules",
            "caldav",
            "microsoft",
            "google",
            "ical",
            "fullsync",
            "cost",
            "sharing",
        ],
        help="run one benchmark only",
    )
    parser.add_argument("--build", action="store_true", help="(a): sam build the host artifacts first")
    parser.add_argument(
        "--shipped-only", action="store_true", help="(a): without the compiled copies (half the time)"
    )
    parser.add_argument(
        "--build-dir", type=Path, help="(a): this host build instead of .aws-sam/host/build (to compare)"
    )
    parser.add_argument("functions", nargs="*", metavar="LogicalId", help="(a): only these functions")
    args = parser.parse_args(argv)
    missed = 0
    if args.only in (None, "coldstart"):
        missed += bench_coldstart_section(
            args.runs,
            build=args.build,
            only=args.functions,
            compiled=not args.shipped_only,
            build_dir=args.build_dir.resolve() if args.build_dir else None,
        )
    if args.only in (None, "rules"):
        missed += bench_rules(max(args.runs, 9), args.events)
    if args.only in (None, "caldav"):
        print()
        print("-" * 100)
        missed += bench_caldav_section()
    if args.only in (None, "microsoft"):
        print()
        print("-" * 100)
        missed += bench_microsoft_section()
    if args.only in (None, "google"):
        print()
        print("-" * 100)
        missed += bench_google_section()
    if args.only in (None, "ical"):
        print()
        print("-" * 100)
        missed += bench_ical_section(min(args.runs, 5))
    if args.only in (None, "fullsync"):
        print()
        print("-" * 100)
        missed += bench_fullsync_section()
    if args.only in (None, "cost"):
        print()
        print("-" * 100)
        missed += bench_cost_section()
    if args.only in (None, "sharing"):
        print()
        print("-" * 100)
        missed += bench_sharing_section()
    print()
    print("all targets met" if missed == 0 else f"{missed} target(s) not met (see above)")
    return 0  # informational: no pass/fail


if __name__ == "__main__":
    sys.exit(main())
