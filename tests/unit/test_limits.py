"""The bounds of every stored field (rule S11, docs/limits.md): cut, dropped or refused at the bound,
never one character earlier; the item size estimate that keeps an item under DynamoDB's 400 KB."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from calsync.domain import limits
from calsync.domain.limits import Unstorable, bounded, check_item, check_resource_key, cut, item_size
from calsync.domain.models import Occurrence
from tests.support.builders import timed


def event(**fields: Any) -> Occurrence:
    return timed("2026-11-20T09:00Z", "2026-11-20T09:30Z", **fields)


def test_unstorable_carries_its_reason() -> None:
    exc = Unstorable("the event's identifier is too long")
    assert exc.reason == "the event's identifier is too long"
    assert str(exc) == "the event's identifier is too long"


def test_cut_keeps_text_up_to_its_bound_and_cuts_longer_text_with_an_ellipsis() -> None:
    assert cut(None, 5) is None
    assert cut("abcde", 5) == "abcde"  # exactly the bound: unchanged
    assert cut("abcdef", 5) == "abcd…"
    assert len(cut("x" * 400, limits.MAX_TITLE) or "") == limits.MAX_TITLE
    # the cut text loses its trailing blanks, never its leading ones
    assert cut("  ab  cdef", 6) == "  ab…"


def test_bounded_returns_the_same_occurrence_when_every_field_is_within_its_bound() -> None:
    occ = event(
        title="t" * limits.MAX_TITLE,
        meeting_link="https://meet.example.com/" + "a" * (limits.MAX_MEETING_LINK - 25),
        organizer="o" * limits.MAX_ORGANIZER,
        time_zone="z" * limits.MAX_TIME_ZONE,
        etag="e" * limits.MAX_ETAG,
        event_id="i" * limits.MAX_EVENT_ID,
        series_id="s" * limits.MAX_SERIES_ID,
        original_start="d" * limits.MAX_ORIGINAL_START,
    )
    assert occ.meeting_link is not None and len(occ.meeting_link) == limits.MAX_MEETING_LINK
    assert bounded(occ) is occ


@pytest.mark.parametrize(
    ("field", "bound"),
    [
        ("meeting_link", limits.MAX_MEETING_LINK),
        ("organizer", limits.MAX_ORGANIZER),
        ("time_zone", limits.MAX_TIME_ZONE),
        ("etag", limits.MAX_ETAG),
    ],
)
def test_a_value_useless_when_cut_is_dropped_one_character_over_its_bound(field: str, bound: int) -> None:
    # the other fields keep their (short) values: only the one over its bound is dropped
    kept = {
        "meeting_link": "https://meet.example.com/a",
        "organizer": "a@example.com",
        "time_zone": "Europe/Berlin",
        "etag": "e1",
    }
    occ = event(title="Standup", **{**kept, field: "x" * (bound + 1)})
    out = bounded(occ)
    assert getattr(out, field) is None
    assert {k: getattr(out, k) for k in kept if k != field} == {k: v for k, v in kept.items() if k != field}
    assert out.title == "Standup" and out.id == occ.id


def test_a_long_title_is_cut() -> None:
    out = bounded(event(title="x" * 410_000, meeting_link="https://meet.example.com/a"))
    assert out.title == "x" * (limits.MAX_TITLE - 1) + "…"
    assert out.meeting_link == "https://meet.example.com/a"


@pytest.mark.parametrize(
    ("field", "name", "bound"),
    [
        ("event_id", "event id", limits.MAX_EVENT_ID),
        ("series_id", "series id", limits.MAX_SERIES_ID),
        ("original_start", "original start", limits.MAX_ORIGINAL_START),
    ],
)
def test_an_identifier_over_its_bound_makes_the_occurrence_unstorable(
    field: str, name: str, bound: int
) -> None:
    with pytest.raises(Unstorable) as caught:
        bounded(event(**{field: "x" * (bound + 1)}))
    assert caught.value.reason == f"the event's {name} is longer than {bound} characters"
    assert "xxx" not in str(caught.value)  # never the offending value


def test_resource_key_is_refused_one_character_over_its_bound() -> None:
    check_resource_key("k" * limits.MAX_RESOURCE_KEY)
    with pytest.raises(Unstorable) as caught:
        check_resource_key("k" * (limits.MAX_RESOURCE_KEY + 1))
    assert (
        caught.value.reason == f"the event's identifier is longer than {limits.MAX_RESOURCE_KEY} characters"
    )


def test_item_size_counts_names_and_values_as_dynamodb_does() -> None:
    assert item_size({}) == 0
    assert item_size({"ab": "cdé"}) == 2 + 4  # UTF-8 bytes
    assert item_size({"t": True, "f": False, "n": None}) == 3 * (1 + 1)
    assert item_size({"i": 7, "x": 1.5, "d": Decimal("2")}) == 3 * (1 + 21)
    assert item_size({"b": b"\x00\x01\x02"}) == 1 + 3
    assert item_size({"m": {"k": "vv", "kk": 1}}) == 1 + 3 + (1 + 1 + 2) + (2 + 1 + 21)
    assert item_size({"l": ["a", "bb", None]}) == 1 + 3 + (1 + 1) + (1 + 2) + (1 + 1)
    assert item_size({"s": {"a", "bc"}}) == 1 + 3 + (1 + 1) + (1 + 2)
    assert item_size({"o": limits}) == 1 + len(str(limits).encode())


def test_check_item_refuses_an_item_one_byte_over_the_bound() -> None:
    # one name of 1 byte and a string value: exactly MAX_ITEM_BYTES is still stored
    check_item({"v": "x" * (limits.MAX_ITEM_BYTES - 1)}, "the page")
    with pytest.raises(Unstorable) as caught:
        check_item({"v": "x" * limits.MAX_ITEM_BYTES}, "the page")
    assert caught.value.reason == "the page is too large to store"
