"""Push channels at Google (S1, S4): one ``events.watch`` channel per synced calendar, a random
per-channel token (only its digest is stored), renewal well before expiry: a new channel first,
then the old one stopped at once (Google sends every change to every live channel, so two live
channels mean two pushes and two syncs per change; the new channel exists before the old one is
stopped, so no change falls between them).

At most one live channel per calendar: whoever opens a channel (a sync's ``ensure``, the renewal)
then keeps only the newest active one (latest expiry, then id) and stops the rest. Two of them
racing pick the same newest among what both see, and the next sync's ``ensure`` stops any that
one of them did not see.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from calsync.domain.models import UTC
from calsync.observability import logger
from calsync.store.channels import Channel, ChannelStore, new_channel_id, new_token, token_digest
from calsync.sync.source import SourceError
from calsync_google.client import Caller

CHANNEL_TTL = timedelta(days=7)  # what we ask for; Google may give less
# renewed when it expires within 4 days: at 3/7 of a 7-day life (S4: at half of it at the latest)
RENEW_BEFORE = timedelta(days=4)
OVERLAP = timedelta(minutes=10)  # channels stored ``retiring`` by earlier versions: stopped after this


def watch(
    service: Any,
    caller: Caller,
    store: ChannelStore,
    *,
    google_calendar_id: str,
    calendar_id: str,
    user_id: str,
    account_id: str,
    address: str,
    now: datetime,
) -> Channel:
    channel_id, token = new_channel_id(calendar_id), new_token()
    body: dict[str, Any] = {
        "id": channel_id,
        "type": "web_hook",
        "address": address,
        "token": token,
        "expiration": int((now + CHANNEL_TTL).timestamp() * 1000),
    }
    answer = caller(service.events().watch(calendarId=google_calendar_id, body=body))
    expires = datetime.fromtimestamp(int(answer.get("expiration") or body["expiration"]) / 1000, UTC)
    channel = Channel(
        channel_id=channel_id,
        calendar_id=calendar_id,
        user_id=user_id,
        account_id=account_id,
        resource_id=str(answer["resourceId"]),
        token_sha256=token_digest(token),
        expires_at=expires,
    )
    store.put(channel)
    logger.info("push channel opened", extra={"calendar_id": calendar_id, "expires_at": expires.isoformat()})
    return channel


def stop(service: Any, caller: Caller, store: ChannelStore, channel: Channel) -> None:
    """Stop at Google (best effort: an unknown channel is fine) and forget it."""
    try:
        caller(service.channels().stop(body={"id": channel.channel_id, "resourceId": channel.resource_id}))
    except SourceError as exc:
        logger.info("channel stop refused (already gone?)", extra={"error": str(exc)})
    store.delete(channel)


def needs_channel(channels: list[Channel], now: datetime) -> bool:
    """No active channel that lives on past the renewal margin."""
    return not any(c.state == "active" and c.expires_at - now > RENEW_BEFORE for c in channels)


def newest(channels: list[Channel]) -> Channel | None:
    """The active channel to keep: the latest expiry (then the greatest id)."""
    active = [c for c in channels if c.state == "active"]
    return max(active, key=lambda c: (c.expires_at, c.channel_id), default=None)


def keep_one(service: Any, caller: Caller, store: ChannelStore, channels: list[Channel]) -> int:
    """Stop every channel but the newest active one; the number stopped."""
    keep = newest(channels)
    stopped = 0
    for channel in channels:
        if keep is None or channel.channel_id != keep.channel_id:
            stop(service, caller, store, channel)
            stopped += 1
    return stopped
