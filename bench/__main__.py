"""`python -m bench [--runs N] [--events N]`: see bench/__init__.py."""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "core"
FUNCTIONS = ROOT / "functions"
API_FUNCTION = "api"
IMPORT_TARGET = 1.5  # cold import of the API function / import boto3
RULES_TARGET = 1.0  # select_for_person / json.loads, same events
SEED = 20250310

# What a deployed function has in its environment (template.yaml Globals), so that the import
# does what it does in Lambda (settings are read lazily, but a module may still look at them).
FUNCTION_ENV = {
    "TABLE_NAME": "calsync-bench",
    "POWERTOOLS_SERVICE_NAME": "calsync",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_METRICS_NAMESPACE": "calsync",
    "MEETING_HOSTS": "meet.calsync.test,zoom.us,teams.microsoft.com,meet.google.com,webex.com",
    "LEGACY_HOSTS": "classic.calsync.test",
    "LEGACY_ORGANIZERS": "@classic.calsync.test",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
}

_TIMER = (
    "import sys; sys.path[:0] = {path!r}; import time; t = time.perf_counter(); "
    "import {module}; print(time.perf_counter() - t)"
)


# ------------------------------------------------------------------------------ helpers


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def verdict(ratio: float, target: float) -> str:
    return f"{'met' if ratio <= target else 'NOT met'} (target <= {target:.1f})"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


# ------------------------------------------------------------------------------ (a) cold import


@dataclass
class ImportTarget:
    name: str
    module: str
    path: list[str]
    times: list[float]
    error: str | None = None


def _import_once(target: ImportTarget, env: dict[str, str]) -> float:
    code = _TIMER.format(path=target.path, module=target.module)
    # -I: no user site, no PYTHON* variables, no current directory on sys.path: only what we put there
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"]
        raise RuntimeError(lines[-1])
    return float(proc.stdout.strip().splitlines()[-1])


def _function_paths() -> dict[str, list[str]]:
    """What each function has on its path in Lambda: its code directory and its layers
    (template.yaml), by code directory name."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from local.template import functions, layer_paths, load

    return {
        fn.code_uri.name: [str(fn.code_uri), *(str(p) for p in layer_paths({lid: fn}))]
        for lid, fn in functions(load()).items()
    }


def bench_imports(runs: int) -> int:
    env = {**os.environ, **FUNCTION_ENV}
    targets = [ImportTarget("import boto3 (baseline)", "boto3", [], [])]
    paths = _function_paths()
    for app in sorted(FUNCTIONS.glob("*/app.py")):
        path = paths.get(app.parent.name, [str(app.parent), str(LAYER)])
        targets.append(ImportTarget(app.parent.name, "app", path, []))
    missing = [d.name for d in sorted(FUNCTIONS.iterdir()) if d.is_dir() and not (d / "app.py").exists()]

    # one untimed round: compiles .pyc files, finds the ones that do not import at all
    for target in targets:
        try:
            _import_once(target, env)
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            target.error = str(exc)
    for _ in range(runs):  # interleaved: each round imports every target once
        for target in targets:
            if target.error is None:
                target.times.append(_import_once(target, env))

    base = targets[0]
    if base.error is not None:
        print(f"(a) cannot import boto3: {base.error}")
        return 1
    base_median = statistics.median(base.times)
    rows: list[list[str]] = []
    failed = 0
    for target in targets:
        if target.error is not None:
            rows.append([target.name, "-", "-", "-", f"skipped: does not import ({target.error})"])
            continue
        median = statistics.median(target.times)
        ratio = median / base_median
        note = ""
        if target.name == API_FUNCTION:
            note = verdict(ratio, IMPORT_TARGET)
            failed += ratio > IMPORT_TARGET
        rows.append([target.name, fmt_ms(median), fmt_ms(min(target.times)), f"{ratio:5.2f}x", note])
    for name in missing:
        rows.append([name, "-", "-", "-", "skipped: no app.py yet"])
    if not any(t.name == API_FUNCTION for t in targets):
        rows.append([API_FUNCTION, "-", "-", "-", "skipped: functions/api/app.py does not exist yet"])

    print(f"(a) cold import in a fresh interpreter ({sys.executable}, median of {runs} interleaved runs)")
    print(table(["function", "median", "min", "vs boto3", "note"], rows))
    print()
    return failed


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
    """See bench/sharing.py: write cost of one moved event at 1, 10, 100, 1,000 subscribers."""
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
        choices=["imports", "rules", "caldav", "microsoft", "google", "ical", "fullsync", "cost", "sharing"],
        help="run one benchmark only",
    )
    args = parser.parse_args(argv)
    missed = 0
    if args.only in (None, "imports"):
        missed += bench_imports(args.runs)
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
