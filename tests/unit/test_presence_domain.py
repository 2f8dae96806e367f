"""The pure presence rules (calsync.domain.presence): P1-P7, no I/O, clock passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calsync.domain.models import Occurrence, OwnerSettings, Provider, Transparency
from calsync.domain.models import Status as EventStatus
from calsync.domain.presence import (
    MAX_MESSAGE,
    Chosen,
    Meeting,
    Session,
    Shown,
    Status,
    clean_message,
    meeting_in_progress,
    presence_view,
    starting_by,
)

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
LIVE = [Session("s1", NOW + timedelta(hours=1))]


def occ(event_id: str, start: datetime, end: datetime, **fields: object) -> Occurrence:
    return Occurrence(
        provider=Provider.GOOGLE,
        account_id="acc",
        calendar_id="cal",
        event_id=event_id,
        title=fields.pop("title", event_id),  # type: ignore[arg-type]
        start=start,
        end=end,
        **fields,  # type: ignore[arg-type]
    )


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


# ---- P4: the message ----------------------------------------------------------------------------
@pytest.mark.parametrize("cleared", [None, "", "   "])
def test_message_can_be_cleared(cleared: str | None) -> None:
    # rule P4
    assert clean_message(cleared) is None


def test_message_length_is_140_characters() -> None:
    # rule P4: characters, not bytes
    assert clean_message("ä" * MAX_MESSAGE) == "ä" * 140
    with pytest.raises(ValueError, match="140"):
        clean_message("x" * 141)


@pytest.mark.parametrize("bad", ["a\u0000b", "tab\there", "new\nline", "zw\u200bsp", "bidi\u202e", "\ue000"])
def test_message_without_control_characters(bad: str) -> None:
    # rule P4 / X5: Unicode category C* (Cc, Cf, Co, Cn, Cs) is refused
    with pytest.raises(ValueError, match=r"^must not contain control characters$"):  # the API's 400 detail
        clean_message(bad)


@given(st.text(max_size=200))
def test_clean_message_either_refuses_or_keeps_the_text(text: str) -> None:
    # rule P4
    try:
        kept = clean_message(text)
    except ValueError:
        return
    assert kept is None or (kept == text and len(kept) <= MAX_MESSAGE)


# ---- P1-P3, P5: what is shown -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("chosen", "shown", "calls"),
    [
        (Status.AVAILABLE, Shown.AVAILABLE, True),
        (Status.BUSY, Shown.BUSY, True),  # P2
        (Status.DO_NOT_DISTURB, Shown.BUSY, False),  # P3
        (Status.AWAY, Shown.AWAY, True),
    ],
)
def test_chosen_statuses(chosen: Status, shown: Shown, calls: bool) -> None:
    # rules P1, P2, P3
    view = presence_view(Chosen(chosen, None, at(-5)), LIVE, None, NOW, BERLIN)
    assert (view.status, view.accepts_calls, view.accepts_messages) == (shown, calls, True)
    assert view.chosen_status is chosen
    assert view.updated_at == at(-5)


def test_no_live_session_is_offline_whatever_was_chosen() -> None:
    # rule P5 (and P1: offline is derived)
    expired = [Session("old", at(-30)), Session("older", at(-90))]
    view = presence_view(Chosen(Status.BUSY, "hi", at(-60)), expired, Meeting(at(-10), at(20)), NOW, BERLIN)
    assert view.status is Shown.OFFLINE
    assert (view.accepts_calls, view.accepts_messages) == (False, True)
    assert view.in_meeting_until is None
    assert view.message == "hi"
    assert view.updated_at == at(-30)  # when the last session ran out


def test_offline_updated_at_is_the_latest_change_even_a_chosen_one_after_the_sessions_ran_out() -> None:
    # rules P5, P7: the last change is the latest of the person's own change and the expiry of
    # their last session (here they set a message after their last session ran out)
    expired = [Session("old", at(-90)), Session("older", at(-120))]
    view = presence_view(Chosen(None, "back Monday", at(-20)), expired, None, NOW, BERLIN)
    assert view.status is Shown.OFFLINE
    assert view.updated_at == at(-20)


def test_live_session_nothing_chosen_and_no_meeting_is_available() -> None:
    # rules P1, P5, P6: signed in, no status chosen, not in a meeting -> available, calls and messages
    view = presence_view(None, LIVE, None, NOW, BERLIN)
    assert view.status is Shown.AVAILABLE
    assert (view.message, view.in_meeting_until, view.accepts_calls, view.accepts_messages) == (
        None,
        None,
        True,
        True,
    )
    assert view.updated_at == NOW and view.updated_at.tzinfo is UTC


def test_nothing_known_is_offline_as_of_now() -> None:
    # rules P5, P7: updatedAt on every answer
    view = presence_view(None, [], None, NOW, BERLIN)
    assert (view.status, view.updated_at, view.chosen_status) == (Shown.OFFLINE, NOW, None)


def test_a_session_expiring_exactly_now_is_not_live() -> None:
    # rule P5: live means expiresAt > now
    assert presence_view(None, [Session("s", NOW)], None, NOW, BERLIN).status is Shown.OFFLINE


# ---- P6: in a meeting -----------------------------------------------------------------------------
def test_in_a_meeting_message_in_the_persons_zone() -> None:
    # rule P6: HH:MM in the person's time zone (Berlin is UTC+1 in November)
    view = presence_view(None, LIVE, Meeting(at(-30), at(45)), NOW, BERLIN)
    assert view.status is Shown.BUSY and view.accepts_calls
    assert view.message == "In a meeting until 11:45"
    assert view.in_meeting_until == datetime(2026, 11, 20, 11, 45, tzinfo=BERLIN)
    assert (
        view.in_meeting_until is not None and view.in_meeting_until.tzinfo is BERLIN
    )  # not only the instant
    assert view.updated_at == at(-30)
    assert view.updated_at.tzinfo is UTC  # P7: updatedAt is an instant in UTC


def test_in_a_meeting_across_a_dst_change() -> None:
    # rule P6: the zone's offset at the meeting's end (Berlin leaves summer time on 2026-10-25 at 03:00)
    now = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    view = presence_view(
        None, [Session("s", now + timedelta(hours=1))], Meeting(now, now + timedelta(hours=1)), now, BERLIN
    )
    assert view.message == "In a meeting until 02:30"  # 01:30 UTC is 02:30 CET (after the change)


def test_chosen_status_wins_over_a_meeting() -> None:
    # rule P6: "and they have not chosen a status"
    view = presence_view(Chosen(Status.AVAILABLE, None, at(-1)), LIVE, Meeting(at(-30), at(45)), NOW, BERLIN)
    assert (view.status, view.message, view.in_meeting_until) == (Shown.AVAILABLE, None, None)


def test_a_custom_message_is_kept_during_a_meeting() -> None:
    # rules P4, P6: the person's own words are shown; inMeetingUntil still says until when
    view = presence_view(Chosen(None, "Lunch after", at(-60)), LIVE, Meeting(at(-30), at(45)), NOW, BERLIN)
    assert view.status is Shown.BUSY and view.message == "Lunch after"
    assert view.in_meeting_until is not None


def _meeting(occurrences: list[Occurrence]) -> Meeting | None:
    return meeting_in_progress(occurrences, NOW, OwnerSettings(time_zone=BERLIN))


def test_meeting_in_progress_and_ended() -> None:
    # rule P6: in progress means start <= now < end
    assert _meeting([occ("a", at(-30), at(30))]) == Meeting(at(-30), at(30))
    assert _meeting([occ("a", at(-30), NOW)]) is None  # ended at now
    assert _meeting([occ("a", NOW, at(30))]) == Meeting(NOW, at(30))
    assert _meeting([occ("a", at(1), at(30))]) is None  # not yet


def test_back_to_back_meetings_extend_until() -> None:
    # rule P6: "until" is when the person is free again
    chain = [
        occ("a", at(-30), at(30)),
        occ("b", at(30), at(60)),
        occ("c", at(45), at(90)),
        occ("d", at(120), at(150)),
    ]
    assert _meeting(chain) == Meeting(at(-30), at(90))


@pytest.mark.parametrize(
    "fields",
    [
        {"transparency": Transparency.TRANSPARENT},
        {"status": EventStatus.CANCELLED},  # U7: not listed
        {"updatable": False},  # U4: not listed
        {"legacy": True},  # U6: not listed
    ],
)
def test_events_that_are_not_listed_or_free_do_not_count(fields: dict[str, object]) -> None:
    # rule P6: only listed meetings (U1-U11), and not those shown as free
    assert _meeting([occ("a", at(-30), at(30), **fields)]) is None


def test_all_day_events_do_not_count() -> None:
    # rule P6
    all_day = Occurrence(
        provider=Provider.GOOGLE,
        account_id="acc",
        calendar_id="cal",
        event_id="holiday",
        title="Company day",
        start_date=date(2026, 11, 20),
        end_date=date(2026, 11, 21),
    )
    assert _meeting([all_day]) is None


def test_starting_by_keeps_what_began_by_the_instant_and_every_all_day_event() -> None:
    # P6 reads events up to now + a lead: one starting exactly at the instant has begun by it
    began = occ("began", at(-30), at(30))
    exactly = occ("exactly", at(5), at(35))
    later = occ("later", at(6), at(36))
    holiday = Occurrence(
        provider=Provider.GOOGLE,
        account_id="acc",
        calendar_id="cal",
        event_id="holiday",
        title="Company day",
        start_date=date(2026, 11, 20),
        end_date=date(2026, 11, 21),
    )
    got = starting_by([began, exactly, later, holiday], at(5))
    assert [o.event_id for o in got] == ["began", "exactly", "holiday"]
