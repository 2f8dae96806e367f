"""The fake Graph refuses what Graph refuses and pages as Graph pages (issue 11: "a fake that
accepts what the real provider rejects is a bug in the fake"); each test names the fact of
docs/providers/microsoft.md it pins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from calsync.domain.models import UTC
from calsync_microsoft.auth import MicrosoftAppConfig, MicrosoftIdentity
from tests.support.fake_graph import FakeGraph, LoopbackHttp, fake_graph, graph_event

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
ANN = "ann@contoso.test"
WINDOW = {"startDateTime": "2026-11-19T00:00:00Z", "endDateTime": "2027-01-20T00:00:00Z"}


@pytest.fixture
def graph() -> Iterator[tuple[FakeGraph, requests.Session]]:
    with fake_graph(page_size=10) as fake:
        fake.add_mailbox(ANN, {f"cal-{n}": (f"Calendar {n}", True) for n in range(3)})
        for n in range(5):
            fake.put_event(ANN, "cal-0", graph_event(f"Event {n}", NOW + timedelta(hours=n + 1)))
        identity = MicrosoftIdentity(
            MicrosoftAppConfig("calsync-client-id", "secret", fake.authority, LoopbackHttp(fake.port))
        )
        flow = identity.start("https://app.calsync.test/cb")
        cache, _ = identity.finish(flow, fake.sign_in(flow["auth_uri"], ANN))
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {identity.access_token(cache)}"
        yield fake, session


def _get(session: requests.Session, url: str, **kw: Any) -> requests.Response:
    return session.get(url, timeout=10, **kw)


def test_calendar_view_delta_requires_its_window(graph: tuple[FakeGraph, requests.Session]) -> None:
    # M7: the first delta request of a calendar view names startDateTime and endDateTime
    fake, session = graph
    got = _get(session, f"{fake.graph_endpoint}/me/calendars/cal-0/calendarView/delta")
    assert got.status_code == 400
    assert got.json()["error"]["code"] == "ErrorInvalidParameter"


def test_max_page_size_is_honoured_and_the_delta_link_ends_the_round(
    graph: tuple[FakeGraph, requests.Session],
) -> None:
    # M7: Prefer: odata.maxpagesize caps each page; @odata.nextLink while events are left, the
    # @odata.deltaLink on the last page only
    fake, session = graph
    url = f"{fake.graph_endpoint}/me/calendars/cal-0/calendarView/delta"
    prefer = {"Prefer": "odata.maxpagesize=2"}
    pages: list[dict[str, Any]] = [_get(session, url, params=WINDOW, headers=prefer).json()]
    while "@odata.nextLink" in pages[-1]:
        assert "@odata.deltaLink" not in pages[-1]
        pages.append(_get(session, pages[-1]["@odata.nextLink"], headers=prefer).json())
    assert [len(p["value"]) for p in pages] == [2, 2, 1]
    assert "@odata.deltaLink" in pages[-1]


def test_calendars_are_paged(graph: tuple[FakeGraph, requests.Session]) -> None:
    # M6: me/calendars answers a page and an @odata.nextLink while calendars are left
    fake, session = graph
    fake.page_size = 2
    first = _get(session, f"{fake.graph_endpoint}/me/calendars").json()
    assert len(first["value"]) == 2 and "@odata.nextLink" in first
    second = _get(session, first["@odata.nextLink"]).json()
    assert [c["id"] for c in second["value"]] == ["cal-2"] and "@odata.nextLink" not in second


def test_a_shared_calendar_needs_the_shared_scope(graph: tuple[FakeGraph, requests.Session]) -> None:
    # M9: the events of a calendar shared by another mailbox are read with a .Shared scope only
    fake, session = graph
    fake.add_mailbox("bob@contoso.test", {"cal-bob": ("Bob", True)})
    shared = fake.share_calendar("bob@contoso.test", "cal-bob", ANN)
    token = session.headers["Authorization"].removeprefix("Bearer ")
    upn, scope = fake.access_tokens[token]
    assert "Calendars.ReadWrite.Shared" in scope  # calsync asked for it at sign-in
    url = f"{fake.graph_endpoint}/me/calendars/{shared}/calendarView/delta"
    assert _get(session, url, params=WINDOW).status_code == 200
    fake.access_tokens[token] = (upn, "Calendars.ReadWrite User.Read")
    got = _get(session, url, params=WINDOW)
    assert got.status_code == 403 and got.json()["error"]["code"] == "ErrorAccessDenied"
