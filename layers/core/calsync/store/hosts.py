"""A request budget per CalDAV server host (issue 16 B; docs/adr/0020, docs/providers/icloud.md).

One small item per host, ``SRV#<host> / BUDGET``:
- a token bucket of poll jobs per minute (``rate`` tokens a minute, at most ``rate`` held): the
  poll shard takes one token per job it sends to the host, for its whole page at once (``take``:
  one conditional write per host and page, never one per job — the sync of an unchanged calendar
  stays free of writes, S3); the calendars beyond the tokens granted are deferred to the next run.
  A poll job's requests are one PROPFIND when nothing changed (the bulk of a poll), a few more
  when something did: the budget counts jobs, not single requests.
- ``backoffUntil``: the instant a 429 or 503 with Retry-After (RFC 9110 §10.2.3, seconds or an
  HTTP-date) asked us to wait until (``back_off``; only ever moved later).

Every write is conditional: the bucket by optimistic concurrency on a version (``n``) that each
take increments, the backoff only forward; concurrent sync workers of one host never lose a
token or shorten a backoff.
The sync worker reads its host's item before the first request (one GetItem) and, while the host
backs off, retries the job later without contacting it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from calsync.domain.errors import Conflict
from calsync.store import keys
from calsync.store.repository import _mapped_errors

DEFAULT_JOBS_PER_MINUTE = 300  # CALDAV_HOST_JOBS_PER_MINUTE; why this default: docs/adr/0020
DEFAULT_BACKOFF = timedelta(seconds=60)  # a 429/503 without (a readable) Retry-After
MAX_BACKOFF = timedelta(hours=1)  # a Retry-After further away is capped
_TAKE_ATTEMPTS = 8
SK = "BUDGET"


def configured_rate() -> int:
    """``CALDAV_HOST_JOBS_PER_MINUTE`` (template parameter CaldavHostJobsPerMinute), else the default."""
    value = os.environ.get("CALDAV_HOST_JOBS_PER_MINUTE", "")
    return max(1, int(value)) if value.isdigit() else DEFAULT_JOBS_PER_MINUTE


def host_key(host: str) -> dict[str, str]:
    return {"pk": f"SRV#{host.lower()}", "sk": SK}


@dataclass(frozen=True, slots=True)
class HostState:
    host: str
    tokens: float  # as of ``at``
    at: datetime | None
    backoff_until: datetime | None
    version: int = 0  # grows with each token taken (the condition of the next take)

    def available(self, now: datetime, rate: int) -> float:
        if self.at is None:
            return float(rate)
        return min(float(rate), self.tokens + max(0.0, (now - self.at).total_seconds()) * rate / 60)

    def backoff_for(self, now: datetime) -> int:
        """Seconds the host asked us to wait from ``now`` (0: none)."""
        if self.backoff_until is not None and self.backoff_until > now:
            return max(1, int((self.backoff_until - now).total_seconds() + 0.999))
        return 0


def _state(host: str, item: dict[str, Any] | None) -> HostState:
    if item is None:
        return HostState(host, 0.0, None, None)
    until = item.get("backoffUntil")
    return HostState(
        host,
        float(item.get("tokens", 0)),
        keys.parse_iso(str(item["at"])) if item.get("at") else None,
        keys.parse_iso(str(until)) if until else None,
        int(item.get("n", 0)),
    )


class HostBudgets:
    def __init__(self, table: Any, rate: int = DEFAULT_JOBS_PER_MINUTE) -> None:
        self._table = table
        self.rate = rate

    def state(self, host: str) -> HostState:
        with _mapped_errors("read host budget"):
            item = self._table.get_item(Key=host_key(host), ConsistentRead=True).get("Item")
        return _state(host, item)

    def take(self, host: str, now: datetime, wanted: int) -> int:
        """Take up to ``wanted`` tokens (one per sync job the poll sends to the host): how many were
        granted (0 while the host backs off). Conditional on the bucket's version: a take that lost
        a race reads the bucket again; one that keeps losing grants nothing (the jobs wait a run)."""
        for _ in range(_TAKE_ATTEMPTS):
            state = self.state(host)
            if state.backoff_until is not None and state.backoff_until > now:
                return 0
            granted = min(wanted, int(state.available(now, self.rate)))
            if granted <= 0:
                return 0
            left = Decimal(str(round(state.available(now, self.rate) - granted, 3)))
            values: dict[str, Any] = {":t": left, ":at": keys.iso(now), ":n": state.version + 1}
            if state.version:
                values[":old"] = state.version
            try:
                with _mapped_errors("take host budget"):
                    self._table.update_item(
                        Key=host_key(host),
                        UpdateExpression="SET tokens = :t, #at = :at, n = :n",
                        ConditionExpression="n = :old" if state.version else "attribute_not_exists(n)",
                        ExpressionAttributeNames={"#at": "at"},
                        ExpressionAttributeValues=values,
                    )
                return granted
            except Conflict:
                continue  # another shard took some meanwhile: read again
        return 0

    def back_off(self, host: str, until: datetime) -> bool:
        """The host asked us to wait until ``until``; never shortens a longer backoff. False: a
        backoff at least as long was already recorded."""
        with contextlib.suppress(Conflict), _mapped_errors("store host backoff"):
            self._table.update_item(
                Key=host_key(host),
                UpdateExpression="SET backoffUntil = :u",
                ConditionExpression="attribute_not_exists(backoffUntil) OR backoffUntil < :u",
                ExpressionAttributeValues={":u": keys.iso(until)},
            )
            return True
        return False
