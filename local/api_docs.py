"""The client developer's documentation of every operation of the HTTP API: a summary, a description
and examples of its request body, applied by ``python -m local.openapi`` to the document the
functions' resolvers generate (``describe``).

It lives here, in one place, rather than in the route decorators: a handler module reads as routes,
and this file reads as the API reference. ``tests/unit/test_openapi_docs.py`` fails when an operation
has no entry, an entry names no operation, or an example does not match its schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INTRO = """\
calsync keeps people's and meeting rooms' calendars from Google, Microsoft 365 / Outlook and iCloud
(any CalDAV server) in sync, and answers client apps: a person's upcoming meetings, a room panel's
next meetings, free/busy and appointments, presence and profile.

**Authentication.** Every operation except the provider webhooks and the OAuth callbacks takes
`Authorization: Bearer <JWT>`. The token's `sub` is the person, `locations` the locations they belong
to, `admin_of` the locations they administer. A missing, invalid or expired token answers 401; a
valid token that may not do what it asks answers 403. On the local stack (`make run`),
`.venv/bin/calsync-local token --user alice --location hq` prints one; paste it into *Authorize*.

**Errors** are RFC 9457 problem details (`application/problem+json`: `type`, `title`, `status`,
`detail`; validation errors add `errors: [{loc, msg}]`). `detail` is written for the person using
your app. A 503 means "retry shortly".

**Times** are RFC 3339 with an offset. All-day events carry `allDay: true` and dates in
`startDate` / `endDate` (end exclusive). Rule ids such as U3 or R4 refer to the product rules.
"""

TAGS: list[dict[str, str]] = [
    {"name": "meetings", "description": "A person's and a room's meetings of the next three days."},
    {"name": "accounts", "description": "Connect and disconnect Google, Microsoft and CalDAV accounts."},
    {"name": "calendars", "description": "The calendars of the connected accounts, and which to use."},
    {"name": "scheduling", "description": "Free/busy and appointments on a person's primary calendar."},
    {"name": "rooms", "description": "Rooms of a location, each backed by one calendar (admins)."},
    {"name": "presence", "description": "What others see: available, busy, away, offline."},
    {"name": "sessions", "description": "App sessions: a person signed in on any of them is online."},
    {"name": "profile", "description": "Time zone, display name, photo, phone number and extension."},
    {"name": "webhooks", "description": "Called by Google and Microsoft, not by client apps."},
]


@dataclass(frozen=True)
class Doc:
    summary: str
    description: str
    examples: dict[str, Any] = field(default_factory=dict)  # request body examples: name -> value
    tag: str | None = None  # for operations the resolver left without a tag


_MEETING_FIELDS = (
    "Each meeting: `id`, `title`, `start`, `end`, `allDay`, `meetingLink` (null when it has none), "
    "`recurring`, `private`, `canAddMeetingLink` (U10), `calendarId`, `accountId`, `provider`. "
)
_ETAG = "The answer carries an `ETag`; send it back in `If-None-Match` to get 304 when nothing changed."
_OAUTH = (
    "Starts the OAuth authorization-code flow (state and PKCE). Send the person's browser to "
    "`authorizationUrl`; the provider redirects to the callback, which connects the account. "
)
_OAUTH_CALLBACK = (
    "The end of the OAuth flow: the provider redirects the person's browser here with `code` and "
    "`state`. calsync checks the state and PKCE verifier, stores the grant encrypted and answers 201 "
    "with the account; 409 when C3 or C4 refuses it (see `POST /v1/me/accounts/caldav`). "
    "Authenticated by the state, not by a token."
)

OPERATIONS: dict[str, Doc] = {
    # ---- meetings
    "GET /v1/me/meetings": Doc(
        "List my meetings for the next three days",
        "The caller's meetings from 00:00 today to 00:00 three days later, in their profile's time "
        "zone (U1), from the primary and conflict calendars of every location they belong to. "
        "Left out: events that ended more than 61 minutes ago (U2), longer than 24 hours (U3), that "
        "the person cannot change (U4), recurring ones without a meeting link (U5), legacy links "
        "(U6), cancelled ones (U7) and duplicates (U8). Ordered by start, end, title (U9). "
        + _MEETING_FIELDS
        + "With `explain=true` the answer also lists `excluded` events with the ids of the rules "
        'that left each out: the answer to "why is my meeting not showing?". At most 500 meetings; '
        "`truncated: true` says more matched. " + _ETAG,
    ),
    "GET /v1/users/{userId}/meetings": Doc(
        "List a member's meetings (admins)",
        "The same list as `GET /v1/me/meetings`, for a member of a location the caller administers; "
        "403 for anyone else. " + _ETAG,
    ),
    "GET /v1/rooms/{roomId}/meetings": Doc(
        "List a room's next meetings (room panel)",
        "At most three meetings of the room's next three days in its time zone, those with a meeting "
        "link first, then by start (R6). Events that ended more than 61 minutes ago (R2) and ones "
        "over 24 hours without a link (R3) are left out, as are cancelled ones and duplicates. A "
        "private or confidential event is listed with `title: null` and `private: true`; its link only "
        "when calsync may change events on that calendar (R4). Room ids belong to their location: the "
        "room is looked for in your own locations, so a room of another location answers 404 just "
        "like one that does not exist; when several of your locations have a room of that id, 409 "
        "asks you to name one with `?locationId=`. " + _ETAG,
    ),
    "POST /v1/me/meetings/{meetingId}/meeting-link": Doc(
        "Add a meeting link to one of my meetings",
        "Creates a meeting link and writes it to the event at its provider (C12), then answers the "
        "updated meeting. Only for a listed, non-recurring meeting without a link "
        "(`canAddMeetingLink: true`): 409 otherwise, 404 for a meeting that is not the caller's. "
        "502 when the provider refused the change (nothing was changed).",
    ),
    # ---- accounts
    "GET /v1/me/accounts": Doc(
        "List my connected accounts",
        "Each account: `id`, `provider` (google, microsoft, caldav), `email`, `status` (active, "
        "syncing, reauth_required, error), the `locations` it is used in, `lastSyncedAt`, and "
        "`lastError`, a short reason when the last sync failed. `reauth_required` means the grant "
        "was revoked or expired: ask the person to connect the account again.",
    ),
    "POST /v1/me/accounts/caldav": Doc(
        "Connect an iCloud or other CalDAV account",
        "Logs in to the CalDAV server with the user name and an app-specific password (iCloud: "
        "appleid.apple.com, Sign-In and Security, App-Specific Passwords), discovers the account's "
        "calendars and starts syncing them; the password is stored encrypted. `serverUrl` defaults "
        "to iCloud and must be https (the local stack also allows http://127.0.0.1). When the person "
        "has no primary calendar in the location yet, the first writable calendar becomes primary "
        "(C6). 400 when the server refuses the credentials or is not a CalDAV server (nothing is "
        "stored); 409 with type `…/errors/account-limit-per-location` for a second CalDAV account in "
        "the location (C3), `…/errors/account-owned-by-another-user` for an account another person "
        "connected (C4); 403 when the caller is not a member of the location.",
        {
            "iCloud": {
                "locationId": "hq",
                "serverUrl": "https://caldav.icloud.com/",
                "username": "alice@icloud.com",
                "password": "abcd-efgh-ijkl-mnop",
            },
            "the local stack's Radicale": {
                "locationId": "hq",
                "serverUrl": "http://127.0.0.1:5232/",
                "username": "carol",
                "password": "carol-demo",
            },
        },
    ),
    "POST /v1/me/accounts/google/authorize": Doc(
        "Start connecting a Google account",
        _OAUTH + "`redirectUri` must be registered for calsync's Google client.",
        {"web app": {"locationId": "hq", "redirectUri": "https://app.example.com/oauth/google"}},
    ),
    "POST /v1/me/accounts/microsoft/authorize": Doc(
        "Start connecting a Microsoft account",
        _OAUTH + "Work or school accounts (Microsoft 365) and personal ones (Outlook.com) alike.",
        {"web app": {"locationId": "hq", "redirectUri": "https://app.example.com/oauth/microsoft"}},
    ),
    "GET /v1/oauth/google/callback": Doc("Finish connecting a Google account", _OAUTH_CALLBACK),
    "GET /v1/oauth/microsoft/callback": Doc("Finish connecting a Microsoft account", _OAUTH_CALLBACK),
    "DELETE /v1/me/accounts/{accountId}": Doc(
        "Disconnect one of my accounts",
        "Removes the account's calendars from the primary and conflict configuration in every "
        "location, stops its push subscriptions, deletes its stored events and its credentials (C9). "
        "Only the person who connected it can (C8); 404 for an account that is not theirs. The "
        "calendars themselves stay untouched at the provider.",
    ),
    # ---- calendars
    "GET /v1/me/calendars": Doc(
        "List the calendars of my accounts",
        "Every calendar of the caller's connected accounts with its `accessRole` (owner, writer, "
        "reader, freeBusyReader) and time zone; a calendar created later at the provider shows up "
        "here too. Use the ids in the calendar configuration.",
    ),
    "GET /v1/locations/{locationId}/users/{userId}/calendar-config": Doc(
        "Get a person's calendar configuration in a location",
        "The primary calendar (read and write: appointments go there) and the conflict calendars "
        "(read only) whose events make up the person's meetings and free/busy in the location (C6). "
        "The person themself or an admin of the location (C8).",
    ),
    "PUT /v1/locations/{locationId}/users/{userId}/calendar-config": Doc(
        "Choose a person's primary and conflict calendars",
        "Replaces the configuration: `primaryCalendarId` must be a writable calendar of the person's "
        "accounts (or null for none), `conflictCalendarIds` any of their calendars. A calendar added "
        "shows its stored events at once and is kept in sync; one removed no longer counts. The "
        "person themself or an admin of the location (C8); 400 for a calendar that is not theirs.",
        {
            "primary and one conflict calendar": {
                "primaryCalendarId": "5f2b9c0e8a7d4c1e9b3a6d2f0c8e7a41",
                "conflictCalendarIds": ["a41c7e8d2f0b4e6a9c3d5b1e7f2a8c60"],
            },
            "no primary calendar": {"primaryCalendarId": None, "conflictCalendarIds": []},
        },
    ),
    # ---- scheduling
    "GET /v1/locations/{locationId}/users/{userId}/availability": Doc(
        "Get a person's busy times",
        "Merged busy intervals between `start` and `end` (at most 62 days) from the person's primary "
        "and conflict calendars in the location (C11). Events shown as free, cancelled ones and ones "
        "the person declined do not block time. The person themself, or an admin of the location for "
        "its members.",
    ),
    "POST /v1/locations/{locationId}/users/{userId}/appointments": Doc(
        "Book an appointment on a person's primary calendar",
        "Writes the event to the person's primary calendar only (C7) and answers 201 with it. 409 when "
        'it overlaps busy time (send `"allowConflict": true` to book anyway) or the person has no '
        "primary calendar. Send an `Idempotency-Key` header to retry safely: the same key answers the "
        "first booking again instead of booking twice (the same key with another body is refused). "
        "The person themself, or an admin of the location for its members. 502 when the provider "
        "refused the write.",
        {
            "a 30-minute meeting": {
                "title": "Project kickoff",
                "start": "2026-11-20T10:00:00+01:00",
                "end": "2026-11-20T10:30:00+01:00",
                "description": "Agenda: scope, owners, dates.",
                "attendees": ["bob@example.com"],
            },
            "book over busy time": {
                "title": "Quick sync",
                "start": "2026-11-20T11:00:00+01:00",
                "end": "2026-11-20T11:15:00+01:00",
                "allowConflict": True,
            },
        },
    ),
    # ---- rooms
    "PUT /v1/locations/{locationId}/rooms/{roomId}": Doc(
        "Register or change a room (admins)",
        "A room of the location backed by one calendar of a connected account (a Google resource "
        "calendar, an Exchange room mailbox, any CalDAV calendar). Registering shows the events the "
        "calendar already holds at once and starts its sync (R8). 201 when created, 200 when "
        "changed. Admins of the location only (403 otherwise), and only with the consent of the "
        "calendar's owner (R9).",
        {
            "a CalDAV room calendar": {
                "name": "Aurora",
                "timeZone": "Europe/Berlin",
                "accountId": "2e0e01023749eba6b860054f585632e0",
                "calendarId": "d3844e6d45cebeadc5e9cb3eb5b58807",
            }
        },
    ),
    "PUT /v1/me/calendars/{calendarId}/room-consent": Doc(
        "Let admins make my calendar a room",
        "Marks one of your calendars as a room calendar (R9): an admin of a location you are a member "
        "of may then register a room on it, and the location's members see its meetings on the room "
        "panel. Without the mark an admin's registration is refused with 409 (room-consent-required). "
        "204; 404 for a calendar that is not yours.",
    ),
    "DELETE /v1/me/calendars/{calendarId}/room-consent": Doc(
        "Withdraw my room calendar consent",
        "Clears the mark (R9). Every room on the calendar that an admin registered is deleted with its "
        "meetings; rooms you registered yourself stay. 204; 404 for a calendar that is not yours.",
    ),
    "DELETE /v1/locations/{locationId}/rooms/{roomId}": Doc(
        "Delete a room (admins)",
        "Removes the room and its stored meetings; its calendar's sync stops unless a person still "
        "uses that calendar (R8). 204; 404 when there is no such room. Admins of the location only.",
    ),
    # ---- presence
    "PUT /v1/me/presence": Doc(
        "Set my status and message",
        "`status` is available, busy, do_not_disturb or away (P1); `message` an optional text of at "
        "most 140 characters that others see (P4), null to clear it. Others see do_not_disturb as "
        "busy with `acceptsCalls: false` (P3). Every reader sees the change at once (P7).",
        {
            "do not disturb": {"status": "do_not_disturb", "message": "Deep work until 14:00"},
            "available, no message": {"status": "available", "message": None},
        },
    ),
    "DELETE /v1/me/presence": Doc(
        "Clear my chosen status",
        "Removes the status the caller chose, so that what others see is derived again: busy "
        '"In a meeting until HH:MM" during a listed meeting (P6), else available while signed in on a '
        "session, offline when not (P5).",
    ),
    "GET /v1/users/{userId}/presence": Doc(
        "Get a person's presence",
        "What others see: `status` (available, busy, away, offline), `message`, `inMeetingUntil`, "
        "whether calls and messages reach the person (`acceptsCalls`, `acceptsMessages`) and "
        "`updatedAt`. Asking for oneself also returns `chosenStatus`. Only people who share a "
        "location with the person (403 otherwise). " + _ETAG,
    ),
    # ---- sessions
    "POST /v1/me/sessions": Doc(
        "Start an app session",
        "Call it when the person signs in to your app: while any session is open, the person is "
        "online (P5). Answers `sessionId` and `expiresAt`; renew before it expires.",
    ),
    "PUT /v1/me/sessions/{sessionId}": Doc(
        "Renew an app session",
        "Extends the session and answers its new `expiresAt`. 404 for a session that is not the "
        "caller's or has expired (start a new one).",
    ),
    "DELETE /v1/me/sessions/{sessionId}": Doc(
        "Log out of an app session",
        "Ends the session (P5): when it was the person's last one, they show as offline. Closing the "
        "app without logging out keeps the session. 204.",
    ),
    # ---- profile
    "GET /v1/me/profile": Doc(
        "Get my profile",
        "`userId`, `displayName`, `timeZone` (the one meetings are listed in), `phoneNumber` and "
        "`extension` (set by an admin), `photoUrl`.",
    ),
    "PATCH /v1/me/profile": Doc(
        "Change my time zone or display name",
        "Changes the fields sent, leaves the others. `timeZone` is an IANA name (Europe/Berlin); "
        "the meeting lists use it for their three days (U1).",
        {
            "time zone": {"timeZone": "Europe/Berlin"},
            "both": {"timeZone": "America/New_York", "displayName": "Alice Adler"},
        },
    ),
    "POST /v1/me/profile/photo": Doc(
        "Get an upload URL for my profile photo",
        "Answers a presigned POST: send a multipart form with every field of `fields` and the image "
        "as `file` to `uploadUrl` before `expiresAt`. Only the content type and size asked for are "
        "accepted (JPEG or PNG, at most 5 MiB, P8); the storage service itself refuses anything else.",
        {"a PNG": {"contentType": "image/png", "size": 48213}},
    ),
    "PUT /v1/locations/{locationId}/users/{userId}/directory-entry": Doc(
        "Set a member's phone number and extension (admins)",
        "An admin of the location sets the phone number and extension others see in the member's "
        "profile; null clears one. 403 for anyone else or for a person who is not a member.",
        {
            "phone and extension": {"phoneNumber": "+49 30 1234567", "extension": "4711"},
            "clear both": {"phoneNumber": None, "extension": None},
        },
    ),
    # ---- webhooks
    "POST /v1/webhooks/google": Doc(
        "Google Calendar push notification",
        "Called by Google, not by client apps: a change on a watched calendar. Authenticated by the "
        "channel token (X-Goog-Channel-Token); answers at once and queues a sync of the calendar. "
        "Notifications for unknown or stopped channels are acknowledged and dropped.",
        tag="webhooks",
    ),
    "POST /v1/webhooks/microsoft": Doc(
        "Microsoft Graph change notifications",
        "Called by Microsoft Graph, not by client apps: the subscription validation handshake "
        "(`validationToken` echoed as text/plain) or a collection of change notifications, each "
        "checked by its `clientState`; answers 202 at once and queues a sync of the mailbox.",
        tag="webhooks",
    ),
    "POST /v1/webhooks/microsoft/lifecycle": Doc(
        "Microsoft Graph lifecycle notifications",
        "Called by Microsoft Graph, not by client apps: reauthorizationRequired, subscriptionRemoved "
        "and missed notifications for calsync's subscriptions, which calsync renews, recreates or "
        "answers with a full sync.",
        tag="webhooks",
    ),
}


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the introduction, the tags and every known operation's documentation."""
    document.setdefault("info", {})["description"] = INTRO
    document["tags"] = TAGS
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            doc = OPERATIONS.get(f"{method.upper()} {path}")
            if doc is None:
                continue
            operation["summary"] = doc.summary
            operation["description"] = doc.description
            if doc.tag and not operation.get("tags"):
                operation["tags"] = [doc.tag]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and doc.examples:
                body["examples"] = {name: {"value": value} for name, value in doc.examples.items()}
    return document


def undocumented(document: dict[str, Any]) -> list[str]:
    """Operations of ``document`` without an entry here."""
    return [
        f"{method.upper()} {path}"
        for path, operations in document.get("paths", {}).items()
        for method in operations
        if f"{method.upper()} {path}" not in OPERATIONS
    ]
