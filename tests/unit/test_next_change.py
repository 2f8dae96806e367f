"""When an answer changes by time alone (issue 15: the ETag's ``until``): ``rules.next_change`` for
the meetings answers, ``presence.next_change`` for presence. Frozen instants, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from calsync.domain import presence, rules
from calsync.domain.models import Occurrence, OwnerSettings, Provider
from calsync.domain.models import Status as ModelStatus
from calsync.domain.presence import Chosen, Session, Status

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
OWNER = OwnerSettings(time_zone=BERLIN, primary_calendar_ids=frozenset())
LEAD = timedelta(seconds=1)


def occ(name: str, start: datetime, end: datetime, **fields: object) -> Occurrence:
    return Occurrence(
        provider=Provider.GOOGLE,
        account_id="acc",
        calendar_id="cal",
        event_id=name,
        title=name,
        start=start,
        end=end,
        **fields,  # type: ignore[arg-type]
    )


def test_meetings_change_when_an_event_passes_u2_or_at_midnight() -> None:
    ended = occ("standup", NOW - timedelta(minutes=30), NOW - timedelta(minutes=15))
    later = occ("review", NOW + timedelta(hours=2), NOW + timedelta(hours=3))
    selection = rules.select_for_person([ended, later], NOW, OWNER)
    assert rules.next_change(selection, NOW) == ended.end + rules.ENDED_GRACE
    # nothing in the window ends: the next midnight in the owner's zone (23:00 UTC in November)
    empty = rules.select_for_person([], NOW, OWNER)
    assert rules.next_change(empty, NOW) == datetime(2026, 11, 20, 23, 0, tzinfo=UTC)


def test_midnight_of_a_dst_day_is_the_zones_midnight() -> None:
    # 2026-10-25: Berlin leaves summer time; the day is 25 hours long
    now = datetime(2026, 10, 25, 10, 0, tzinfo=UTC)
    selection = rules.select_for_person([], now, OWNER)
    assert rules.next_change(selection, now) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)


def test_an_excluded_event_counts_too() -> None:
    # a cancelled event is listed in ``excluded`` (U7) and gains U2 later: the explain answer changes
    cancelled = occ(
        "off", NOW - timedelta(minutes=50), NOW - timedelta(minutes=40), status=ModelStatus.CANCELLED
    )
    selection = rules.select_for_person([cancelled], NOW, OWNER)
    assert selection.excluded and rules.next_change(selection, NOW) == cancelled.end + rules.ENDED_GRACE


def test_presence_offline_changes_by_a_write_only() -> None:
    expired = [Session("s", NOW - timedelta(minutes=1))]
    assert presence.next_change(None, expired, NOW) is None


def test_presence_with_a_chosen_status_changes_when_the_last_session_expires() -> None:
    sessions = [Session("a", NOW + timedelta(hours=1)), Session("b", NOW + timedelta(hours=5))]
    chosen = Chosen(status=Status.BUSY, message=None, updated_at=NOW - timedelta(hours=1))
    assert presence.next_change(chosen, sessions, NOW) == NOW + timedelta(hours=5)


def test_presence_p6_changes_at_a_start_less_the_lead_at_a_start_and_at_an_end() -> None:
    sessions = [Session("a", NOW + timedelta(hours=8))]
    horizon = NOW + timedelta(hours=1)
    meeting = occ("review", NOW - timedelta(minutes=10), NOW + timedelta(minutes=20))
    assert presence.next_change(None, sessions, NOW, ([meeting], OWNER, horizon, LEAD)) == meeting.end
    upcoming = occ("retro", NOW + timedelta(minutes=30), NOW + timedelta(minutes=50))
    got = presence.next_change(None, sessions, NOW, ([upcoming], OWNER, horizon, LEAD))
    assert got == upcoming.start - LEAD  # from then on the view takes it in
    # nothing read: the horizon (less the lead) bounds what is known
    assert presence.next_change(None, sessions, NOW, ([], OWNER, horizon, LEAD)) == horizon - LEAD


def test_an_updated_at_ahead_of_our_clock_is_a_change() -> None:
    ahead = Chosen(status=None, message=None, updated_at=NOW + timedelta(seconds=3))
    assert presence.next_change(ahead, [], NOW) == NOW + timedelta(seconds=3)


def test_an_instant_equal_to_now_is_not_a_change_to_come() -> None:
    # an event that passes U2 exactly now has changed the answer already: the next change is later
    passing = occ("standup", NOW - rules.ENDED_GRACE - timedelta(minutes=15), NOW - rules.ENDED_GRACE)
    later = occ("review", NOW + timedelta(hours=1), NOW + timedelta(hours=2))
    selection = rules.select_for_person([passing, later], NOW, OWNER)
    assert rules.next_change(selection, NOW) == later.end + rules.ENDED_GRACE
    written_now = Chosen(status=Status.BUSY, message=None, updated_at=NOW)
    assert presence.next_change(written_now, [], NOW) is None


def test_presence_p6_a_session_expiring_first_is_the_next_change() -> None:
    # the meetings' instants come on top of the sessions' expiry and the chosen status's updatedAt
    horizon = NOW + timedelta(hours=1)
    upcoming = occ("retro", NOW + timedelta(minutes=30), NOW + timedelta(minutes=50))
    meetings = ([upcoming], OWNER, horizon, LEAD)
    expiring = [Session("a", NOW + timedelta(minutes=10))]
    assert presence.next_change(None, expiring, NOW, meetings) == NOW + timedelta(minutes=10)
    sessions = [Session("a", NOW + timedelta(hours=8))]
    ahead = Chosen(status=None, message=None, updated_at=NOW + timedelta(seconds=3))
    assert presence.next_change(ahead, sessions, NOW, meetings) == NOW + timedelta(seconds=3)
    # two events: the instants of each count, not those of the last one only
    first = occ("first", NOW + timedelta(minutes=20), NOW + timedelta(minutes=25))
    got = presence.next_change(None, sessions, NOW, ([first, upcoming], OWNER, horizon, LEAD))
    assert got == first.start - LEAD
