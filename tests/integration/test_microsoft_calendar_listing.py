"""A calendar created at Microsoft (or shared with the mailbox) after the connect becomes selectable
(issue 12 point 1, R8; docs/providers/microsoft.md M6, M15).

Graph sends no change notification for a new calendar (subscriptions cover events, not the
mailbox's calendar folders [M15]): the schedules of ``functions/microsoft_renew`` that already talk
to Graph per mailbox (``renew``, ``reconcile``) read ``me/calendars`` again, once per mailbox per
run, over every page [M6]. New calendars are added to the listing (shared ones polled [M10]),
names and roles of known ones are updated, and nothing configured is ever removed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from calsync.config import get_settings
from calsync.domain.models import UTC
from calsync.store.accounts import AccountRepository
from calsync.wiring.accounts import accounts_deps
from calsync_microsoft.registry import MicrosoftRegistry
from tests.support import apigw
from tests.support.apigw import Api, snapshot
from tests.support.fake_graph import FakeGraph, fake_graph, graph_event
from tests.support.microsoft import MsWorld, ms_world

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
ANN, BOB = "ann@contoso.test", "bob@contoso.test"
TEAMS = {"onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/abc"}}
LIST = "GET /v1.0/me/calendars"


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with fake_graph(page_size=2) as server:
        server.add_mailbox(ANN, {"cal-work": ("Calendar", True)})
        server.add_mailbox(BOB, {"cal-bob": ("Calendar", True), "cal-team": ("Team", True)})
        yield server


@pytest.fixture
def world(table: Any, fake: FakeGraph, monkeypatch: pytest.MonkeyPatch) -> Iterator[MsWorld]:
    with ms_world(table, fake, NOW) as w:
        monkeypatch.setenv("TABLE_NAME", table.name)
        get_settings.cache_clear()
        accounts = importlib.import_module("functions.accounts.app")
        other = w.sqs.create_queue(QueueName="calsync-other-sync.fifo", Attributes={"FifoQueue": "true"})
        deps = accounts_deps(
            table,
            kms=w.kms,
            key_id=w.key_id,
            sqs=w.sqs,
            queue_url=other["QueueUrl"],
            queue_urls={"microsoft": w.queue_url, "google": other["QueueUrl"]},
            stop_push={},
        )
        try:
            with accounts.wiring.use(deps):
                yield w
        finally:
            get_settings.cache_clear()


def accounts_api() -> Api:
    return Api(importlib.import_module("functions.accounts.app"))


def calendars(user: str = "ann") -> dict[str, dict[str, Any]]:
    got = accounts_api().get("/v1/me/calendars", claims=apigw.claims(user, ["hq"]))
    assert got.status == 200, got.body
    return {c["name"]: c for c in got.json()["calendars"]}


def configure(primary: str, conflicts: list[str], user: str = "ann") -> None:
    got = accounts_api().put(
        f"/v1/locations/hq/users/{user}/calendar-config",
        body={"primaryCalendarId": primary, "conflictCalendarIds": conflicts},
        claims=apigw.claims(user, ["hq"]),
    )
    assert got.status == 200, got.body


def connected(world: MsWorld) -> str:
    got = world.connect("ann", ANN)
    assert got.status == 201, got.body
    world.drain()
    return str(got.json()["id"])


def create_calendar(fake: FakeGraph, upn: str, cal_id: str, name: str, *, can_edit: bool = True) -> None:
    """The person creates a calendar in Outlook: it is one more entry of ``me/calendars``."""
    mbx = fake.mailboxes[upn]
    mbx.calendars[cal_id] = {"name": name, "canEdit": can_edit, "default": False, "shared_from": None}
    mbx.events[cal_id] = {}


def test_a_calendar_created_later_becomes_selectable_after_one_run_and_syncs(world: MsWorld) -> None:
    connected(world)
    assert set(calendars()) == {"Calendar"}
    create_calendar(world.fake, ANN, "cal-later", "Later")
    world.fake.put_event(ANN, "cal-later", graph_event("Planning", at(2), **TEAMS))
    assert set(calendars()) == {"Calendar"}  # not known before a run of the schedule

    assert world.renew("reconcile")["queued"] == 1
    world.drain()
    listed = calendars()
    assert set(listed) == {"Calendar", "Later"}
    assert listed["Later"]["accessRole"] == "owner"

    configure(listed["Calendar"]["id"], [listed["Later"]["id"]])
    world.drain()  # the config's mailbox job syncs the new calendar
    assert world.listed("ann") == [("Planning", iso(at(2)))]


def test_one_listing_per_mailbox_per_run_over_every_page(world: MsWorld) -> None:
    connected(world)
    for n in range(4):  # 5 calendars: pages of 2, 2 and 1 [M6]
        create_calendar(world.fake, ANN, f"cal-{n}", f"Project {n}")
    world.fake.calls_by_path.clear()
    world.renew("reconcile")
    world.drain()
    assert world.fake.calls_by_path.count(LIST) == 3
    assert {f"Project {n}" for n in range(4)} <= set(calendars())

    world.fake.calls_by_path.clear()
    world.fake.put_event(ANN, "cal-work", graph_event("Notified", at(1), **TEAMS))
    world.fake.deliver_notifications()
    world.drain()  # a notification's sync does not list the calendars
    assert world.fake.calls_by_path.count(LIST) == 0


def test_a_calendar_shared_later_is_listed_and_polled(world: MsWorld) -> None:
    account_id = connected(world)
    assert list(MicrosoftRegistry(world.table).polled_mailboxes()) == []
    shared = world.fake.share_calendar(BOB, "cal-team", ANN)
    world.fake.put_event(BOB, "cal-team", graph_event("Team offsite", at(3), **TEAMS))

    world.renew("reconcile")
    world.drain()
    listed = calendars()
    assert listed["Team"]["accessRole"] == "reader"
    [listing] = [
        c for c in AccountRepository(world.table).list_calendars_of_account(account_id) if c.href == shared
    ]
    assert list(MicrosoftRegistry(world.table).polled_mailboxes()) == [
        ("ann", account_id, [listing.calendar_id])
    ]

    configure(listed["Calendar"]["id"], [listed["Team"]["id"]])
    world.drain()
    assert "Team offsite" in str(snapshot(world.table))  # read with the .Shared scope [M9]
    world.fake.put_event(BOB, "cal-team", graph_event("Team dinner", at(5), **TEAMS))
    assert world.renew("poll")["queued"] == 1  # no notification for it [M10]: polled
    world.drain()
    assert "Team dinner" in str(snapshot(world.table))


def test_known_calendars_are_renamed_and_configured_ones_are_never_removed(world: MsWorld) -> None:
    create_calendar(world.fake, ANN, "cal-side", "Side")
    connected(world)
    listed = calendars()
    configure(listed["Calendar"]["id"], [listed["Side"]["id"]])
    world.drain()
    world.fake.mailboxes[ANN].calendars["cal-work"]["name"] = "Work"
    world.fake.mailboxes[ANN].calendars["cal-side"]["canEdit"] = False
    world.renew("reconcile")
    world.drain()
    after = calendars()
    assert after["Work"]["id"] == listed["Calendar"]["id"]
    assert after["Side"]["accessRole"] == "reader"

    del world.fake.mailboxes[ANN].calendars["cal-side"]  # gone at Microsoft: kept while configured
    world.renew("reconcile")
    answers = world.drain()
    assert all(not a["batchItemFailures"] for a in answers)
    assert set(calendars()) == {"Work", "Side"}


def test_a_listing_graph_refuses_keeps_the_stored_one_and_the_sync_goes_on(
    world: MsWorld, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    connected(world)
    create_calendar(world.fake, ANN, "cal-later", "Later")
    world.fake.put_event(ANN, "cal-work", graph_event("Still synced", at(2), **TEAMS))
    world.fake.throttle(1, retry_after=None, status=503, only=LIST)
    world.renew("reconcile")
    answers = world.drain()
    assert all(not a["batchItemFailures"] for a in answers)
    assert set(calendars()) == {"Calendar"}
    assert world.listed("ann") == [("Still synced", iso(at(2)))]
    assert [r.levelname for r in caplog.records if r.message == "calendar listing not refreshed"] == [
        "WARNING"
    ]
    assert '"MicrosoftCalendarListFailed":[1.0]' in capsys.readouterr().out  # the metric (EMF)

    world.renew("reconcile")  # the next run lists again
    world.drain()
    assert set(calendars()) == {"Calendar", "Later"}
