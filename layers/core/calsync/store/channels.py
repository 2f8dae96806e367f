"""Google push channels (S1, S4, X2): the channel -> calendar mapping, read by the webhook with one
GetItem (``CAL#<calendarId> / GCHAN#<channelId>``) and listed for renewal by expiry
(``GCHANEXP#<shard>``). Only a SHA-256 of each channel's token is stored; the webhook compares
digests in constant time. No Google SDK here: the webhook function uses this module.

Replays and bursts (issue 13 point 5; docs/providers/google.md "Push notifications"):

- ``lastMessage`` on the channel item: the highest ``X-Goog-Message-Number`` taken. A notification
  is taken only by a conditional UpdateItem that raises it (atomic: of 20 concurrent copies, one
  wins); a number not above it is a replay or a late duplicate, and dropped.
- ``CAL#<calendarId> / GPUSHQ``: a push job of the calendar is queued and has not started. Put with
  a condition by the webhook (one winner), deleted by the sync worker when the job starts, before
  it reads anything from Google: a notification meanwhile is coalesced into the queued job (whose
  sync has not read yet, so it sees that change); one after the delete queues a new job. A marker
  older than ``QUEUED_FOR`` no longer coalesces (a lost job can never silence the calendar).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from boto3.dynamodb.conditions import Key
from pydantic import BaseModel, ConfigDict

from calsync.domain.errors import Conflict
from calsync.store import keys
from calsync.store.repository import _mapped_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

ChannelState = Literal["active", "retiring", "stopped"]
QUEUED_FOR = timedelta(minutes=15)  # a push marker older than this coalesces nothing any more
# a renewal claim older than this is taken over (longer than a renewal task's 300 s invocation)
RENEWING_FOR = timedelta(minutes=15)
_CHANNEL_ID = re.compile(r"^([a-f0-9]{32})-([a-f0-9]{16})$")


def new_channel_id(calendar_id: str) -> str:
    return f"{calendar_id}-{secrets.token_hex(8)}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def calendar_of(channel_id: str) -> str | None:
    """The calendar id a channel id starts with; None when it is not one of ours."""
    m = _CHANNEL_ID.match(channel_id)
    return m.group(1) if m else None


class Channel(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    channel_id: str
    calendar_id: str
    user_id: str
    account_id: str
    resource_id: str
    token_sha256: str
    expires_at: datetime
    state: ChannelState = "active"
    stop_after: datetime | None = None  # retiring: stopped at Google once the overlap is over

    def token_matches(self, token: str) -> bool:
        return hmac.compare_digest(token_digest(token), self.token_sha256)


@dataclass(frozen=True, slots=True)
class Claim:
    """A message number taken for a channel, and the one it replaced (None: the first)."""

    number: int
    previous: int | None


class ChannelStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    # ---- replays and bursts (module docstring) -------------------------------------------------
    def _key(self, channel: Channel) -> dict[str, str]:
        return {"pk": keys.calendar_pk(channel.calendar_id), "sk": keys.google_channel_sk(channel.channel_id)}

    def claim_message(self, channel: Channel, number: int) -> Claim | None:
        """Take message ``number`` of the channel: None when it is not above the last one taken."""
        try:
            with _mapped_errors("take a push message"):
                old = self._table.update_item(
                    Key=self._key(channel),
                    UpdateExpression="SET lastMessage = :n",
                    ConditionExpression="attribute_exists(pk) AND "
                    "(attribute_not_exists(lastMessage) OR lastMessage < :n)",
                    ExpressionAttributeValues={":n": number},
                    ReturnValues="UPDATED_OLD",
                ).get("Attributes", {})
        except Conflict:
            return None
        previous = old.get("lastMessage")
        return Claim(number, None if previous is None else int(str(previous)))

    def release_message(self, channel: Channel, claim: Claim) -> None:
        """Give a taken number back (its job could not be queued, so Google's retry must pass)."""
        values: dict[str, Any] = {":n": claim.number}
        if claim.previous is None:
            update = "REMOVE lastMessage"
        else:
            update, values[":p"] = "SET lastMessage = :p", claim.previous
        try:
            with _mapped_errors("give a push message back"):
                self._table.update_item(
                    Key=self._key(channel),
                    UpdateExpression=update,
                    ConditionExpression="lastMessage = :n",
                    ExpressionAttributeValues=values,
                )
        except Conflict:
            pass  # a later message was taken meanwhile: its job covers this one

    def mark_queued(self, calendar_id: str, now: datetime) -> str | None:
        """Mark a push job of the calendar as queued; its id, or None when one is queued already
        (marked less than ``QUEUED_FOR`` ago)."""
        marker = secrets.token_hex(16)
        try:
            with _mapped_errors("mark a push job queued"):
                self._table.put_item(
                    Item={
                        "pk": keys.calendar_pk(calendar_id),
                        "sk": keys.GPUSH_QUEUED,
                        "type": "googlePushQueued",
                        "marker": marker,
                        "queuedAt": keys.iso(now),
                        "expiresAt": int((now + timedelta(days=1)).timestamp()),
                    },
                    ConditionExpression="attribute_not_exists(pk) OR queuedAt < :stale",
                    ExpressionAttributeValues={":stale": keys.iso(now - QUEUED_FOR)},
                )
        except Conflict:
            return None
        return marker

    def clear_queued(self, calendar_id: str, marker: str | None = None) -> None:
        """The queued push job starts (any marker goes), or could not be queued (only its own)."""
        kwargs: dict[str, Any] = {}
        if marker is not None:
            kwargs = {"ConditionExpression": "marker = :m", "ExpressionAttributeValues": {":m": marker}}
        try:
            with _mapped_errors("clear the queued push job"):
                self._table.delete_item(
                    Key={"pk": keys.calendar_pk(calendar_id), "sk": keys.GPUSH_QUEUED}, **kwargs
                )
        except Conflict:
            pass  # another job's marker: not ours to clear

    def put(self, channel: Channel) -> None:
        item: dict[str, Any] = {
            "pk": keys.calendar_pk(channel.calendar_id),
            "sk": keys.google_channel_sk(channel.channel_id),
            "type": "googleChannel",
            "userId": channel.user_id,
            "accountId": channel.account_id,
            "resourceId": channel.resource_id,
            "tokenSha256": channel.token_sha256,
            "expiresAt": keys.iso(channel.expires_at),
            "state": channel.state,
        }
        if channel.stop_after is not None:
            item["stopAfter"] = keys.iso(channel.stop_after)
        self._table.put_item(Item=item)
        self._table.put_item(
            Item={
                "pk": keys.channel_expiry_pk(keys.channel_shard(channel.channel_id)),
                "sk": keys.channel_expiry_sk(channel.expires_at, channel.channel_id),
                "type": "googleChannelExpiry",
                "calendarId": channel.calendar_id,
                "channelId": channel.channel_id,
            }
        )

    def get(self, channel_id: str) -> Channel | None:
        calendar_id = calendar_of(channel_id)
        if calendar_id is None:
            return None
        item = self._table.get_item(
            Key={"pk": keys.calendar_pk(calendar_id), "sk": keys.google_channel_sk(channel_id)},
            ConsistentRead=True,
        ).get("Item")
        return _channel(calendar_id, channel_id, item) if item else None

    def of_calendar(self, calendar_id: str) -> list[Channel]:
        resp = self._table.query(
            KeyConditionExpression=Key("pk").eq(keys.calendar_pk(calendar_id))
            & Key("sk").begins_with(keys.GCHAN_PREFIX),
            ConsistentRead=True,
        )
        return [_channel(calendar_id, str(i["sk"]).removeprefix(keys.GCHAN_PREFIX), i) for i in resp["Items"]]

    def set_state(self, channel: Channel, state: ChannelState, stop_after: datetime | None = None) -> None:
        self.put(channel.model_copy(update={"state": state, "stop_after": stop_after}))

    def delete(self, channel: Channel) -> None:
        self._table.delete_item(
            Key={
                "pk": keys.calendar_pk(channel.calendar_id),
                "sk": keys.google_channel_sk(channel.channel_id),
            }
        )
        self.forget_expiry(channel.channel_id, channel.expires_at)

    def forget_expiry(self, channel_id: str, expires_at: datetime) -> None:
        self._table.delete_item(
            Key={
                "pk": keys.channel_expiry_pk(keys.channel_shard(channel_id)),
                "sk": keys.channel_expiry_sk(expires_at, channel_id),
            }
        )

    def expiring_page(
        self, shard: int, before: datetime, *, after: str | None = None, limit: int = 50
    ) -> tuple[list[tuple[str, datetime]], str | None]:
        """At most ``limit`` (channel id, expiry) of ``shard`` that expire before ``before``, in
        expiry order, after the sort key ``after``; and the sort key to continue after (None: the
        shard has no more). One Query (``Limit``)."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(keys.channel_expiry_pk(shard))
            & Key("sk").lt(keys.iso(before) + "#"),
            "Limit": limit,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"pk": keys.channel_expiry_pk(shard), "sk": after}
        resp = self._table.query(**kwargs)
        page = []
        for item in resp["Items"]:
            expiry, _, channel_id = str(item["sk"]).partition("#")
            page.append((channel_id, keys.parse_iso(expiry)))
        last = resp.get("LastEvaluatedKey")
        return page, str(last["sk"]) if last else None

    def claim_renewal(self, channel: Channel, now: datetime) -> str | None:
        """Take the renewal of ``channel`` (a conditional UpdateItem): only while its item is still
        the one read — there, active, the same expiry — and nobody took it less than
        ``RENEWING_FOR`` ago. The claim's id, or None: a redelivered task, a parallel renewal or a
        sync that renewed the channel meanwhile (its old item is gone) has it, so this one opens
        no second channel."""
        claim = secrets.token_hex(8)
        try:
            with _mapped_errors("claim a channel renewal"):
                self._table.update_item(
                    Key=self._key(channel),
                    UpdateExpression="SET renewing = :c, renewingAt = :now",
                    ConditionExpression="attribute_exists(pk) AND expiresAt = :e AND #s = :active AND "
                    "(attribute_not_exists(renewingAt) OR renewingAt < :stale)",
                    ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues={
                        ":c": claim,
                        ":now": keys.iso(now),
                        ":e": keys.iso(channel.expires_at),
                        ":active": "active",
                        ":stale": keys.iso(now - RENEWING_FOR),
                    },
                )
        except Conflict:
            return None
        return claim

    def release_renewal(self, channel: Channel, claim: str) -> None:
        """A renewal that failed gives its claim back (the next run tries again)."""
        try:
            with _mapped_errors("release a channel renewal"):
                self._table.update_item(
                    Key=self._key(channel),
                    UpdateExpression="REMOVE renewing, renewingAt",
                    ConditionExpression="renewing = :c",
                    ExpressionAttributeValues={":c": claim},
                )
        except Conflict:
            pass  # stopped or claimed again meanwhile: not ours


def _channel(calendar_id: str, channel_id: str, item: dict[str, Any]) -> Channel:
    stop_after = item.get("stopAfter")
    return Channel(
        channel_id=channel_id,
        calendar_id=calendar_id,
        user_id=str(item["userId"]),
        account_id=str(item["accountId"]),
        resource_id=str(item["resourceId"]),
        token_sha256=str(item["tokenSha256"]),
        expires_at=keys.parse_iso(str(item["expiresAt"])),
        state=item.get("state", "active"),
        stop_after=keys.parse_iso(str(stop_after)) if stop_after else None,
    )
