"""The live channel's publisher (issue 15, docs/adr/0015-live-channel-appsync-events.md): after a
write made an owner's version grow (``calsync.store.versions``), a small event saying so goes to
AppSync Events' HTTP publish endpoint (``POST <LIVE_EVENTS_URL>`` with ``{"channel", "events"}``,
https://docs.aws.amazon.com/appsync/latest/eventapi/publish-http.html); the local stack serves the
same endpoint (local/live.py).

Channels (namespace ``calsync``; who may subscribe is checked on subscribe, X1):

- ``/calsync/users/<userId>``: "your meetings changed" (the person only);
- ``/calsync/locations/<locationId>/presence/<userId>``: that person's presence changed (members of
  the location; a client may subscribe to ``…/presence/*`` for the whole location);
- ``/calsync/locations/<locationId>/rooms/<roomId>``: "this room's meetings changed" (members).

An event is ``{"type": "meetings"|"presence"|"room", "id": <owner id>, "version": <n>}``. A presence
event also carries the answer itself when its writer knows it (docs/adr/0018): ``"presence"``, the
JSON a colleague's ``GET /v1/users/{id}/presence`` returns (X1: the channel is open to the same
people), and ``"etag"``, that answer's ETag; so colleagues' apps need no refetch. Meetings are never
in an event: the client refetches them with ``If-None-Match`` (a 304 when it has them already).
Versions only grow: a client that sees a gap, or reconnects, refetches once and has lost nothing.

Publishing never fails the write that caused it (the change is stored, reads are consistent): a
failure is one WARNING log line and the metric ``LiveEventsFailed``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from calsync.observability import logger, metrics
from calsync.store import keys

NAMESPACE = "calsync"
TIMEOUT_S = 2.0


def user_channel(user_id: str) -> str:
    return f"/{NAMESPACE}/users/{user_id}"


def presence_channel(location_id: str, user_id: str) -> str:
    return f"/{NAMESPACE}/locations/{location_id}/presence/{user_id}"


def room_channel(location_id: str, room_id: str) -> str:
    return f"/{NAMESPACE}/locations/{location_id}/rooms/{room_id}"


class Publisher(Protocol):
    def publish(self, channel: str, events: list[Mapping[str, Any]]) -> bool: ...


class HttpPublisher:
    """AppSync Events' HTTP publish: SigV4 (IAM, service ``appsync``) in AWS, or the local stack's
    API key (``x-api-key``)."""

    def __init__(self, url: str, api_key: str | None = None, region: str | None = None) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"LIVE_EVENTS_URL must be an http(s) URL, not {url!r}")
        self._url = url
        self._api_key = api_key
        self._region = region

    def publish(self, channel: str, events: list[Mapping[str, Any]]) -> bool:
        body = json.dumps(
            {"channel": channel, "events": [json.dumps(e, separators=(",", ":")) for e in events]}
        ).encode()
        headers = {"content-type": "application/json"}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        else:
            headers.update(self._signed(body))
        request = urllib.request.Request(  # noqa: S310 - http(s) only (checked in __init__)
            self._url, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:  # noqa: S310 - our endpoint
                answer = json.loads(resp.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return _failed(type(exc).__name__, channel)
        if answer.get("failed"):
            return _failed("failed events", channel)
        metrics.add_metric(name="LiveEventsPublished", unit="Count", value=len(events))
        return True

    def _signed(self, body: bytes) -> dict[str, str]:
        import boto3  # noqa: PLC0415 - only in AWS
        from botocore.auth import SigV4Auth  # noqa: PLC0415
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415

        # the session of the function's own clients (a write always comes first): its credentials
        # are resolved already; a new Session would load botocore's data again (docs/adr/0022)
        session = boto3.DEFAULT_SESSION or boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise OSError("no AWS credentials to sign the publish with")
        request = AWSRequest(
            method="POST", url=self._url, data=body, headers={"content-type": "application/json"}
        )
        SigV4Auth(credentials, "appsync", self._region or session.region_name or "eu-west-1").add_auth(
            request
        )
        return dict(request.headers.items())


def _failed(why: str, channel: str) -> bool:
    logger.warning("live event not published", extra={"why": why, "channel": channel})
    metrics.add_metric(name="LiveEventsFailed", unit="Count", value=1)
    return False


_chosen: dict[str, Publisher | None] = {}  # "publisher": the one in use, once known


def use(publisher: Publisher | None) -> None:
    """Publish through ``publisher`` (tests, the local stack); ``None``: as the environment says."""
    _chosen.clear()
    if publisher is not None:
        _chosen["publisher"] = publisher


def current() -> Publisher | None:
    """The publisher: the injected one, else LIVE_EVENTS_URL (+ LIVE_EVENTS_API_KEY locally); none
    when the URL is not set (nothing is published)."""
    if "publisher" not in _chosen:
        url = os.environ.get("LIVE_EVENTS_URL", "").strip()
        _chosen["publisher"] = (
            HttpPublisher(url, os.environ.get("LIVE_EVENTS_API_KEY") or None) if url else None
        )
    return _chosen["publisher"]


Answer = Callable[[int], Mapping[str, Any]]  # a version -> the presence event's extra fields


def changed(
    kind: str, owner_pk: str, item: Mapping[str, Any], version: int, answer: Answer | None = None
) -> Iterable[tuple[str, dict[str, Any]]]:
    """The (channel, event) pairs of one owner's new ``version``; ``item``: its PROFILE or ROOM item
    after the bump (the person's locations, the room's location). ``kind``: what changed for a
    person, ``meetings`` or ``presence``; ``answer``: for presence, the fields the event carries
    besides (``presence``, ``etag``) at this version."""
    owner_id = owner_pk.split("#", 1)[1]
    room = keys.room_of_pk(owner_pk)
    if room is not None:  # ROOM#<locationId>#<roomId> (docs/adr/0012); the room id is the location's own
        location, room_id = room[0] or item.get("locationId"), room[1]
        if location:
            yield room_channel(str(location), room_id), {"type": "room", "id": room_id, "version": version}
        return
    if kind == "meetings":
        yield user_channel(owner_id), {"type": "meetings", "id": owner_id, "version": version}
        return
    extra = dict(answer(version)) if answer is not None else {}
    for location in sorted(str(loc) for loc in (item.get("locations") or [])):
        event = {"type": "presence", "id": owner_id, "version": version, **extra}
        yield presence_channel(location, owner_id), event


def publish_changes(
    kind: str, bumped: Mapping[str, tuple[int, Mapping[str, Any]]], answer: Answer | None = None
) -> None:
    """Publish the new versions of the owners a write bumped (never raises)."""
    publisher = current()
    if publisher is None:
        return
    for pk, (version, item) in bumped.items():
        for channel, event in changed(kind, pk, item, version, answer):
            try:
                publisher.publish(channel, [event])
            except Exception as exc:
                _failed(type(exc).__name__, channel)


PUBLISH_THREADS = 16


def publish_wide(calendar_id: str, version: int, subscribers: Mapping[str, str]) -> None:
    """A wide calendar changed (docs/adr/0021): every subscriber's own channel hears it, as
    ``{"type": "meetings"|"room", "id", "calendarId", "calendarVersion"}`` (the calendar's version
    grows like an owner's). One publish per subscriber, ``PUBLISH_THREADS`` at a time: no table
    write, and a client needs no new subscription or authorization. Never raises."""
    publisher = current()
    if publisher is None:
        return
    sends: list[tuple[str, dict[str, Any]]] = []
    for pk in sorted(subscribers):
        room = keys.room_of_pk(pk)
        if room is not None:
            if room[0]:  # a legacy room (no location in its key) has no channel
                sends.append(
                    (
                        room_channel(room[0], room[1]),
                        {
                            "type": "room",
                            "id": room[1],
                            "calendarId": calendar_id,
                            "calendarVersion": version,
                        },
                    )
                )
        elif pk.startswith(keys.user_pk("")):
            user_id = pk.removeprefix(keys.user_pk(""))
            sends.append(
                (
                    user_channel(user_id),
                    {
                        "type": "meetings",
                        "id": user_id,
                        "calendarId": calendar_id,
                        "calendarVersion": version,
                    },
                )
            )

    def send(pair: tuple[str, dict[str, Any]]) -> None:
        try:
            publisher.publish(pair[0], [pair[1]])
        except Exception as exc:
            _failed(type(exc).__name__, pair[0])

    if len(sends) <= 1:
        for pair in sends:
            send(pair)
        return
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - only for wide calendars

    with ThreadPoolExecutor(max_workers=min(PUBLISH_THREADS, len(sends))) as pool:
        list(pool.map(send, sends))


def may_subscribe(channel: str, user_id: str, locations: Iterable[str]) -> bool:
    """X1 on the channels: a person's own meetings channel; a location's presence and room channels
    (one person or room, or ``*`` for all of them) for its members only."""
    parts = channel.strip("/").split("/")
    if len(parts) < 3 or parts[0] != NAMESPACE:
        return False
    if parts[1] == "users":
        return len(parts) == 3 and parts[2] == user_id
    if parts[1] == "locations" and len(parts) == 5 and parts[3] in ("presence", "rooms"):
        return parts[2] in set(locations) and bool(parts[4])
    return False
