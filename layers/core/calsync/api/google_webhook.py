"""The Google push webhook's decision (S1, X2; API.md "Webhooks"). No Google SDK: headers, one
GetItem, at most two conditional writes, and a job to enqueue.

- no channel id, or one that is not ours, unknown, or no longer active (stopped, or retired after
  renewal and past its overlap): 200 and dropped (Google keeps sending briefly after a stop);
- the token (or the resource id) does not match: 401, nothing enqueued;
- ``sync`` (the first message of a new channel): 200, nothing to do;
- no ``X-Goog-Message-Number`` (Google always sends one): 400, nothing enqueued;
- a message number not above the last one taken for the channel (a replay, or a late copy of a
  notification a newer one covers): 200 and dropped;
- a push job of the calendar already queued and not started: 200, coalesced into it;
- anything else (``exists``, ``not_exists``): 200 and a sync job for the calendar.

Why dropping and coalescing lose no change: Google's notifications carry no data, and a sync reads
everything changed since its stored cursor. A message number taken is given back (and the queued
marker cleared) when its job cannot be queued, so Google's retry passes; the queued marker is
cleared when the job starts, before it reads (calsync.store.channels).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from calsync.observability import logger
from calsync.store.channels import Channel, ChannelStore
from calsync.sync.jobs import SyncJob

MAX_HEADER = 512
MAX_MESSAGE_NUMBER = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Decision:
    status: int
    # "enqueue", "sync", "unknown", "stopped", "forged", "malformed", "replay", "coalesced"
    outcome: str
    job: SyncJob | None = None
    channel: Channel | None = None
    number: int = 0


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower())
    return value if isinstance(value, str) and len(value) <= MAX_HEADER else ""


def _message_number(headers: Mapping[str, str]) -> int | None:
    raw = _header(headers, "X-Goog-Message-Number").strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    number = int(raw)
    return number if 1 <= number <= MAX_MESSAGE_NUMBER else None


def decide(headers: Mapping[str, str], channels: ChannelStore) -> Decision:
    """Authenticate (``headers``: lower-cased names, as API Gateway's payload 2.0 delivers them);
    reads only."""
    channel_id = _header(headers, "X-Goog-Channel-ID")
    channel = channels.get(channel_id) if channel_id else None
    if channel is None:
        return Decision(200, "unknown")
    # constant time: both digests are computed whatever the header holds
    token_ok = channel.token_matches(_header(headers, "X-Goog-Channel-Token"))
    resource_ok = _header(headers, "X-Goog-Resource-ID") == channel.resource_id
    if not (token_ok and resource_ok):
        return Decision(401, "forged")
    if channel.state == "stopped":
        return Decision(200, "stopped")
    state = _header(headers, "X-Goog-Resource-State")
    if state == "sync":
        return Decision(200, "sync")
    number = _message_number(headers)
    if number is None:
        return Decision(400, "malformed")
    job = SyncJob(
        calendar_id=channel.calendar_id,
        user_id=channel.user_id,
        account_id=channel.account_id,
        reason="push",
    )
    return Decision(200, "enqueue", job, channel, number)


def handle(
    headers: Mapping[str, str],
    channels: ChannelStore,
    enqueue: Callable[[SyncJob, str], object],
    now: datetime,
) -> Decision:
    """``decide``, then drop a replay, coalesce into a queued job, or enqueue (``enqueue(job,
    deduplication id)``; when it raises, the marker and the message number are given back and the
    exception goes on: a 503, so that Google retries)."""
    decision = decide(headers, channels)
    if decision.job is None or decision.channel is None:
        return decision
    claim = channels.claim_message(decision.channel, decision.number)
    if claim is None:
        return replace(decision, outcome="replay", job=None)
    marker = channels.mark_queued(decision.job.calendar_id, now)
    if marker is None:
        return replace(decision, outcome="coalesced", job=None)
    try:
        enqueue(decision.job, f"push-{marker}")
    except Exception:
        # best effort: the enqueue's failure is the one to report
        with contextlib.suppress(Exception):
            channels.clear_queued(decision.job.calendar_id, marker)
        with contextlib.suppress(Exception):
            channels.release_message(decision.channel, claim)
        logger.warning("push job not queued: marker and message number given back")
        raise
    return decision
