"""The repository: every read and write of calsync's single DynamoDB table.

The table (a boto3 ``Table`` resource) is injected. Keys come from ``calsync.store.keys`` only.
``ClientError`` is mapped to domain errors here, never above.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from calsync import live
from calsync.domain.errors import Conflict, NotFound, StoreUnavailable
from calsync.domain.limits import Unstorable, bounded, check_item
from calsync.domain.models import UTC, Occurrence, OwnerKind, widest_instants
from calsync.domain.privacy import for_room
from calsync.observability import logger
from calsync.store import due, keys, versions, wide
from calsync.store.items import (
    Calendar,
    Profile,
    Room,
    SubscriberRole,
    item_to_occurrence,
    occurrence_to_item,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

TTL_MARGIN = timedelta(days=1)
CopyRef = tuple[str, str]  # (pk, sk) of one owner's copy of an occurrence
ENDED_GRACE = timedelta(minutes=61)

_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}


@contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ValidationException" and "size" in str(exc.response.get("Error", {}).get("Message", "")):
            # 400 KB per item: the bounds (calsync.domain.limits) should have prevented it (S11)
            raise Unstorable(f"{what}: an item is too large to store") from exc
        if code == "ValidationException":
            raise  # a bug in calsync, not a state of the store
        if code == "ConditionalCheckFailedException":
            raise Conflict(f"{what}: it was changed meanwhile") from exc
        if code == "TransactionCanceledException":
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise Conflict(f"{what}: it was changed meanwhile") from exc
        if code in _RETRYABLE or code == "TransactionCanceledException":
            raise StoreUnavailable(f"{what}: the store is busy, try again") from exc
        raise StoreUnavailable(f"{what}: the store failed ({code or 'unknown error'})") from exc


_BATCH_GET = 100  # BatchGetItem's limit of keys per call
_BATCH_ATTEMPTS = 8


@dataclass(slots=True)
class Backfill:
    """What ``Repository.backfill`` did: occurrences copied, and those it had no usable copy of."""

    copied: int = 0
    missing: int = 0
    incomplete: bool = False  # stopped by the time budget: the rest was not looked at

    @property
    def complete(self) -> bool:
        return self.missing == 0 and not self.incomplete


def _chunk_number(sk: str) -> int:
    return int(sk.rsplit("#", 1)[-1])


@dataclass(frozen=True, slots=True)
class OwnerEvents:
    """What one Query of an owner's partition returns: occurrences and their calendars' roles."""

    occurrences: list[Occurrence]
    primary_calendar_ids: frozenset[str]


class Repository:
    def __init__(self, table: Table, *, wide_threshold: int = wide.WIDE_THRESHOLD) -> None:
        """``wide_threshold``: past this many subscribers a calendar is stored once (0021)."""
        self._table = table
        self.wide_threshold = wide_threshold

    @property
    def table(self) -> Table:
        return self._table

    # ---- profiles -------------------------------------------------------------------------
    def get_profile(self, user_id: str) -> Profile | None:
        return self.get_member(user_id)[0]

    def get_member(self, user_id: str) -> tuple[Profile | None, frozenset[str] | None]:
        """The person's profile and the locations their token last named (``None``: never seen),
        in one read. Membership of others is checked against these (rule X1)."""
        with _mapped_errors("read profile"):
            item = self._table.get_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.PROFILE}, ConsistentRead=True
            ).get("Item")
        if item is None:
            return None, None
        stored = item.get("locations")
        locations = frozenset(str(loc) for loc in stored) if isinstance(stored, (list, set)) else None
        return self._profile(user_id, item), locations

    def set_member_locations(self, user_id: str, locations: Iterable[str]) -> None:
        """Remember the locations the person's token names (creating the profile if needed)."""
        with _mapped_errors("update profile"):
            self._table.update_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.PROFILE},
                UpdateExpression="SET #type = :type, #loc = :loc",
                ExpressionAttributeNames={"#type": "type", "#loc": "locations"},
                ExpressionAttributeValues={":type": "profile", ":loc": sorted(set(locations))},
            )

    @staticmethod
    def _profile(user_id: str, item: dict[str, Any]) -> Profile:
        return Profile(
            user_id=user_id,
            display_name=_str_or_none(item.get("displayName")),
            time_zone=str(item.get("timeZone", "UTC")),
            phone_number=_str_or_none(item.get("phoneNumber")),
            extension=_str_or_none(item.get("extension")),
            photo_url=_str_or_none(item.get("photoUrl")),
            photo_key=_str_or_none(item.get("photoKey")),
            photo_pending_key=_str_or_none(item.get("photoPendingKey")),
            version=versions.of(item),
            wide_calendars=_roles(item.get("wide")),
        )

    def update_profile(
        self, user_id: str, *, time_zone: str | None = None, display_name: str | None = None
    ) -> Profile:
        """Set the given fields (creating the profile if needed) and return the profile. A time zone
        moves the meetings' window and their times: the person's version grows with it."""
        names: dict[str, str] = {"#type": "type"}
        values: dict[str, Any] = {":type": "profile"}
        sets = ["#type = :type"]
        for attr, value in (("timeZone", time_zone), ("displayName", display_name)):
            if value is not None:
                names[f"#{attr}"] = attr
                values[f":{attr}"] = value
                sets.append(f"#{attr} = :{attr}")
        add = ""
        if time_zone is not None:
            names["#v"], values[":one"], add = versions.VERSION, 1, " ADD #v :one"
        with _mapped_errors("update profile"):
            item = self._table.update_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.PROFILE},
                UpdateExpression="SET " + ", ".join(sets) + add,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        if time_zone is not None:  # the live channel: both answers moved (calsync.live)
            changed = {keys.user_pk(user_id): (versions.of(item), item)}
            live.publish_changes("meetings", changed)
            live.publish_changes("presence", changed)
            due.DueStore(self._table).arm_soon(user_id)  # its midnight moved
        return self._profile(user_id, item)

    # ---- rooms (keyed by location: docs/adr/0012) -------------------------------------------
    @staticmethod
    def _room(location_id: str, room_id: str, item: Mapping[str, Any]) -> Room:
        return Room(
            room_id=room_id,
            location_id=location_id,
            name=str(item["name"]),
            time_zone=str(item.get("timeZone", "UTC")),
            account_id=str(item["accountId"]),
            calendar_id=str(item["calendarId"]),
            registered_by=_str_or_none(item.get("registeredBy")),
            version=versions.of(item),
            wide_calendars=_roles(item.get("wide")),
        )

    def get_room(self, location_id: str, room_id: str) -> Room | None:
        with _mapped_errors("read room"):
            item = self._table.get_item(
                Key={"pk": keys.room_pk(location_id, room_id), "sk": keys.ROOM}, ConsistentRead=True
            ).get("Item")
        return None if item is None else self._room(location_id, room_id, item)

    def find_rooms(self, location_ids: Iterable[str], room_id: str) -> list[Room]:
        """The rooms called ``room_id`` in any of these locations (BatchGetItem, 100 keys a call):
        what a room panel's caller may read, found without learning of other locations' rooms."""
        locations = sorted(set(location_ids))
        found: list[Room] = []
        for start in range(0, len(locations), _BATCH_GET):
            wanted = [
                (keys.room_pk(loc, room_id), keys.ROOM) for loc in locations[start : start + _BATCH_GET]
            ]
            found.extend(
                self._room(str(item["locationId"]), room_id, item)
                for item in self._batch_get(wanted).values()
            )
        return sorted(found, key=lambda r: r.location_id)

    def put_room(self, room: Room) -> Room:
        """Register or update a room of a location (its id is its own within the location)."""
        existing = self.get_room(room.location_id, room.room_id)
        if self.get_calendar(room.calendar_id) is None:
            raise NotFound("the room's calendar is not known: connect its account first")
        client = self._table.meta.client
        name = self._table.name
        fields = {
            "type": "room",
            "locationId": room.location_id,
            "name": room.name,
            "timeZone": room.time_zone,
            "accountId": room.account_id,
            "calendarId": room.calendar_id,
            **({"registeredBy": room.registered_by} if room.registered_by else {}),
        }
        names = {f"#{attr}": attr for attr in fields} | {"#v": versions.VERSION}
        values: dict[str, Any] = {f":{attr}": value for attr, value in fields.items()}
        sets = ", ".join(f"#{attr} = :{attr}" for attr in fields)
        # optimistic: the room is still new, or still on the calendar read, when written (so that
        # the old calendar's subscription is the one given up). Its version grows with every change
        # (a time zone moves the window); a new one starts high (versions)
        if existing is None:
            values[":start"] = versions.room_start(datetime.now(UTC))
            update = {
                "UpdateExpression": f"SET {sets}, #v = :start",
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        else:
            values[":one"] = 1
            values[":readCalendar"] = existing.calendar_id
            update = {
                "UpdateExpression": f"SET {sets} ADD #v :one",
                "ConditionExpression": "#calendarId = :readCalendar",
            }
        # Any: the resource's client takes plain values where the stubs expect AttributeValue shapes
        # (it serializes plain values itself)
        transaction: Any = [
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": room.pk, "sk": keys.ROOM},
                    **update,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Put": {
                    "TableName": name,
                    "Item": {
                        "pk": keys.location_pk(room.location_id),
                        "sk": keys.location_room_sk(room.room_id),
                        "type": "locationRoom",
                        "name": room.name,
                    },
                }
            },
        ]
        unchanged = existing is not None and existing == room.model_copy(
            update={"version": existing.version, "wide_calendars": existing.wide_calendars}
        )
        if not unchanged:  # the same PUT again writes nothing (its version stays)
            with _mapped_errors("store room"):
                client.transact_write_items(TransactItems=transaction)
        if existing is None:
            self._retire_legacy_room(room.location_id, room.room_id)
        elif existing.calendar_id != room.calendar_id:
            self.unsubscribe(existing.calendar_id, room.pk)
        self.subscribe(room.calendar_id, room.pk, "room")
        return room

    def delete_room(self, location_id: str, room_id: str) -> Room:
        room = self.get_room(location_id, room_id)
        if room is None:
            legacy = self._retire_legacy_room(location_id, room_id)
            if legacy is None:
                raise NotFound("no such room in this location")
            room = legacy
        else:
            self.unsubscribe(room.calendar_id, room.pk)
            with _mapped_errors("delete room"):
                self._table.delete_item(Key={"pk": room.pk, "sk": keys.ROOM})
        with _mapped_errors("delete room"):
            self._table.delete_item(
                Key={"pk": keys.location_pk(location_id), "sk": keys.location_room_sk(room_id)}
            )
        return room

    def rooms_of_calendar(self, calendar: Calendar) -> list[Room]:
        """The rooms on this calendar (its ``room`` subscribers), legacy ones included."""
        rooms: list[Room] = []
        for pk, role in calendar.subscribers.items():
            where = keys.room_of_pk(pk) if role == "room" else None
            if where is None:
                continue
            location_id, room_id = where
            if location_id is not None:
                room = self.get_room(location_id, room_id)
            else:
                with _mapped_errors("read room"):
                    item = self._table.get_item(Key={"pk": pk, "sk": keys.ROOM}, ConsistentRead=True).get(
                        "Item"
                    )
                room = None if item is None else self._room(str(item["locationId"]), room_id, item)
            if room is not None:
                rooms.append(room)
        return rooms

    def _retire_legacy_room(self, location_id: str, room_id: str) -> Room | None:
        """A room of this location stored before 0012 (``ROOM#<roomId>``, registered without any
        consent record): its copies and its subscription go, then its item. Never served again."""
        with _mapped_errors("read room"):
            item = self._table.get_item(
                Key={"pk": keys.legacy_room_pk(room_id), "sk": keys.ROOM}, ConsistentRead=True
            ).get("Item")
        if item is None or item.get("locationId") != location_id:
            return None
        room = self._room(location_id, room_id, item)
        self.unsubscribe(room.calendar_id, keys.legacy_room_pk(room_id))
        with _mapped_errors("delete room"):
            self._table.delete_item(Key={"pk": keys.legacy_room_pk(room_id), "sk": keys.ROOM})
        return room

    def list_rooms(self, location_id: str) -> list[str]:
        with _mapped_errors("list rooms"):
            resp = self._table.query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
                ExpressionAttributeValues={":pk": keys.location_pk(location_id), ":p": "ROOM#"},
            )
        return [str(i["sk"]).removeprefix("ROOM#") for i in resp.get("Items", [])]

    # ---- calendars and who they are copied to ----------------------------------------------
    def put_calendar(self, calendar: Calendar) -> None:
        with _mapped_errors("store calendar"):
            self._table.update_item(
                Key={"pk": keys.calendar_pk(calendar.calendar_id), "sk": keys.CALENDAR},
                UpdateExpression=(
                    "SET #type = :type, #acc = :acc, #owner = :owner, #prov = :prov, "
                    "#name = :name, #role = :role, #tz = :tz, "
                    "#subs = if_not_exists(#subs, :subs)"
                ),
                ExpressionAttributeNames={
                    "#type": "type",
                    "#acc": "accountId",
                    "#owner": "ownerUserId",
                    "#prov": "provider",
                    "#name": "name",
                    "#role": "accessRole",
                    "#tz": "timeZone",
                    "#subs": "subscribers",
                },
                ExpressionAttributeValues={
                    ":type": "calendar",
                    ":acc": calendar.account_id,
                    ":owner": calendar.owner_user_id,
                    ":prov": calendar.provider.value,
                    ":name": calendar.name,
                    ":role": calendar.access_role,
                    ":tz": calendar.time_zone,
                    ":subs": dict(calendar.subscribers),
                },
            )

    def get_calendar(self, calendar_id: str) -> Calendar | None:
        with _mapped_errors("read calendar"):
            item = self._table.get_item(
                Key={"pk": keys.calendar_pk(calendar_id), "sk": keys.CALENDAR}, ConsistentRead=True
            ).get("Item")
        if item is None:
            return None
        return Calendar(
            calendar_id=calendar_id,
            account_id=str(item["accountId"]),
            owner_user_id=str(item["ownerUserId"]),
            provider=item["provider"],
            name=str(item.get("name", "")),
            access_role=item.get("accessRole", "owner"),
            time_zone=_str_or_none(item.get("timeZone")),
            subscribers=_roles(item.get("subscribers")),
            room_consent=bool(item.get("roomConsent", False)),
            layout=item.get("layout", "copies"),
            copy_to=_roles(item.get("copyTo")),
            swept=bool(item.get("swept", True)),
        )

    def set_room_consent(self, calendar_id: str, owner_user_id: str, *, consent: bool) -> None:
        """R9: the calendar's owner marks it as a room calendar (or takes that back). Kept on the
        calendar item, which a reconnect updates without touching this attribute."""
        with _mapped_errors("mark room calendar"):
            self._table.update_item(
                Key={"pk": keys.calendar_pk(calendar_id), "sk": keys.CALENDAR},
                UpdateExpression="SET #consent = :consent",
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#consent": "roomConsent", "#owner": "ownerUserId"},
                ExpressionAttributeValues={":consent": consent, ":owner": owner_user_id},
            )

    def room_calendars(self, calendar_ids: Sequence[str]) -> frozenset[str]:
        """Which of these calendars their owner marked as room calendars (R9): one BatchGetItem per
        100 calendars."""
        marked: set[str] = set()
        unique = list(dict.fromkeys(calendar_ids))
        for start in range(0, len(unique), _BATCH_GET):
            wanted = {(keys.calendar_pk(c), keys.CALENDAR): c for c in unique[start : start + _BATCH_GET]}
            found = self._batch_get(list(wanted))
            marked.update(wanted[ref] for ref, item in found.items() if item.get("roomConsent"))
        return frozenset(marked)

    def subscribe(self, calendar_id: str, owner_pk: str, role: SubscriberRole) -> None:
        """Copy this calendar's occurrences to ``owner_pk`` from now on (the next sync backfills);
        of a wide calendar (0021), list it on the owner's item instead, while there is room."""
        with _mapped_errors("subscribe calendar"):
            item = self._table.update_item(
                Key={"pk": keys.calendar_pk(calendar_id), "sk": keys.CALENDAR},
                UpdateExpression="SET #subs.#o = :role",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#subs": "subscribers", "#o": owner_pk},
                ExpressionAttributeValues={":role": role},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        if item.get("layout", "copies") != "copies":  # widening too: it may have read the list before
            self._join_wide(calendar_id, owner_pk, role)

    @staticmethod
    def _anchor(owner_pk: str) -> dict[str, str]:
        """The item that lists an owner's wide calendars: a person's profile, a room's item."""
        return {"pk": owner_pk, "sk": keys.ROOM if owner_pk.startswith("ROOM#") else keys.PROFILE}

    def _join_wide(self, calendar_id: str, owner_pk: str, role: SubscriberRole) -> bool:
        """List a wide calendar on its subscriber's item with their role, unless the item lists
        ``wide.MAX_WIDE`` others already: then the subscriber keeps getting copies (the calendar's
        ``copyTo``). True when listed. Idempotent."""
        anchor = self._anchor(owner_pk)
        room = anchor["sk"] == keys.ROOM
        names = {"#w": wide.WIDE_ATTR, "#c": calendar_id}
        try:
            with _mapped_errors("list wide calendar"):
                if room:  # a room that is gone stays gone
                    self._table.update_item(
                        Key=anchor,
                        UpdateExpression="SET #w = if_not_exists(#w, :empty)",
                        ConditionExpression="attribute_exists(pk)",
                        ExpressionAttributeNames={"#w": wide.WIDE_ATTR},
                        ExpressionAttributeValues={":empty": {}},
                    )
                else:
                    self._table.update_item(
                        Key=anchor,
                        UpdateExpression="SET #w = if_not_exists(#w, :empty), #t = if_not_exists(#t, :type)",
                        ExpressionAttributeNames={"#w": wide.WIDE_ATTR, "#t": "type"},
                        ExpressionAttributeValues={":empty": {}, ":type": "profile"},
                    )
                self._table.update_item(
                    Key=anchor,
                    UpdateExpression="SET #w.#c = :role",
                    ConditionExpression="attribute_exists(#w.#c) OR size(#w) < :max",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":role": role, ":max": wide.MAX_WIDE},
                )
            listed = True
        except Conflict:  # a room that is gone, or a reader with MAX_WIDE wide calendars already
            listed = False
        with _mapped_errors("subscribe calendar"):
            self._table.update_item(
                Key={"pk": keys.calendar_pk(calendar_id), "sk": keys.CALENDAR},
                UpdateExpression="SET #cp = if_not_exists(#cp, :empty)",
                ExpressionAttributeNames={"#cp": "copyTo"},
                ExpressionAttributeValues={":empty": {}},
            )
            key = {"pk": keys.calendar_pk(calendar_id), "sk": keys.CALENDAR}
            names = {"#cp": "copyTo", "#o": owner_pk}
            if listed:
                self._table.update_item(
                    Key=key, UpdateExpression="REMOVE #cp.#o", ExpressionAttributeNames=names
                )
            else:
                self._table.update_item(
                    Key=key,
                    UpdateExpression="SET #cp.#o = :role",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":role": role},
                )
        if listed:
            self.bump_versions([owner_pk])  # their answer now includes the calendar's partition
        return listed

    def _leave_wide(self, calendar_id: str, owner_pk: str) -> bool:
        """Take a calendar off its subscriber's list of wide calendars; True when it was there."""
        try:
            with _mapped_errors("unlist wide calendar"):
                self._table.update_item(
                    Key=self._anchor(owner_pk),
                    UpdateExpression="REMOVE #w.#c",
                    ConditionExpression="attribute_exists(#w.#c)",
                    ExpressionAttributeNames={"#w": wide.WIDE_ATTR, "#c": calendar_id},
                )
        except Conflict:
            return False
        return True

    def widen(self, calendar_id: str, *, in_time: Callable[[], bool] = lambda: True) -> Backfill | None:
        """Store a calendar that has more than ``wide_threshold`` subscribers once (0021),
        resuming where an earlier call stopped; ``None`` when there is nothing to do. Steps, each
        idempotent, ``in_time()`` asked between pages (out of time: ``incomplete``, the next call
        goes on; the sync engine and the next subscription call it):

        1. ``layout = widening``: from now on every write goes to the copies AND the calendar's
           partitions, so no reader misses a change whichever step it sees;
        2. the calendar's partitions are filled from the copies (``backfill``, R4 for the rooms');
           what has no usable copy is ``missing`` (the caller has the next full sync fetch it);
        3. every subscriber lists the calendar on its item (or, with ``MAX_WIDE`` listed already,
           stays on copies: ``copyTo``), its version bumped;
        4. ``layout = wide``: writes go to the calendar's partitions (and ``copyTo``) only;
        5. the subscribers' copies are deleted (a read meanwhile sees each occurrence once: reads
           keep the first of an id, with the role from the list); ``swept`` stays false until then,
           so the next call goes on."""
        calendar = self.get_calendar(calendar_id)
        if calendar is None or not wide.should_widen(calendar, self.wide_threshold):
            return None
        if calendar.layout == "copies":
            with _mapped_errors("widen calendar"):
                self._table.update_item(
                    Key={"pk": keys.calendar_pk(calendar_id), "sk": keys.CALENDAR},
                    UpdateExpression="SET #l = :widening, #cp = if_not_exists(#cp, :empty)",
                    ExpressionAttributeNames={"#l": "layout", "#cp": "copyTo"},
                    ExpressionAttributeValues={":widening": "widening", ":empty": {}},
                )
            calendar = calendar.model_copy(update={"layout": "widening"})
        result = Backfill()
        if calendar.layout == "wide":  # only the sweep was left
            result.incomplete = not self._sweep_copies(calendar, in_time)
            return result
        for pk, role in wide.wide_targets(calendar).items():
            done = self.backfill(calendar, pk, role, in_time=in_time)
            result.copied += done.copied
            result.missing += done.missing
            if done.incomplete:
                result.incomplete = True
                return result
        for n, (pk, role) in enumerate(sorted(calendar.subscribers.items())):
            if n % 25 == 0 and not in_time():
                result.incomplete = True
                return result
            self._join_wide(calendar_id, pk, role)
        with _mapped_errors("widen calendar"):
            self._table.update_item(
                Key={"pk": keys.calendar_pk(calendar_id), "sk": keys.CALENDAR},
                UpdateExpression="SET #l = :wide, #s = :no",
                ExpressionAttributeNames={"#l": "layout", "#s": "swept"},
                ExpressionAttributeValues={":wide": "wide", ":no": False},
            )
        calendar = self.get_calendar(calendar_id) or calendar
        result.incomplete = not self._sweep_copies(calendar, in_time)
        logger.info(
            "calendar widened",
            extra={
                "calendar_id": calendar_id,
                "subscribers": len(calendar.subscribers),
                "copy_to": len(calendar.copy_to),
                "copied": result.copied,
                "missing": result.missing,
                "swept": not result.incomplete,
            },
        )
        return result

    def _sweep_copies(self, calendar: Calendar, in_time: Callable[[], bool]) -> bool:
        """Delete the copies of a wide calendar held by subscribers that read its partitions; True
        when none is left."""
        keep = set(calendar.copy_to)
        owners: set[str] = set()
        try:
            for n, index in enumerate(self._index_items(calendar.calendar_id)):
                if n % 100 == 0 and not in_time():
                    return False
                copies = _copy_refs(index)
                stale = [
                    ref for ref in copies if keys.wide_calendar_of_pk(ref[0]) is None and ref[0] not in keep
                ]
                if not stale:
                    continue
                try:  # only if no write of the occurrence came meanwhile (it deleted them itself)
                    with _mapped_errors("update occurrence index"):
                        self._table.update_item(
                            Key={"pk": index["pk"], "sk": index["sk"]},
                            UpdateExpression="SET #c = :c",
                            ConditionExpression="#c = :old",
                            ExpressionAttributeNames={"#c": "copies"},
                            ExpressionAttributeValues={
                                ":c": [list(r) for r in copies if r not in stale],
                                ":old": index["copies"],
                            },
                        )
                except Conflict:
                    continue
                self._delete_copies(stale)
                owners.update(pk for pk, _ in stale)
            with _mapped_errors("widen calendar"):
                self._table.update_item(
                    Key={"pk": keys.calendar_pk(calendar.calendar_id), "sk": keys.CALENDAR},
                    UpdateExpression="SET #s = :yes",
                    ExpressionAttributeNames={"#s": "swept"},
                    ExpressionAttributeValues={":yes": True},
                )
            return True
        finally:
            self.bump_versions(owners)

    def unsubscribe(self, calendar_id: str, owner_pk: str) -> None:
        """Stop copying to ``owner_pk`` and delete the copies it has."""
        with _mapped_errors("unsubscribe calendar"):
            try:
                self._table.update_item(
                    Key={"pk": keys.calendar_pk(calendar_id), "sk": keys.CALENDAR},
                    UpdateExpression="REMOVE #subs.#o",
                    # a calendar no longer stored has no subscribers (REMOVE on it is a ValidationException)
                    ConditionExpression="attribute_exists(#subs)",
                    ExpressionAttributeNames={"#subs": "subscribers", "#o": owner_pk},
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
            with suppress(ClientError):  # only a wide calendar has the map (0021)
                self._table.update_item(
                    Key={"pk": keys.calendar_pk(calendar_id), "sk": keys.CALENDAR},
                    UpdateExpression="REMOVE #cp.#o",
                    ConditionExpression="attribute_exists(#cp)",
                    ExpressionAttributeNames={"#cp": "copyTo", "#o": owner_pk},
                )
        removed = self._leave_wide(calendar_id, owner_pk)
        for index in self._index_items(calendar_id):
            copies = _copy_refs(index)
            stale = [ref for ref in copies if ref[0] == owner_pk]
            if stale:
                self._delete_copies(stale)
                removed = True
                remaining = [list(ref) for ref in copies if ref[0] != owner_pk]
                with _mapped_errors("update occurrence index"):
                    self._table.update_item(
                        Key={"pk": index["pk"], "sk": index["sk"]},
                        UpdateExpression="SET #c = :c",
                        ExpressionAttributeNames={"#c": "copies"},
                        ExpressionAttributeValues={":c": remaining},
                    )
        if removed:
            self.bump_versions([owner_pk])

    def bump_versions(
        self,
        pks: Iterable[str],
        *kinds: str,
        answer: live.Answer | None = None,
        calendar: Calendar | None = None,
        look_again: bool = True,
    ) -> dict[str, int]:
        """After a write: the versions of the people and rooms among ``pks`` grow (``versions``;
        ``kinds`` and ``answer``: what the live channel's events say), and those of the wide
        calendars whose partitions are among them (0021), whose subscribers are then told on the
        live channel (``calendar``: the one written, when the caller has it; ``look_again``: see
        ``versions.bump``)."""
        pks = list(pks)
        calendar_ids = sorted({c for c in map(keys.wide_calendar_of_pk, pks) if c is not None})
        with _mapped_errors("store version"):
            out = versions.bump(self._table, pks, *kinds, answer=answer, look_again=look_again)
            for calendar_id in calendar_ids:
                version = versions.bump_wide(self._table, calendar_id)
                out[keys.wide_pk(calendar_id)] = version
                of = calendar if calendar is not None and calendar.calendar_id == calendar_id else None
                of = of or self.get_calendar(calendar_id)
                if of is not None:
                    live.publish_wide(calendar_id, version, of.subscribers)
        return out

    def wide_versions(self, calendar_ids: Iterable[str]) -> dict[str, int]:
        """The versions of these wide calendars (0 for one never written): ONE BatchGetItem for up
        to 100 (a reader has at most ``wide.MAX_WIDE``)."""
        ids = sorted(set(calendar_ids))
        if not ids:
            return {}
        found = self._batch_get([(keys.wide_pk(c), keys.VERSION) for c in ids])
        return {c: versions.of(found.get((keys.wide_pk(c), keys.VERSION))) for c in ids}

    def meetings_version(self, own: int, wide_calendars: Mapping[str, str]) -> int | str:
        """What an owner's meetings ETag is made of: their own version, and with wide calendars
        (0021) each one's version (ONE BatchGetItem), read before the data as ``versions`` requires.
        The set of wide calendars only changes with a bump of the owner's own version."""
        if not wide_calendars:
            return own
        found = self.wide_versions(wide_calendars)
        return "-".join([str(own), *(str(found[c]) for c in sorted(found))])

    def backfill(
        self,
        calendar: Calendar,
        owner_pk: str,
        role: SubscriberRole,
        *,
        restamp: bool = False,
        in_time: Callable[[], bool] = lambda: True,
    ) -> Backfill:
        """R8 (and a calendar added to a configuration): copy what the store already holds of
        ``calendar`` into the partition of a new subscriber, at once, R4 applied as on write.

        The source of each occurrence is a person's copy (whole); for a room, a room's copy will do
        too (already R4-filtered with the calendar's one access role, and ``for_room`` of it is
        itself). An occurrence without a usable copy is counted as ``missing``: only a fetch from
        the provider can fill it (the caller asks the sync for one). Idempotent: an occurrence that
        already has a copy in ``owner_pk`` is left alone, unless ``restamp`` (a person's role
        changed): then that copy is written again with the new role. Reads and writes go in
        batches of 100 occurrences; before each, ``in_time()`` is asked (the caller's time budget):
        when it says no, the rest is left out and the result is ``incomplete``.

        Of a wide calendar (0021) that the owner reads from the calendar's partitions, the partition
        of the owner's kind is what is filled (a room's is written only once a room subscribes)."""
        reads_wide = owner_pk in calendar.subscribers and owner_pk not in calendar.copy_to
        if calendar.layout == "wide" and reads_wide:
            owner_pk = keys.wide_read_pk(calendar.calendar_id, role)
            role = "room" if role == "room" else "conflict"
            restamp = False
        result = Backfill()
        try:
            page: list[dict[str, Any]] = []
            for index in self._index_items(calendar.calendar_id):
                page.append(index)
                if len(page) == _BATCH_GET:
                    if not in_time():
                        result.incomplete = True
                        return result
                    self._backfill_page(calendar, owner_pk, role, page, result=result, restamp=restamp)
                    page = []
            if page and not in_time():
                result.incomplete = True
                return result
            if page:
                self._backfill_page(calendar, owner_pk, role, page, result=result, restamp=restamp)
            return result
        finally:
            if result.copied:
                self.bump_versions([owner_pk])

    def _backfill_page(
        self,
        calendar: Calendar,
        owner_pk: str,
        role: SubscriberRole,
        indexes: Sequence[dict[str, Any]],
        *,
        result: Backfill,
        restamp: bool,
    ) -> None:
        sources: dict[str, tuple[dict[str, Any], list[str], CopyRef]] = {}  # occId -> (index, sks, source)
        for index in indexes:
            copies = _copy_refs(index)
            by_owner: dict[str, list[str]] = {}
            for pk, sk in copies:
                by_owner.setdefault(pk, []).append(sk)
            if owner_pk in by_owner and not restamp:
                continue
            whole = [pk for pk in by_owner if _whole(calendar, pk)]
            if owner_pk in by_owner and role != "room":
                whole = [owner_pk]  # a person's own copy is whole: written again with the new role
            usable = whole or (list(by_owner) if role == "room" else [])
            if not usable:
                result.missing += 1
                continue
            source = usable[0]
            sks = sorted(by_owner[source], key=_chunk_number)
            sources[str(index["occId"])] = (index, sks, (source, sks[0]))
        if not sources:
            return
        found = self._batch_get([ref for _, _, ref in sources.values()])
        with _mapped_errors("copy occurrences"), self._table.batch_writer() as batch:
            for index, sks, ref in sources.values():
                item = found.get(ref)
                if item is None:  # deleted meanwhile (a sync or the cleanup): nothing to copy
                    result.missing += 1
                    continue
                occ = item_to_occurrence(item)
                body = occurrence_to_item(
                    for_room(occ, calendar.access_role) if role == "room" else occ, role
                )
                end = keys.parse_iso(str(index["end"]))
                for sk in sks:
                    batch.put_item(
                        Item={
                            "pk": owner_pk,
                            "sk": sk,
                            **body,
                            "gsi1pk": keys.end_bucket(end, keys.cleanup_shard(owner_pk)),
                            "gsi1sk": keys.end_sort(end, owner_pk, sk),
                            "expiresAt": index.get("expiresAt", int((end + TTL_MARGIN).timestamp())),
                        }
                    )
                old = _copy_refs(index)
                if not any(pk == owner_pk for pk, _ in old):
                    refs = [list(c) for c in old] + [[owner_pk, sk] for sk in sks]
                    batch.put_item(Item={**index, "copies": refs})
                result.copied += 1

    def _batch_get(self, refs: Sequence[CopyRef]) -> dict[CopyRef, dict[str, Any]]:
        """The items at ``refs`` (at most 100), with BatchGetItem's unprocessed keys asked again."""
        name = self._table.name
        client = self._table.meta.client  # the resource's client: plain values in and out
        request: Any = {name: {"Keys": [{"pk": pk, "sk": sk} for pk, sk in refs], "ConsistentRead": True}}
        out: dict[CopyRef, dict[str, Any]] = {}
        for _ in range(_BATCH_ATTEMPTS):
            with _mapped_errors("read occurrences"):
                resp = client.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(name, []):
                out[(str(item["pk"]), str(item["sk"]))] = dict(item)
            request = resp.get("UnprocessedKeys") or {}
            if not request:
                return out
        raise StoreUnavailable("read occurrences: the store is busy, try again")

    # ---- occurrences ------------------------------------------------------------------------
    def store_occurrences(
        self,
        calendar: Calendar,
        occurrences: Sequence[Occurrence],
        *,
        span: tuple[datetime, datetime] | None = None,
    ) -> int:
        """Upsert occurrences of one calendar into every subscriber's partition.

        Idempotent: storing the same occurrence twice writes the same items. A moved occurrence
        replaces its old copies. Rooms get the R4-filtered copy. Every field is bounded first
        (``calsync.domain.limits``, S11). ``span`` (the sync's horizon): an occurrence longer than
        it gets index entries inside it only (a ten-year event does not cost 3,650 items per owner).
        Batched: one BatchGetItem per 100 occurrences for their old index entries, BatchWriteItem for
        the rest. ``Unstorable`` (nothing written) when an occurrence cannot be stored.
        Returns the number of items written.
        """
        prepared: list[tuple[dict[str, str], list[dict[str, Any]], dict[str, Any]]] = []
        for raw in occurrences:
            if raw.calendar_id != calendar.calendar_id:
                raise ValueError("occurrence of another calendar")
            occ = bounded(raw)
            index_key = {"pk": keys.calendar_pk(calendar.calendar_id), "sk": keys.occurrence_index_sk(occ.id)}
            wide_start, wide_end = widest_instants(occ)
            first, last = wide_start, wide_end
            if span is not None and (wide_start < span[0] or wide_end > span[1]):
                first, last = max(wide_start, span[0]), min(wide_end, span[1])
                if last <= first:  # outside the span: one entry at its start, as before
                    first, last = wide_start, wide_start
            sks = keys.event_sks(first, last, occ.id)
            expires = int((wide_end + TTL_MARGIN).timestamp())
            copies: list[dict[str, Any]] = []
            for owner_pk, role in wide.targets(calendar).items():
                copy = for_room(occ, calendar.access_role) if role == "room" else occ
                body = occurrence_to_item(copy, role)
                for sk in sks:
                    copies.append(
                        {
                            "pk": owner_pk,
                            "sk": sk,
                            **body,
                            "gsi1pk": keys.end_bucket(wide_end, keys.cleanup_shard(owner_pk)),
                            "gsi1sk": keys.end_sort(wide_end, owner_pk, sk),
                            "expiresAt": expires,
                        }
                    )
            index_pk = index_key["pk"]
            index = {
                **index_key,
                "type": "occurrenceIndex",
                "occId": occ.id,
                "etag": occ.etag or "",
                "end": keys.iso(wide_end),
                "copies": [[c["pk"], c["sk"]] for c in copies],
                "digest": _digest(copies),
                "gsi1pk": keys.end_bucket(wide_end, keys.cleanup_shard(index_pk)),
                "gsi1sk": keys.end_sort(wide_end, index_pk, index_key["sk"]),
                "expiresAt": expires,
            }
            check_item(index, "the event's index entry")
            if copies:
                check_item(copies[0], "the event")
            prepared.append((index_key, copies, index))
        old = self._get_many([p[0] for p in prepared], "read occurrence index")
        stale: set[CopyRef] = set()
        changed: set[str] = set()  # the owners whose copies differ from what was stored
        written = 0
        with (
            _mapped_errors("store occurrence"),
            self._table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch,
        ):
            for index_key, copies, index in prepared:
                for item in copies:
                    batch.put_item(Item=item)
                batch.put_item(Item=index)
                written += len(copies) + 1
                new = {(c["pk"], c["sk"]) for c in copies}
                before = old.get((index_key["pk"], index_key["sk"]))
                stale |= set(_copy_refs(before)) - new
                if before is None or before.get("digest") != index["digest"]:
                    changed.update(c["pk"] for c in copies)
        if stale:
            self._delete_copies(sorted(stale))
        # the same occurrences again: none
        self.bump_versions([*changed, *(pk for pk, _ in stale)], calendar=calendar)
        return written

    def _get_many(self, item_keys: Sequence[Mapping[str, str]], what: str) -> dict[CopyRef, dict[str, Any]]:
        return batch_get(self._table, item_keys, what)

    def delete_occurrence(self, calendar_id: str, occ_id: str) -> bool:
        return self.delete_occurrences(calendar_id, [occ_id]) == 1

    def delete_occurrences(self, calendar_id: str, occ_ids: Iterable[str]) -> int:
        """Delete occurrences (every copy and their index entries), batched; how many existed."""
        index_keys = [
            {"pk": keys.calendar_pk(calendar_id), "sk": keys.occurrence_index_sk(occ_id)}
            for occ_id in occ_ids
        ]
        if not index_keys:
            return 0
        old = self._get_many(index_keys, "read occurrence index")
        doomed = [ref for item in old.values() for ref in _copy_refs(item)]
        self._delete_copies([*doomed, *old])
        self.bump_versions(pk for pk, _ in doomed)
        return len(old)

    def _index_items(self, calendar_id: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": keys.calendar_pk(calendar_id), ":p": keys.OCC_PREFIX},
        }
        while True:
            with _mapped_errors("read occurrence index"):
                resp = self._table.query(**kwargs)
            yield from resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _delete_copies(self, copies: Sequence[CopyRef]) -> None:
        with _mapped_errors("delete occurrence copies"), self._table.batch_writer() as batch:
            for pk, sk in copies:
                batch.delete_item(Key={"pk": pk, "sk": sk})

    def read_owner_events(
        self,
        kind: OwnerKind,
        owner_id: str,
        window_start: datetime,
        window_end: datetime,
        wide_calendars: Mapping[str, SubscriberRole] | None = None,
    ) -> OwnerEvents:
        """Every occurrence in an owner's partition that may overlap the window: ONE Query, plus one
        per wide calendar the owner reads (``wide_calendars``, from their profile or room item:
        at most ``wide.MAX_WIDE``, docs/adr/0021), each with the owner's role on it.

        Correct for events that began before the window (see ``keys.event_range``); the rules then
        place each event exactly. Ended events are not filtered here: the rules do, so that reads
        never rely on TTL or cleanup having run.
        """
        low, high = keys.event_range(window_start.astimezone(UTC), window_end.astimezone(UTC))
        roles = dict(wide_calendars or {})
        partitions = [keys.owner_pk(kind, owner_id)]
        partitions += [keys.wide_read_pk(c, role) for c, role in sorted(roles.items())]
        seen: set[str] = set()
        occurrences: list[Occurrence] = []
        primary: set[str] = set()
        for pk in partitions:
            for item in self._query_events(pk, low, high):
                occ_id = str(item["occId"])
                if occ_id in seen:  # chunks of a long event; a copy left while a calendar widens
                    continue
                seen.add(occ_id)
                occurrences.append(item_to_occurrence(item))
                calendar_id = str(item["calendarId"])
                if roles.get(calendar_id, item.get("role")) == "primary":  # a wide one: the owner's role
                    primary.add(calendar_id)
        return OwnerEvents(occurrences, frozenset(primary))

    def _query_events(self, pk: str, low: str, high: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {":pk": pk, ":lo": low, ":hi": high},
        }
        while True:
            with _mapped_errors("read meetings"):
                resp = self._table.query(**kwargs, ConsistentRead=True)
            yield from resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:  # only past 1 MB of candidates
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # ---- cleanup (S9) -----------------------------------------------------------------------
    def delete_ended_page(
        self, bucket: str, cutoff: datetime, *, limit: int, after: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any] | None]:
        """One page of the cleanup (docs/cleanup-scaling.md): one Query of at most ``limit`` keys of
        the hour bucket ``bucket`` that ended before ``cutoff`` (after the index key ``after``),
        deleted with BatchWriteItem, and the people and rooms touched get a new version. Returns the
        keys deleted and the index key to continue from (None: the bucket is read to its end).
        Deleting a key twice (a task delivered again) deletes nothing the second time."""
        kwargs: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :b AND gsi1sk < :c",
            "ExpressionAttributeValues": {":b": bucket, ":c": keys.iso(cutoff)},
            "Limit": limit,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = after
        with _mapped_errors("read ended events"):
            resp = self._table.query(**kwargs)
        items = resp.get("Items", [])
        if items:
            with _mapped_errors("delete ended events"), self._table.batch_writer() as batch:
                for item in items:
                    batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
            # an ended event is still in an answer's ``excluded`` list (U2, explain=true) until now
            self.bump_versions({str(item["pk"]) for item in items})
        return len(items), resp.get("LastEvaluatedKey")

    def get_cleanup_cursor(self, shard: int) -> datetime | None:
        """The first hour the cleanup of ``shard`` still has to read (the cursor the single
        cleanup invocation kept before the fan-out is the fallback: docs/adr/0020)."""
        mine, legacy = keys.cleanup_cursor(shard), keys.CLEANUP_CURSOR
        found = batch_get(self._table, [mine, legacy], "read cleanup cursor")
        item = found.get((mine["pk"], mine["sk"])) or found.get((legacy["pk"], legacy["sk"]))
        return keys.parse_iso(str(item["until"])) if item else None

    def advance_cleanup_cursor(self, shard: int, until: datetime) -> bool:
        """Move the shard's cursor to ``until``, never backwards (two tasks of a shard — a task
        delivered twice, or a run and the next one's — may finish in any order). False: it was
        already there or further."""
        with contextlib.suppress(Conflict), _mapped_errors("store cleanup cursor"):
            self._table.put_item(
                Item={**keys.cleanup_cursor(shard), "until": keys.iso(until)},
                ConditionExpression="attribute_not_exists(#u) OR #u < :u",
                ExpressionAttributeNames={"#u": "until"},
                ExpressionAttributeValues={":u": keys.iso(until)},
            )
            return True
        return False


def batch_get(
    table: Table, item_keys: Sequence[Mapping[str, str]], what: str, *, attempts: int = 9
) -> dict[CopyRef, dict[str, Any]]:
    """Consistent BatchGetItem of up to any number of keys (100 per request; unprocessed keys
    are asked again, with a short backoff, ``attempts`` requests per 100 keys at most). Items by
    (pk, sk)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    unique = list({(k["pk"], k["sk"]): k for k in item_keys}.values())
    client = table.meta.client
    for start in range(0, len(unique), 100):
        request: Any = {table.name: {"Keys": unique[start : start + 100], "ConsistentRead": True}}
        attempt = 0
        while request:
            with _mapped_errors(what):
                resp = client.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(table.name, []):
                found[(str(item["pk"]), str(item["sk"]))] = dict(item)
            request = resp.get("UnprocessedKeys") or None
            if request:
                attempt += 1
                if attempt >= attempts:
                    raise StoreUnavailable(f"{what}: the store is busy, try again")
                time.sleep(min(1.0, 0.05 * 2**attempt))
    return found


def _digest(copies: Sequence[Mapping[str, Any]]) -> str:
    """What an occurrence's copies hold, in 16 bytes: the same again changes no owner's version."""
    text = json.dumps(copies, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _as_map(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _roles(value: Any) -> dict[str, SubscriberRole]:
    """A stored map of partition keys (or calendar ids) to subscriber roles."""
    return {str(k): v for k, v in _as_map(value).items()}


def _copy_refs(index: Mapping[str, Any] | None) -> list[CopyRef]:
    """The (pk, sk) of every copy an occurrence index entry lists."""
    refs = (index or {}).get("copies") or []
    return [(str(ref[0]), str(ref[1])) for ref in refs]


def _whole(calendar: Calendar, pk: str) -> bool:
    """Whether the copy in ``pk`` is whole (a person's, or a wide calendar's people's partition),
    not R4-filtered (a room's)."""
    if keys.wide_calendar_of_pk(pk) is not None:
        return pk.startswith(keys.WIDE_PREFIX)
    return calendar.subscribers.get(pk, "room") != "room"


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
