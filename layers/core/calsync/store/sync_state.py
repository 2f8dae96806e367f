"""The sync engine's own items: per-calendar sync state, the per-resource index, the poll registry.

- ``CAL#<calendarId> / SYNC``: the cursor (opaque to the engine, the source's own), the generation
  of the last full resync, a lease (one sync of a calendar at a time, also when two workers race),
  a ``dirty`` counter (a job that found the lease taken adds 1: the holder syncs again before it
  lets go, rule S6), and the times of the last sync and of the last full one.
- ``CAL#<calendarId> / RES#<hash>``: one provider resource (a CalDAV href, a Google event id…):
  its etag, the generation that last wrote it and the ids of the occurrences it produced, so that
  a changed or deleted resource replaces or removes exactly its own occurrences.
- ``POLL#<provider>#<shard> / CAL#<calendarId>``: the calendars the poll schedule enqueues, read
  a bounded page of one shard at a time (no Scan); ``changedAt`` (the last sync that changed
  something) sets how often the calendar is polled (``calsync.sync.poll``).

Conditional writes (the lease) are the only concurrency control: nothing is read-then-written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from calsync.domain.errors import Conflict
from calsync.domain.limits import check_item
from calsync.store import keys
from calsync.store.repository import _mapped_errors as mapped_errors
from calsync.store.repository import batch_get

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


class SyncState(BaseModel):
    """``CAL#<calendarId> / SYNC`` (a calendar never synced has the defaults)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    calendar_id: str
    cursor: str | None = None
    generation: int = 0
    full_pending: bool = False
    dirty: int = 0
    lease_owner: str | None = None
    lease_until: int | None = None  # epoch seconds
    last_synced_at: datetime | None = None
    last_full_at: datetime | None = None
    # S13: the last sync's failure (cleared by a successful one) and S11's skipped events
    last_error: str | None = None
    last_error_class: str | None = None
    last_error_at: datetime | None = None
    skipped_events: int = 0

    def leased(self, now: datetime) -> bool:
        return self.lease_owner is not None and (self.lease_until or 0) > int(now.timestamp())


class ResourceEntry(BaseModel):
    """``CAL#<calendarId> / RES#<hash>``: what one provider resource put in the store."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    key: str
    etag: str = ""
    generation: int = 0
    occ_ids: list[str] = Field(default_factory=list)
    # a recurring resource is expanded inside a horizon; it is expanded again when that moved
    recurring: bool = False
    horizon_end: datetime | None = None


class PollEntry(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    calendar_id: str
    user_id: str
    account_id: str
    changed_at: datetime | None = None  # the last sync that stored or deleted something
    host: str | None = None  # CalDAV: the server host of its collection (the per-host budget)
    online_until: datetime | None = None  # someone whose configuration has it signed in until then


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _state(calendar_id: str, item: dict[str, Any] | None) -> SyncState:
    if not item:
        return SyncState(calendar_id=calendar_id)
    return SyncState(
        calendar_id=calendar_id,
        cursor=_opt_str(item.get("cursor")),
        generation=int(item.get("generation", 0)),
        full_pending=bool(item.get("fullPending", False)),
        dirty=int(item.get("dirty", 0)),
        lease_owner=_opt_str(item.get("leaseOwner")),
        lease_until=int(item["leaseUntil"]) if item.get("leaseUntil") is not None else None,
        last_synced_at=keys.parse_iso(str(item["lastSyncedAt"])) if item.get("lastSyncedAt") else None,
        last_full_at=keys.parse_iso(str(item["lastFullAt"])) if item.get("lastFullAt") else None,
        last_error=_opt_str(item.get("lastError")),
        last_error_class=_opt_str(item.get("lastErrorClass")),
        last_error_at=keys.parse_iso(str(item["lastErrorAt"])) if item.get("lastErrorAt") else None,
        skipped_events=int(item.get("skippedEvents", 0)),
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


class SyncStateStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def _key(self, calendar_id: str) -> dict[str, str]:
        return {"pk": keys.calendar_pk(calendar_id), "sk": keys.SYNC}

    # ---- the sync state ----------------------------------------------------------------------
    def get(self, calendar_id: str) -> SyncState:
        with mapped_errors("read sync state"):
            item = self._table.get_item(Key=self._key(calendar_id), ConsistentRead=True).get("Item")
        return _state(calendar_id, item)

    def acquire(self, calendar_id: str, owner: str, now: datetime, ttl: timedelta) -> SyncState | None:
        """Take the calendar's lease (free, or expired); the state as it is now, or None if taken."""
        try:
            with mapped_errors("take sync lease"):
                resp = self._table.update_item(
                    Key=self._key(calendar_id),
                    UpdateExpression=(
                        "SET #type = :type, leaseOwner = :me, leaseUntil = :until, "
                        "dirty = if_not_exists(dirty, :zero), generation = if_not_exists(generation, :zero)"
                    ),
                    ConditionExpression="attribute_not_exists(leaseOwner) OR leaseUntil < :now",
                    ExpressionAttributeNames={"#type": "type"},
                    ExpressionAttributeValues={
                        ":type": "syncState",
                        ":me": owner,
                        ":until": int((now + ttl).timestamp()),
                        ":now": int(now.timestamp()),
                        ":zero": 0,
                    },
                    ReturnValues="ALL_NEW",
                )
        except Conflict:  # what a failed condition becomes: someone else holds the lease
            return None
        return _state(calendar_id, dict(resp.get("Attributes") or {}))

    def mark_dirty(self, calendar_id: str) -> None:
        """A change arrived while the calendar's sync runs: its holder syncs once more (S6)."""
        with mapped_errors("mark calendar dirty"):
            self._table.update_item(
                Key=self._key(calendar_id),
                UpdateExpression="SET #type = :type ADD dirty :one",
                ExpressionAttributeNames={"#type": "type"},
                ExpressionAttributeValues={":type": "syncState", ":one": 1},
            )

    def begin_full(self, calendar_id: str, owner: str, generation: int) -> None:
        """Record that a full resync with ``generation`` runs: until it commits, every sync is full."""
        with mapped_errors("start full resync"):
            self._table.update_item(
                Key=self._key(calendar_id),
                UpdateExpression="SET fullPending = :t, generation = :g",
                ConditionExpression="leaseOwner = :me",
                ExpressionAttributeValues={":t": True, ":g": generation, ":me": owner},
            )

    def commit(
        self,
        calendar_id: str,
        owner: str,
        *,
        cursor: str | None,
        generation: int,
        now: datetime,
        full: bool,
        seen_dirty: int,
        skipped: int = 0,
    ) -> bool:
        """Move the cursor (every page is stored) and let go of the lease.

        True: done. False: a job marked the calendar dirty during the sync; the cursor is stored
        but the lease is kept, and the caller syncs again (S6).
        """
        sets = ["lastSyncedAt = :now", "generation = :g", "fullPending = :f", "skippedEvents = :k"]
        values: dict[str, Any] = {
            ":now": keys.iso(now),
            ":g": generation,
            ":f": False,
            ":me": owner,
            ":k": skipped,
        }
        remove: list[str] = ["lastError", "lastErrorClass", "lastErrorAt"]  # S13: a success clears it
        if cursor is None:
            remove.append("#cursor")
        else:
            sets.append("#cursor = :cursor")
            values[":cursor"] = cursor
        if full:
            sets.append("lastFullAt = :now")
        names = {"#cursor": "cursor"}
        try:
            with mapped_errors("commit sync"):
                self._table.update_item(
                    Key=self._key(calendar_id),
                    UpdateExpression="SET "
                    + ", ".join([*sets, "dirty = :zero"])
                    + " REMOVE "
                    + ", ".join([*remove, "leaseOwner", "leaseUntil"]),
                    ConditionExpression="leaseOwner = :me AND dirty = :seen",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={**values, ":zero": 0, ":seen": seen_dirty},
                )
            return True
        except Conflict:
            pass
        # dirty moved (or the lease was lost): store the cursor under the lease only
        update = "SET " + ", ".join(sets) + " REMOVE " + ", ".join(remove)
        with mapped_errors("commit sync"):
            self._table.update_item(
                Key=self._key(calendar_id),
                UpdateExpression=update,
                ConditionExpression="leaseOwner = :me",
                ExpressionAttributeNames=names,  # the cursor is always SET or REMOVEd
                ExpressionAttributeValues=values,
            )
        return False

    def record_failure(self, calendar_id: str, now: datetime, error_class: str, text: str) -> None:
        """S13: the last sync failed (shown until a sync succeeds). ``text`` is short and safe
        (``calsync.sync.failures.describe``), never a raw exception text."""
        with mapped_errors("record sync failure"):
            self._table.update_item(
                Key=self._key(calendar_id),
                UpdateExpression="SET #type = :type, lastError = :e, lastErrorClass = :c, lastErrorAt = :at",
                ExpressionAttributeNames={"#type": "type"},
                ExpressionAttributeValues={
                    ":type": "syncState",
                    ":e": text[:200],
                    ":c": error_class[:100],
                    ":at": keys.iso(now),
                },
            )

    def clear_failure(self, calendar_id: str) -> None:
        """A sync that found nothing changed succeeded too: the last failure is over."""
        with mapped_errors("clear sync failure"):
            self._table.update_item(
                Key=self._key(calendar_id), UpdateExpression="REMOVE lastError, lastErrorClass, lastErrorAt"
            )

    def get_many(self, calendar_ids: Iterable[str]) -> dict[str, SyncState]:
        """The sync states of these calendars (those never synced are absent), batched."""
        ids = list(dict.fromkeys(calendar_ids))
        found = batch_get(self._table, [self._key(c) for c in ids], "read sync state")
        out: dict[str, SyncState] = {}
        for calendar_id in ids:
            item = found.get((keys.calendar_pk(calendar_id), keys.SYNC))
            if item is not None:
                out[calendar_id] = _state(calendar_id, item)
        return out

    def release(self, calendar_id: str, owner: str) -> None:
        """Let go of the lease without moving anything (a failed sync); a no-op if not ours."""
        try:
            self._table.update_item(
                Key=self._key(calendar_id),
                UpdateExpression="REMOVE leaseOwner, leaseUntil",
                ConditionExpression="leaseOwner = :me",
                ExpressionAttributeValues={":me": owner},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    # ---- the per-resource index --------------------------------------------------------------
    def _resource_key(self, calendar_id: str, resource_key: str) -> dict[str, str]:
        return {"pk": keys.calendar_pk(calendar_id), "sk": keys.resource_sk(resource_key)}

    def get_resource(self, calendar_id: str, resource_key: str) -> ResourceEntry | None:
        return self.get_resources(calendar_id, [resource_key]).get(resource_key)

    def get_resources(self, calendar_id: str, resource_keys: Iterable[str]) -> dict[str, ResourceEntry]:
        """The index entries of these resources (those that have one), a page's worth at a time:
        consistent BatchGetItem, 100 keys per request, unprocessed keys asked again."""
        wanted = [self._resource_key(calendar_id, key) for key in dict.fromkeys(resource_keys)]
        found = batch_get(self._table, wanted, "read resource index")
        return {entry.key: entry for entry in map(_resource, found.values())}

    def put_resource(self, calendar_id: str, entry: ResourceEntry) -> None:
        self.write_resources(calendar_id, [entry])

    def delete_resource(self, calendar_id: str, resource_key: str) -> None:
        self.write_resources(calendar_id, [], delete=[resource_key])

    def write_resources(
        self, calendar_id: str, entries: Iterable[ResourceEntry], *, delete: Iterable[str] = ()
    ) -> None:
        """Put and delete index entries in BatchWriteItem requests (25 each; boto3's batch writer
        sends unprocessed items again)."""
        items = [self._resource_item(calendar_id, entry) for entry in entries]
        doomed = [self._resource_key(calendar_id, key) for key in delete]
        if not items and not doomed:
            return
        with (
            mapped_errors("store resource index"),
            self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch,
        ):
            for item in items:
                batch.put_item(Item=item)
            for key in doomed:
                batch.delete_item(Key=key)

    def _resource_item(self, calendar_id: str, entry: ResourceEntry) -> dict[str, Any]:
        item: dict[str, Any] = {
            **self._resource_key(calendar_id, entry.key),
            "type": "resource",
            "key": entry.key,
            "etag": entry.etag,
            "generation": entry.generation,
            "occIds": list(entry.occ_ids),
            "recurring": entry.recurring,
        }
        if entry.horizon_end is not None:
            item["horizonEnd"] = keys.iso(entry.horizon_end)
        check_item(item, "the event's resource index entry")
        return item

    def list_resources(self, calendar_id: str) -> Iterator[ResourceEntry]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": keys.calendar_pk(calendar_id), ":p": keys.RES_PREFIX},
            "ConsistentRead": True,
        }
        while True:
            with mapped_errors("read resource index"):
                resp = self._table.query(**kwargs)
            for item in resp.get("Items", []):
                yield _resource(item)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def forget_etags(self, calendar_id: str) -> int:
        """Make the next full pass fetch every resource again (R8: a new subscriber whose copies the
        store cannot make; a full pass skips the resources whose etag it knows). Returns the number
        of resources."""
        entries = [e for e in self.list_resources(calendar_id) if e.etag]
        for entry in entries:
            self.put_resource(calendar_id, entry.model_copy(update={"etag": ""}))
        return len(entries)

    # ---- the poll registry --------------------------------------------------------------------
    def register_poll(self, provider: str, entry: PollEntry) -> None:
        """Put the calendar on the poll schedule (idempotent)."""
        with mapped_errors("register calendar for polling"):
            self._table.put_item(Item=poll_item(provider, entry))

    def mark_poll_changed(self, provider: str, calendar_id: str, now: datetime) -> None:
        """A sync changed the calendar: the poll visits it at the busiest rate again. Never brings
        back an entry that is gone (the calendar was forgotten meanwhile)."""
        key = {"pk": keys.poll_pk(provider, keys.poll_shard(calendar_id)), "sk": keys.poll_sk(calendar_id)}
        with contextlib.suppress(Conflict), mapped_errors("mark calendar changed for polling"):
            self._table.update_item(
                Key=key,
                UpdateExpression="SET changedAt = :t",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":t": keys.iso(now)},
            )

    def mark_poll_online(self, provider: str, calendar_id: str, until: datetime) -> bool:
        """Someone who reads the calendar has an app open until ``until`` (a session): the poll
        visits it at the busiest rate till then (docs/adr/0016). Only moves ``onlineUntil`` later,
        and never brings back an entry that is gone. Whether an entry was marked."""
        key = {"pk": keys.poll_pk(provider, keys.poll_shard(calendar_id)), "sk": keys.poll_sk(calendar_id)}
        try:
            with mapped_errors("mark calendar online for polling"):
                self._table.update_item(
                    Key=key,
                    UpdateExpression="SET onlineUntil = :u",
                    ConditionExpression="attribute_exists(pk) AND "
                    "(attribute_not_exists(onlineUntil) OR onlineUntil < :u)",
                    ExpressionAttributeValues={":u": keys.iso(until)},
                )
        except Conflict:
            return False
        return True

    def list_poll(self, provider: str, shard: int) -> Iterator[PollEntry]:
        """Every entry of one shard (page by page)."""
        after: str | None = None
        while True:
            entries, after = self.poll_page(provider, shard, after=after)
            yield from entries
            if after is None:
                return

    def poll_page(
        self, provider: str, shard: int, *, after: str | None = None, limit: int | None = None
    ) -> tuple[list[PollEntry], str | None]:
        """One Query of a shard: at most ``limit`` entries (and at most 1 MB) after the sort key
        ``after``; with the sort key to continue from, None when the shard is read to its end."""
        pk = keys.poll_pk(provider, shard)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": pk},
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"pk": pk, "sk": after}
        if limit is not None:
            kwargs["Limit"] = limit
        with mapped_errors("read poll registry"):
            resp = self._table.query(**kwargs)
        entries = [
            PollEntry(
                calendar_id=str(item["calendarId"]),
                user_id=str(item["userId"]),
                account_id=str(item["accountId"]),
                changed_at=keys.parse_iso(str(item["changedAt"])) if item.get("changedAt") else None,
                host=str(item["host"]) if item.get("host") else None,
                online_until=keys.parse_iso(str(item["onlineUntil"])) if item.get("onlineUntil") else None,
            )
            for item in resp.get("Items", [])
        ]
        last = resp.get("LastEvaluatedKey")
        return entries, (str(last["sk"]) if last else None)

    def forget_calendar(self, provider: str, calendar_id: str) -> int:
        """Delete the calendar's sync state, resource index and poll entry (the calendar is gone or
        has no subscriber left; its occurrences are the repository's). Returns the items deleted."""
        doomed = [self._key(calendar_id)]
        doomed += [self._resource_key(calendar_id, r.key) for r in self.list_resources(calendar_id)]
        doomed.append(
            {"pk": keys.poll_pk(provider, keys.poll_shard(calendar_id)), "sk": keys.poll_sk(calendar_id)}
        )
        with mapped_errors("forget calendar"), self._table.batch_writer() as batch:
            for key in doomed:
                batch.delete_item(Key=key)
        return len(doomed)


def poll_item(provider: str, entry: PollEntry) -> dict[str, Any]:
    """The registry item of a polled calendar."""
    return (
        {
            "pk": keys.poll_pk(provider, keys.poll_shard(entry.calendar_id)),
            "sk": keys.poll_sk(entry.calendar_id),
            "type": "pollEntry",
            "calendarId": entry.calendar_id,
            "userId": entry.user_id,
            "accountId": entry.account_id,
        }
        | ({"changedAt": keys.iso(entry.changed_at)} if entry.changed_at else {})
        | ({"host": entry.host} if entry.host else {})
        | ({"onlineUntil": keys.iso(entry.online_until)} if entry.online_until else {})
    )


def _resource(item: dict[str, Any]) -> ResourceEntry:
    return ResourceEntry(
        key=str(item["key"]),
        etag=str(item.get("etag", "")),
        generation=int(item.get("generation", 0)),
        occ_ids=[str(i) for i in item.get("occIds") or []],
        recurring=bool(item.get("recurring", False)),
        horizon_end=keys.parse_iso(str(item["horizonEnd"])) if item.get("horizonEnd") else None,
    )
