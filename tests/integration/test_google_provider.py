"""Google as documented (issue 11; docs/providers/google.md): what calsync does with each throttling
or transient answer of the Calendar API and of Google's OAuth token endpoint, push channels over
weeks, recurring series, and the access token kept between jobs. The world (fake Google with the
REAL google-api-python-client and google-auth, moto SQS/DynamoDB/KMS, the Lambda handlers) is the
one of ``test_google``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import httplib2
import pytest
from google.auth import _helpers
from googleapiclient.errors import HttpError

from calsync.store.accounts import AccountRepository
from calsync.sync.engine import default_horizon
from calsync.sync.source import SourceAuthError, SourceThrottled, SourceUnavailable
from calsync_google import client
from functions.google_accounts import app as accounts_app
from functions.google_renew import app as renew_app
from tests.integration.test_google import NOW, WRITES, World, connected, ev, world  # noqa: F401
from tests.support import apigw
from tests.support.apigw import LambdaContext, api_on, dynamodb_calls


def account_status(w: World) -> str:
    [account] = AccountRepository(w.table).list_accounts(w.user)
    return account.status


@pytest.fixture
def no_auth_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """google-auth retries a retryable token answer 3 times with real sleeps: no sleeping here."""
    monkeypatch.setattr("google.auth._exponential_backoff.time", SimpleNamespace(sleep=lambda _s: None))


# ---- point 4: every documented throttling / transient answer is retried, never dropped ------------
THROTTLING = [
    (403, "rateLimitExceeded"),
    (403, "userRateLimitExceeded"),
    (403, "dailyLimitExceeded"),
    (403, "quotaExceeded"),
    (429, "rateLimitExceeded"),
    (500, "backendError"),
    (502, "badGateway"),
    (503, "backendError"),
    (504, "backendError"),
]


@pytest.mark.parametrize(("status", "reason"), THROTTLING)
def test_throttling_answers_keep_the_job(world: World, status: int, reason: str) -> None:  # noqa: F811
    connected(world)
    world.fake.throttle(10, status, reason)  # more than the client's own in-call retries
    world.fake.put_event(world.email, ev("t1", "Later", NOW + timedelta(hours=5)))
    world.drain()
    assert world.queued() == 1  # failed with a delay, still queued: nothing lost
    assert account_status(world) == "active"


def _http_error(status: int, reason: str, retry_after: str | None = None) -> HttpError:
    headers = {"status": str(status), **({"retry-after": retry_after} if retry_after else {})}
    body = json.dumps({"error": {"code": status, "errors": [{"domain": "usageLimits", "reason": reason}]}})
    return HttpError(httplib2.Response(headers), body.encode())


@pytest.mark.parametrize(
    ("status", "reason", "retry_after", "low", "high"),
    [
        (429, "rateLimitExceeded", "120", 120, 150),  # Retry-After honoured (plus jitter)
        (403, "userRateLimitExceeded", None, 60, 90),
        (403, "dailyLimitExceeded", None, 3600, 3630),  # the daily quota: not back within minutes
        (403, "quotaExceeded", None, 60, 90),
        (503, "backendError", "30", 30, 30),  # a 5xx with Retry-After: when Google says
        (429, "rateLimitExceeded", "Sun, 29 Nov 2099 00:00:00 GMT", 12 * 3600, 12 * 3600 + 30),
    ],
)
def test_retry_after_is_honoured(
    status: int, reason: str, retry_after: str | None, low: int, high: int
) -> None:
    err = client.map_http_error(_http_error(status, reason, retry_after))
    assert isinstance(err, SourceThrottled)
    assert err.retry_after is not None and low <= err.retry_after <= high


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_without_retry_after_backs_off(status: int) -> None:
    assert isinstance(client.map_http_error(_http_error(status, "backendError")), SourceUnavailable)


def test_forbidden_is_not_throttling() -> None:  # 403 requiredAccessLevel is permanent
    err = client.map_http_error(_http_error(403, "requiredAccessLevel"))
    assert not isinstance(err, SourceThrottled | SourceUnavailable)


# ---- point 3: a sign-in outage is not a revoked grant ---------------------------------------------
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (503, "temporarily_unavailable"),  # google-auth: retryable
        (500, "server_error"),  # google-auth: retryable
        (502, None),  # an HTML 502 page: google-auth says not retryable, still Google's trouble
        (400, "temporarily_unavailable"),  # RFC 6749 4.1.2.1 code on a 4xx: retryable
        (401, "invalid_client"),  # our OAuth client, not the person's grant
    ],
)
def test_token_endpoint_outage_is_retried_not_reauth(
    world: World,  # noqa: F811
    no_auth_backoff: None,
    status: int,
    error: str | None,
) -> None:
    connected(world)
    world.fake.expire_access_tokens(world.email)  # the next request must refresh
    world.fake.fail_token(10, status, error)
    world.fake.put_event(world.email, ev("o1", "During the outage", NOW + timedelta(hours=5)))
    world.drain()
    assert account_status(world) == "active"
    assert world.queued() == 1  # retried later
    # the outage ends: the same job syncs
    world.fake._token_failures.clear()
    world.sqs.purge_queue(QueueUrl=world.queue_url)
    world.fake.put_event(world.email, ev("o2", "After", NOW + timedelta(hours=6)))
    world.drain()
    assert {t for t, _ in world.listed()} >= {"During the outage", "After"}


def test_revoked_grant_sets_reauth_required(world: World, no_auth_backoff: None) -> None:  # noqa: F811
    connected(world)
    world.fake.revoke(world.email)  # consent withdrawn: invalid_grant
    world.fake.put_event(world.email, ev("r1", "Never", NOW + timedelta(hours=5)))
    world.drain()
    assert account_status(world) == "reauth_required"
    assert world.queued() == 0


def test_refresh_error_mapping() -> None:
    from google.auth.exceptions import RefreshError

    revoked = RefreshError("invalid_grant: Token has been expired or revoked.", {"error": "invalid_grant"})
    assert isinstance(client.map_refresh_error(revoked), SourceAuthError)
    outage = RefreshError("temporarily_unavailable: ", {"error": "temporarily_unavailable"}, retryable=True)
    assert isinstance(client.map_refresh_error(outage), SourceUnavailable)
    html = RefreshError("<html>Error 502</html>", retryable=False)
    assert isinstance(client.map_refresh_error(html), SourceUnavailable)


# ---- point 5: at most one live push channel per calendar, over weeks ---------------------------------
def test_one_live_channel_and_one_push_per_change_over_five_weeks(world: World) -> None:  # noqa: F811
    """The schedule (renewal + reconcile) runs every 12 hours for five simulated weeks, a sync runs
    after each, and each day one event changes: the calendar always has exactly one live channel at
    Google, and each change is pushed exactly once."""
    connected(world)
    world.fake.page_size = 250  # the 12-hourly reconciles list everything: not in pages of 2 here
    cal = world.email
    ctx = LambdaContext(function_name="google-renew")
    pushes: list[int] = []
    live_seen: set[int] = set()
    opened = set()
    for day in range(35):
        for hour in (0, 12):
            t = NOW + timedelta(days=day, hours=hour, minutes=1)
            world.fake.clock = lambda t=t: t
            world.renew_now = t
            renew_app.lambda_handler({}, ctx)
            world.renewals.run()  # the GoogleRenewQueue's tasks
            world.fake.deliver()  # a new channel's `sync` message
            world.drain(t)
            world.fake.deliver()
            live = world.fake.live_channels(cal)
            live_seen.add(len(live))
            opened.update(c.channel_id for c in live)
        before = len(world.webhook_answers)
        world.fake.put_event(cal, ev(f"d{day}", f"Day {day}", t + timedelta(hours=2)), deliver=False)
        world.fake.deliver()
        pushes.append(len(world.webhook_answers) - before)
        world.drain(t)
    assert live_seen == {1}, live_seen
    assert set(pushes) == {1}, pushes
    assert 5 <= len(opened) <= 12  # renewed about every 3 days, not once per sync
    assert len([c for c in world.fake.channels.values() if not c.stopped]) <= 2  # the rest stopped or expired


# ---- point 10: one token refresh per access-token lifetime, not one per job ------------------------
def test_access_token_is_kept_sealed_until_it_nearly_expires(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connected(world)  # the exchange's access token served the calendar list and the first sync
    refreshed = world.fake.token_requests
    assert refreshed == 0
    for i in range(5):
        world.fake.put_event(world.email, ev(f"k{i}", f"Kept {i}", NOW + timedelta(hours=1 + i)))
        world.drain()
    assert world.fake.token_requests == refreshed  # five jobs, no refresh
    assert len(world.listed()) == 5
    # kept sealed: no access or refresh token in the clear anywhere in the table (X3)
    dump = json.dumps(apigw.snapshot(world.table), default=str)
    assert "at-" not in dump and "rt-" not in dump
    # google-auth's clock reaches the token's last minutes (3599 s lifetime, refreshed 3m45s early)
    later = _helpers.utcnow() + timedelta(seconds=3599 - 200)
    monkeypatch.setattr(_helpers, "utcnow", lambda: later)
    for i in range(3):
        world.fake.put_event(world.email, ev(f"n{i}", f"New {i}", NOW + timedelta(hours=7 + i)))
        world.drain()
    assert world.fake.token_requests == refreshed + 1  # one refresh for the next lifetime
    # an access token Google refuses early (401) is refreshed once and the sync goes on
    world.fake.expire_access_tokens(world.email)
    world.fake.put_event(world.email, ev("x", "After 401", NOW + timedelta(hours=12)))
    world.drain()
    assert world.fake.token_requests == refreshed + 2
    assert account_status(world) == "active" and len(world.listed()) == 9


# ---- point 6: recurring series as Google lists them with singleEvents=true -------------------------
SERIES_START = datetime(2026, 11, 17, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # daily, no end


def _daily(title: str) -> dict[str, object]:
    return {
        "id": "series1",
        "summary": title,
        "start": {"dateTime": SERIES_START.isoformat(), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": (SERIES_START + timedelta(minutes=30)).isoformat(), "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=DAILY"],
        "hangoutLink": "https://meet.google.com/series1",
    }


def _index_rows(w: World) -> list[dict[str, object]]:
    return [i for i in apigw.snapshot(w.table) if str(i["sk"]).startswith("RES#")]


def test_recurring_series_edits_moves_cancellations_and_deletion_stay_in_the_horizon(
    world: World,  # noqa: F811
) -> None:
    horizon = default_horizon(NOW)
    inside = [
        d
        for d in (SERIES_START + timedelta(days=i) for i in range(400))
        if horizon.start <= d.astimezone(UTC) < horizon.end
    ]
    world.fake.put_event(world.email, _daily("Standup"), deliver=False)
    connected(world)  # full listing, bounded by timeMin/timeMax: only the horizon's instances
    assert len(_index_rows(world)) == len(inside) == 62
    assert [t for t, _ in world.listed()] == ["Standup"] * 3  # the 3-day window of the API
    # the series is edited: the incremental listing names every instance for ~6 months (and the
    # ones before today) — only those inside the horizon are stored, no row for the others
    world.fake.requests.clear()
    world.fake.put_event(world.email, _daily("Daily"))
    with dynamodb_calls(world.table) as calls:
        world.drain()
    listed_pages = len([r for r in world.fake.requests if r.endswith("/events")])
    assert listed_pages > 80  # 186 instances in pages of 2
    rows = _index_rows(world)
    assert len(rows) == len(inside)
    writes = sum(calls.count(op) for op in WRITES)
    assert writes <= 2 * len(inside) + 10, calls.calls  # per stored instance: its occurrence + its row
    assert [t for t, _ in world.listed()] == ["Daily"] * 3
    # one instance moved (it keeps its meeting id: the instance id comes from originalStartTime)
    claims = apigw.claims(world.user, ["hq"])
    tomorrow = SERIES_START + timedelta(days=4)  # 2026-11-21
    with api_on(world.table, NOW) as api:
        before = {m["start"]: m["id"] for m in api.get("/v1/me/meetings", claims=claims).json()["meetings"]}
    moved = tomorrow + timedelta(hours=3)
    world.fake.put_instance(
        world.email,
        "series1",
        tomorrow,
        {
            "start": {"dateTime": moved.isoformat(), "timeZone": "Europe/Berlin"},
            "end": {"dateTime": (moved + timedelta(minutes=30)).isoformat(), "timeZone": "Europe/Berlin"},
        },
    )
    world.drain()
    with api_on(world.table, NOW) as api:
        after = {m["start"]: m["id"] for m in api.get("/v1/me/meetings", claims=claims).json()["meetings"]}
    assert after["2026-11-21T11:00:00Z"] == before["2026-11-21T08:00:00Z"]
    assert "2026-11-21T08:00:00Z" not in after
    # one instance cancelled: listed cancelled with its recurringEventId and originalStartTime
    world.fake.cancel_instance(world.email, "series1", SERIES_START + timedelta(days=5))
    world.drain()
    assert [s for _, s in world.listed()] == ["2026-11-20T08:00:00Z", "2026-11-21T11:00:00Z"]
    assert len(_index_rows(world)) == len(inside) - 1
    # the series is deleted: its instances come as cancelled instances; nothing is left
    world.fake.delete_event(world.email, "series1")
    world.drain()
    assert world.listed() == []
    assert _index_rows(world) == []
    assert not [i for i in apigw.snapshot(world.table) if str(i["sk"]).startswith("OCC#")]


# ---- further divergences: what the fake now refuses as Google does --------------------------------
def test_a_calendar_google_refuses_to_watch_is_synced_and_polled(world: World) -> None:  # noqa: F811
    """events.watch answers 400 pushNotSupportedForRequestedResource for Google-generated calendars
    (holidays, birthdays): the sync itself succeeded, so the job is synced (not failed) and the
    schedule polls the calendar."""
    world.fake.calendars[world.email][world.email].push = False
    world.fake.put_event(world.email, ev("h1", "Holiday", NOW + timedelta(hours=1)), deliver=False)
    got = world.connect()
    assert got.status == 201, got.body
    world.drain()
    assert world.fake.live_channels() == []
    assert world.listed() == [("Holiday", "2026-11-20T09:00:00Z")]
    assert account_status(world) == "active"  # the first sync finished: not stuck in "syncing"
    assert world.queued() == 0


def test_events_list_refuses_what_google_refuses(world: World) -> None:  # noqa: F811
    """The fake answers 400 where Google does (a fake that accepts more would hide calsync bugs)."""
    connected(world)
    token = next(iter(world.fake._snapshots.values()))[1]
    base = f"/calendar/v3/calendars/{world.email}/events?singleEvents=true"
    access = world.fake.grant(world.email)
    _status, body = world.fake._token(
        {
            "grant_type": "refresh_token",
            "refresh_token": access,
            "client_id": world.fake.client_id,
            "client_secret": world.fake.client_secret,
        }
    )
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    for extra in (
        "&timeMin=2026-11-19T00:00:00Z",
        "&timeMax=2027-01-20T00:00:00Z",
        "&orderBy=updated",
        "&q=standup",
        "&updatedMin=2026-11-19T00:00:00Z",
        "&iCalUID=x@example.com",
        "&showDeleted=false",
    ):
        answer = world.fake.handle("GET", f"{base}&syncToken={token}{extra}", auth, b"")
        assert answer[0] == 400, extra
        assert answer[1]["error"]["errors"][0]["reason"] == "syncTokenWithRequestRestrictions"
    assert world.fake.handle("GET", f"{base}&syncToken={token}", auth, b"")[0] == 200
    empty = f"{base}&timeMin=2026-11-20T00:00:00Z&timeMax=2026-11-20T00:00:00Z"
    assert world.fake.handle("GET", empty, auth, b"")[0] == 400
    assert world.fake.handle("GET", base.replace("true", "false") + "&orderBy=startTime", auth, b"")[0] == 400


def test_calendar_list_pages_and_every_calendar_is_found(world: World) -> None:  # noqa: F811
    world.fake.add_calendar(world.email, "third@group.calendar.google.com", "Third", "writer")
    got = world.connect()  # three calendars: two pages of calendarList at page size 2
    assert got.status == 201, got.body
    listed = [r for r in world.fake.requests if r.endswith("/calendarList")]
    assert len(listed) == 2
    [account] = AccountRepository(world.table).list_accounts(world.user)
    hrefs = {c.href for c in AccountRepository(world.table).list_calendars_of_account(account.account_id)}
    assert "third@group.calendar.google.com" in hrefs and len(hrefs) == 3


def test_calendar_scope_not_granted_or_withdrawn(world: World) -> None:  # noqa: F811
    """Granular consent: the person may leave the calendar permission unchecked (connect refuses,
    nothing is stored) or take it back later (403 insufficientPermissions: reauth_required)."""
    claims = apigw.claims(world.user, ["hq"])
    api = apigw.Api(accounts_app)
    got = api.call(
        "POST",
        "/v1/me/accounts/google/authorize",
        body={"locationId": "hq", "redirectUri": "https://app.calsync.test/oauth"},
        claims=claims,
    )
    code, state = world.fake.authorize(got.json()["authorizationUrl"], world.email, grant="")
    got = api.get("/v1/oauth/google/callback", query={"code": code, "state": state}, claims=claims)
    assert got.status == 400 and "calendar access" in got.body
    assert AccountRepository(world.table).list_accounts(world.user) == []
    connected(world)
    world.fake.withdraw_calendar_scope(world.email)
    world.fake.put_event(world.email, ev("s1", "Hidden", NOW + timedelta(hours=5)))
    world.drain()
    assert account_status(world) == "reauth_required"
    assert world.queued() == 0
