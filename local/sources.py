"""Event sources that run for real: SQS pollers and schedules.

- One poller thread per SQS event source: long-polls (1 s) its queue, calls the function with an SQS
  batch event, and deletes what succeeded. With ``ReportBatchItemFailures`` the records listed in
  ``batchItemFailures`` are left on the queue, so they come back after the visibility timeout (and
  reach the dead-letter queue after ``maxReceiveCount``); a function that raises leaves them all.
- One scheduler thread: fires each Schedule/ScheduleV2 event at its rate divided by
  ``CALSYNC_SCHEDULE_SPEEDUP`` with an EventBridge scheduled-event payload.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local.template import ACCOUNT_ID, ScheduleSource, SqsSource

Invoke = Callable[[str, Any], Any]
Log = Callable[[str], None]

# ---------------------------------------------------------------------------- SQS


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS batch event, shaped as Lambda's event source mapping sends it."""
    attributes = {k: str(v) for k, v in (message.get("Attributes") or {}).items()}
    message_attributes: dict[str, Any] = {}
    for name, attr in (message.get("MessageAttributes") or {}).items():
        binary = attr.get("BinaryValue")
        message_attributes[name] = {
            "stringValue": attr.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
            "stringListValues": attr.get("StringListValues", []),
            "binaryListValues": attr.get("BinaryListValues", []),
            "dataType": attr.get("DataType", "String"),
        }
        message_attributes[name] = {k: v for k, v in message_attributes[name].items() if v is not None}
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_ids(result: Any) -> set[str] | None:
    """The ``itemIdentifier``s of a partial batch response; None when the answer is not one."""
    if not isinstance(result, dict) or "batchItemFailures" not in result:
        return None
    return {str(f["itemIdentifier"]) for f in result.get("batchItemFailures") or [] if "itemIdentifier" in f}


def to_delete(records: list[dict[str, Any]], result: Any, report_failures: bool) -> list[dict[str, Any]]:
    """The records that succeeded (and are deleted from the queue)."""
    if not report_failures:
        return records
    failed = failed_ids(result)
    if failed is None:
        return records
    known = {r["messageId"] for r in records}
    if failed - known:  # Lambda: an unknown identifier fails the whole batch
        return []
    return [r for r in records if r["messageId"] not in failed]


class SqsPoller(threading.Thread):
    def __init__(
        self,
        function: str,
        source: SqsSource,
        *,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        region: str,
        invoke: Invoke,
        stop: threading.Event,
        log: Log,
    ) -> None:
        super().__init__(name=f"sqs-{function}-{source.event_name}", daemon=True)
        self.function, self.source, self.sqs = function, source, sqs
        self.queue_url, self.queue_arn, self.region = queue_url, queue_arn, region
        self.invoke, self.stop_event, self.log = invoke, stop, log

    def poll_once(self) -> int:
        """Receive one batch, run the function, delete what succeeded; the number of records."""
        resp = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(self.source.batch_size, 10)),
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages") or []
        if not messages:
            return 0
        records = [sqs_record(m, self.queue_arn, self.region) for m in messages]
        try:
            result = self.invoke(self.function, {"Records": records})
        except Exception as exc:
            self.log(f"sqs  {self.function}: batch of {len(records)} failed ({exc}); they come back later")
            return len(records)
        done = to_delete(records, result, self.source.report_batch_item_failures)
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
        self.log(f"sqs  {self.function}: {len(records)} record(s), {len(records) - len(done)} failed")
        return len(records)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception as exc:
                if self.stop_event.is_set():
                    return
                self.log(f"sqs  {self.function}: polling failed: {exc}")
                self.stop_event.wait(1.0)


# ---------------------------------------------------------------------------- schedules

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    m = _RATE.match(expression.strip())
    if not m:
        return None
    return int(m.group(1)) * _UNITS[m.group(2).rstrip("s")]


def _field(spec: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """The values of one cron field; None for "any" (* or ?)."""
    if spec in ("*", "?"):
        return None
    out: set[int] = set()
    for item in spec.split(","):
        part, _, step_s = item.partition("/")
        step = int(step_s) if step_s else 1
        if part in ("*", ""):
            a, b = low, high
        elif "-" in part:
            a_s, b_s = part.split("-", 1)
            a, b = _num(a_s, names), _num(b_s, names)
        else:
            a = _num(part, names)
            b = high if step > 1 else a
        out.update(range(a, b + 1, step))
    return out


def _num(text: str, names: dict[str, int] | None) -> int:
    key = text.strip().upper()
    return names[key] if names and key in names else int(key)


_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}


def cron_next(expression: str, after: datetime) -> datetime | None:
    """The next time (UTC) an EventBridge ``cron(min hour dom month dow year)`` fires after ``after``.

    Supports numbers, names, ranges, lists, steps, * and ?; not L, W or #. None when unsupported.
    """
    m = re.match(r"^cron\((.+)\)$", expression.strip())
    if not m:
        return None
    parts = m.group(1).split()
    if len(parts) != 6 or any(c in m.group(1) for c in "LW#"):
        return None
    minutes, hours = _field(parts[0], 0, 59), _field(parts[1], 0, 23)
    dom, months = _field(parts[2], 1, 31), _field(parts[3], 1, 12, _MONTHS)
    dow = _field(parts[4], 1, 7, _DAYS)
    years = _field(parts[5], 1970, 2199)
    t = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = t + timedelta(days=366 * 5)
    while t < limit:
        day_ok = (
            (years is None or t.year in years)
            and (months is None or t.month in months)
            and (dom is None or t.day in dom)
            and (dow is None or (t.isoweekday() % 7) + 1 in dow)
        )
        if not day_ok:
            t = (t + timedelta(days=1)).replace(hour=0, minute=0)
            continue
        if hours is not None and t.hour not in hours:
            t = (t + timedelta(hours=1)).replace(minute=0)
            continue
        if minutes is None or t.minute in minutes:
            return t
        t += timedelta(minutes=1)
    return None


def scheduled_event(rule: str, now: datetime, region: str) -> dict[str, Any]:
    """EventBridge's "Scheduled Event" payload."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule}"],
        "detail": {},
    }


@dataclass
class _Job:
    function: str
    source: ScheduleSource
    next_at: float  # monotonic


class Scheduler(threading.Thread):
    def __init__(
        self,
        jobs: Iterable[tuple[str, ScheduleSource]],
        *,
        speedup: float,
        region: str,
        invoke: Invoke,
        stop: threading.Event,
        log: Log,
        clock: Callable[[], float],
        wall: Callable[[], datetime],
    ) -> None:
        super().__init__(name="scheduler", daemon=True)
        self.speedup, self.region, self.invoke, self.stop_event, self.log = speedup, region, invoke, stop, log
        self.clock, self.wall = clock, wall
        self.manual = speedup == 0  # schedules fire only when invoked (calsync-local invoke)
        self.jobs: list[_Job] = []
        self.skipped: list[str] = []
        for fn, src in jobs:
            if not src.enabled:
                continue
            delay = self.delay(src)
            if delay is None:
                self.skipped.append(f"{fn}.{src.event_name} ({src.expression}: not supported locally)")
                continue
            self.jobs.append(_Job(fn, src, clock() + delay))

    def delay(self, src: ScheduleSource) -> float | None:
        """Seconds until ``src`` fires next; None: its expression is not supported locally."""
        every = rate_seconds(src.expression)
        if every is None:
            now = self.wall()
            nxt = cron_next(src.expression, now)
            if nxt is None:
                return None
            every = (nxt - now).total_seconds()
        return math.inf if self.manual else every / self.speedup

    def fire_due(self) -> None:
        for job in self.jobs:
            if self.clock() < job.next_at:
                continue
            event = (
                json.loads(job.source.input)
                if job.source.input
                else scheduled_event(
                    f"calsync-local-{job.function}-{job.source.event_name}", self.wall(), self.region
                )
            )
            try:
                result = self.invoke(job.function, event)
                self.log(
                    f"cron {job.function} ({job.source.expression}): {json.dumps(result, default=str)[:200]}"
                )
            except Exception as exc:
                self.log(f"cron {job.function} ({job.source.expression}) failed: {exc}")
            job.next_at = self.clock() + (self.delay(job.source) or 60.0)

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.fire_due()
            wait = min((j.next_at for j in self.jobs), default=self.clock() + 1.0) - self.clock()
            self.stop_event.wait(max(0.05, min(wait, 1.0)))
