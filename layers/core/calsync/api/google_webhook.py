"""The Google push webhook's decision (S1, X2; API.md "Webhooks"). No Google SDK: headers, one
GetItem, and a job to enqueue.

- no channel id, or one that is not ours, unknown, or no longer active (stopped, or retired after
  renewal and past its overlap): 200 and dropped (Google keeps sending briefly after a stop);
- the token (or the resource id) does not match: 401, nothing enqueued;
- ``sync`` (the first message of a new channel): 200, nothing to do;
- anything else (``exists``, ``not_exists``): 200 and a sync job for the calendar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from calsync.store.channels import ChannelStore
from calsync.sync.jobs import SyncJob

MAX_HEADER = 512


@dataclass(frozen=True, slots=True)
class Decision:
    status: int
    outcome: str  # "enqueue", "sync", "unknown", "stopped", "forged"
    job: SyncJob | None = None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower())
    return value if isinstance(value, str) and len(value) <= MAX_HEADER else ""


def decide(headers: Mapping[str, str], channels: ChannelStore) -> Decision:
    """``headers``: lower-cased names (as API Gateway's payload 2.0 delivers them)."""
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
    job = SyncJob(
        calendar_id=channel.calendar_id,
        user_id=channel.user_id,
        account_id=channel.account_id,
        reason="push",
    )
    return Decision(200, "enqueue", job)
