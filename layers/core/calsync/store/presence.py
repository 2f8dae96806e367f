"""Presence, sessions and the profile attributes of issue 8 in the single table (keys: ``keys``).

- ``USER#<id> / PRESENCE``: status (absent: automatic), message, updatedAt.
- ``USER#<id> / SESSION#<sessionId>``: expiresAt (epoch seconds; the table's TTL attribute too, so
  DynamoDB deletes old sessions; reads never rely on that: live means expiresAt > now).
- ``USER#<id> / PROFILE``: phoneNumber, extension (directory entry), photoKey, photoPendingKey.
  Written with update expressions that touch only these attributes.

Reads are strongly consistent (P7). ``ClientError`` is mapped to domain errors as in the repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from calsync import live
from calsync.domain.errors import Conflict, NotFound
from calsync.domain.models import UTC
from calsync.domain.presence import Chosen, Session, Status
from calsync.store import keys, versions
from calsync.store.items import Profile
from calsync.store.repository import Repository, _mapped_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

UNSET: Any = object()  # "leave the message as it is"


@dataclass(frozen=True, slots=True)
class PresenceState:
    """Everything of one person that presence needs, from ONE strongly consistent Query."""

    user_id: str
    profile: Profile | None
    locations: frozenset[str] | None  # as their token last named them; None: never seen
    chosen: Chosen | None
    sessions: list[Session] = field(default_factory=list)


def _epoch(instant: datetime) -> int:
    return int(instant.timestamp())


def _instant(epoch: Any) -> datetime:
    return datetime.fromtimestamp(int(epoch), UTC)


class PresenceRepository:
    def __init__(self, table: Table) -> None:
        self._table = table

    # ---- reads --------------------------------------------------------------------------------
    def read_state(self, user_id: str) -> PresenceState:
        """The person's presence, profile (with their locations) and sessions: one Query, strongly
        consistent (P7), whatever else lives in the partition."""
        low, high = keys.presence_range()
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {":pk": keys.user_pk(user_id), ":lo": low, ":hi": high},
            "ConsistentRead": True,
        }
        profile: Profile | None = None
        locations: frozenset[str] | None = None
        chosen: Chosen | None = None
        sessions: list[Session] = []
        while True:
            with _mapped_errors("read presence"):
                resp = self._table.query(**kwargs)
            for item in resp.get("Items", []):
                sk = str(item["sk"])
                if sk == keys.PROFILE:
                    profile = Repository._profile(user_id, item)  # the one item -> Profile mapping
                    stored = item.get("locations")
                    if isinstance(stored, (list, set)):
                        locations = frozenset(str(loc) for loc in stored)
                elif sk == keys.PRESENCE:
                    chosen = _chosen(item)
                elif sk.startswith(keys.SESSION_PREFIX) and "expiresAt" in item:
                    sessions.append(
                        Session(sk.removeprefix(keys.SESSION_PREFIX), _instant(item["expiresAt"]))
                    )
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return PresenceState(user_id, profile, locations, chosen, sessions)

    # ---- the chosen status (P1-P4) --------------------------------------------------------------
    def set_status(
        self,
        user_id: str,
        status: Status,
        message: str | Any | None,
        now: datetime,
        answer: live.Answer | None = None,
    ) -> Chosen:
        """Choose a status; ``message``: the new message, ``None`` to clear it, ``UNSET`` to keep it.
        ``answer``: what the live channel's presence event carries (``calsync.live``), if known."""
        names = {"#type": "type", "#status": "status", "#updated": "updatedAt"}
        values: dict[str, Any] = {":type": "presence", ":status": status.value, ":updated": keys.iso(now)}
        expression = "SET #type = :type, #status = :status, #updated = :updated"
        if message is not UNSET:
            names["#msg"] = "message"
            if message is None:
                expression += " REMOVE #msg"
            else:
                expression += ", #msg = :msg"
                values[":msg"] = message
        with _mapped_errors("store presence"):
            item = self._table.update_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.PRESENCE},
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        self._bump(user_id, answer)
        return _chosen(item)

    def _bump(self, user_id: str, answer: live.Answer | None) -> None:
        """What others see changed: the person's version grows (after the write, ``versions``)."""
        with _mapped_errors("store version"):
            versions.bump(self._table, [keys.user_pk(user_id)], "presence", answer=answer)

    def clear_status(self, user_id: str, now: datetime, answer: live.Answer | None = None) -> Chosen:
        """Back to automatic (P6 applies again); the custom message stays."""
        with _mapped_errors("store presence"):
            item = self._table.update_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.PRESENCE},
                UpdateExpression="SET #type = :type, #updated = :updated REMOVE #status",
                ExpressionAttributeNames={"#type": "type", "#updated": "updatedAt", "#status": "status"},
                ExpressionAttributeValues={":type": "presence", ":updated": keys.iso(now)},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        self._bump(user_id, answer)
        return _chosen(item)

    def _touch(self, user_id: str, now: datetime, answer: live.Answer | None) -> None:
        """Record that what others see changed (a sign-in or a logout)."""
        with _mapped_errors("store presence"):
            self._table.update_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.PRESENCE},
                UpdateExpression="SET #type = :type, #updated = :updated",
                ExpressionAttributeNames={"#type": "type", "#updated": "updatedAt"},
                ExpressionAttributeValues={":type": "presence", ":updated": keys.iso(now)},
            )
        self._bump(user_id, answer)

    # ---- sessions (P5) --------------------------------------------------------------------------
    def create_session(
        self,
        user_id: str,
        session_id: str,
        now: datetime,
        lifetime: timedelta,
        answer: live.Answer | None = None,
    ) -> Session:
        session = Session(session_id, now + lifetime)
        try:
            with _mapped_errors("store session"):
                self._table.put_item(
                    Item={
                        "pk": keys.user_pk(user_id),
                        "sk": keys.session_sk(session_id),
                        "type": "session",
                        "createdAt": keys.iso(now),
                        "expiresAt": _epoch(session.expires_at),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except Conflict as exc:  # the condition failed: the id is taken
            raise Conflict("this session id is taken: try again") from exc
        self._touch(user_id, now, answer)
        return session

    def renew_session(self, user_id: str, session_id: str, now: datetime, lifetime: timedelta) -> Session:
        """Extend a live session (heartbeat); NotFound when it is unknown, logged out or expired."""
        session = Session(session_id, now + lifetime)
        try:
            with _mapped_errors("renew session"):
                self._table.update_item(
                    Key={"pk": keys.user_pk(user_id), "sk": keys.session_sk(session_id)},
                    UpdateExpression="SET #exp = :exp, #renewed = :renewed",
                    ConditionExpression="attribute_exists(pk) AND #exp > :now",
                    ExpressionAttributeNames={"#exp": "expiresAt", "#renewed": "renewedAt"},
                    ExpressionAttributeValues={
                        ":exp": _epoch(session.expires_at),
                        ":renewed": keys.iso(now),
                        ":now": _epoch(now),
                    },
                )
        except Conflict as exc:  # the condition failed: unknown, logged out or expired
            raise NotFound("no live session with this id: sign in again (POST /v1/me/sessions)") from exc
        return session

    def delete_session(
        self, user_id: str, session_id: str, now: datetime, answer: live.Answer | None = None
    ) -> bool:
        """Log out; ``True`` when a live session ended (what others see may have changed)."""
        with _mapped_errors("delete session"):
            old = self._table.delete_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.session_sk(session_id)},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
        ended = old is not None and "expiresAt" in old and _instant(old["expiresAt"]) > now
        if ended:
            self._touch(user_id, now, answer)
        return ended

    # ---- profile attributes (P8) ----------------------------------------------------------------
    def set_directory_entry(self, user_id: str, phone_number: str | None, extension: str | None) -> None:
        """Set (or remove, with ``None``) the phone number and extension; nothing else is touched."""
        names = {"#type": "type"}
        values: dict[str, Any] = {":type": "profile"}
        sets, removes = ["#type = :type"], []
        for attr, value in (("phoneNumber", phone_number), ("extension", extension)):
            names[f"#{attr}"] = attr
            if value is None:
                removes.append(f"#{attr}")
            else:
                values[f":{attr}"] = value
                sets.append(f"#{attr} = :{attr}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        with _mapped_errors("update profile"):
            self._table.update_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.PROFILE},
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )

    def set_photo_pending(self, user_id: str, key: str) -> None:
        """An upload URL for ``key`` was issued: the photo becomes the profile's once it is there."""
        with _mapped_errors("update profile"):
            self._table.update_item(
                Key={"pk": keys.user_pk(user_id), "sk": keys.PROFILE},
                UpdateExpression="SET #type = :type, #pending = :key",
                ExpressionAttributeNames={"#type": "type", "#pending": "photoPendingKey"},
                ExpressionAttributeValues={":type": "profile", ":key": key},
            )

    def confirm_photo(self, user_id: str, key: str) -> bool:
        """The pending upload arrived: it becomes the photo. ``False`` when another upload URL was
        issued meanwhile (that one is pending now; this one is left alone)."""
        try:
            with _mapped_errors("update profile"):
                self._table.update_item(
                    Key={"pk": keys.user_pk(user_id), "sk": keys.PROFILE},
                    UpdateExpression="SET #photo = :key REMOVE #pending",
                    ConditionExpression="#pending = :key",
                    ExpressionAttributeNames={"#photo": "photoKey", "#pending": "photoPendingKey"},
                    ExpressionAttributeValues={":key": key},
                )
        except Conflict:
            return False
        return True


def _chosen(item: dict[str, Any]) -> Chosen:
    raw_status = item.get("status")
    status = Status(str(raw_status)) if raw_status in set(Status) else None
    updated = item.get("updatedAt")
    message = item.get("message")
    return Chosen(
        status=status,
        message=str(message) if message else None,
        updated_at=keys.parse_iso(str(updated)) if updated else None,
    )
