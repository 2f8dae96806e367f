"""Meeting links (PRODUCT.md "Meeting links") and legacy detection (rule U6) in ``links.py``."""

from __future__ import annotations

import pytest

from calsync.domain.links import (
    LinkSettings,
    find_meeting_link,
    is_legacy,
    is_legacy_organizer,
    is_legacy_url,
    is_meeting_url,
    link_host,
    urls_in,
)
from tests.support.builders import LINKS

ZOOM = "https://us02web.zoom.us/j/8123456789?pwd=abc"
MEET = "https://meet.google.com/abc-defg-hij"
TEAMS = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
LEGACY = "https://legacy-video.example.com/j/42"


def test_structured_fields_come_before_text() -> None:
    # rule U6 / meeting links: structured conference fields first (hangoutLink / joinUrl)
    found = find_meeting_link([None, MEET], [f"Join at {ZOOM}"], LINKS)
    assert found == MEET


def test_structured_field_that_is_not_a_meeting_url_is_skipped() -> None:
    # meeting links: a non-meeting structured entry (e.g. a phone entry point) is not a meeting link
    found = find_meeting_link(["tel:+1-555-0100", "https://example.org/dial"], [None, f"Zoom: {ZOOM}"], LINKS)
    assert found == ZOOM


def test_structured_value_is_stripped() -> None:
    # meeting links: surrounding white space in a structured field is not part of the link
    assert find_meeting_link([f"  {TEAMS}\n"], [], LINKS) == TEAMS


@pytest.mark.parametrize(
    ("location", "url", "description", "expected"),
    [
        (f"Room 4 / {MEET}", ZOOM, f"see {TEAMS}", MEET),  # location first
        ("Room 4", ZOOM, f"see {TEAMS}", ZOOM),  # then URL
        ("Room 4", None, f"Agenda: https://docs.example.org/x\nJoin: {TEAMS}", TEAMS),  # then description
        ("Room 4", "https://intranet.example.org", "nothing here", None),
        (None, None, None, None),
    ],
)
def test_text_fields_in_order(
    location: str | None, url: str | None, description: str | None, expected: str | None
) -> None:
    # meeting links: location, URL and description text, in that order
    assert find_meeting_link([], [location, url, description], LINKS) == expected


@pytest.mark.parametrize(
    "host_url",
    [
        "https://zoom.us/j/1",
        "https://us02web.zoom.us/j/1",
        "https://a.b.zoom.us/j/1",
        "https://ZOOM.US/j/1",
        "https://zoom.us./j/1",
        "https://zoom.us:443/j/1",
    ],
)
def test_subdomains_and_spellings_of_a_meeting_host(host_url: str) -> None:
    # meeting links: the host is a meeting host or a sub-domain of one, case-insensitively
    assert is_meeting_url(host_url, LINKS)


@pytest.mark.parametrize(
    "url",
    [
        "https://evilzoom.us/j/1",  # not a sub-domain, only the same suffix
        "https://zoom.us.evil.example/j/1",
        "https://zoom.us@evil.example/j/1",  # user info, the host is evil.example
        "https://example.org/?next=https://zoom.us/j/1",
        "ftp://zoom.us/j/1",
        "zoom.us/j/1",
        "mailto:someone@zoom.us",
        "https:///j/1",
    ],
)
def test_non_meeting_urls_are_ignored(url: str) -> None:
    # meeting links: only URLs whose host is a meeting host
    assert not is_meeting_url(url, LINKS)
    assert find_meeting_link([url], [url], LINKS) is None


@pytest.mark.parametrize("scheme", ["http", "https", "HTTPS"])
def test_http_and_https_are_both_urls(scheme: str) -> None:
    # meeting links: both schemes are URLs (hosts decide what a meeting link is)
    url = f"{scheme}://meet.example.com/r/1"
    assert is_meeting_url(url, LINKS)
    assert find_meeting_link([], [f"dial in: {url} now"], LINKS) == url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Join: https://zoom.us/j/1.", "https://zoom.us/j/1"),
        ("Join (https://zoom.us/j/1)", "https://zoom.us/j/1"),
        ("<https://zoom.us/j/1>", "https://zoom.us/j/1"),
        ('href="https://zoom.us/j/1"', "https://zoom.us/j/1"),
        ("https://zoom.us/j/1?pwd=x,", "https://zoom.us/j/1?pwd=x"),
        ("https://zoom.us/j/1!?;:", "https://zoom.us/j/1"),
        ("[https://zoom.us/j/1]", "https://zoom.us/j/1"),
    ],
)
def test_trailing_punctuation_is_stripped(text: str, expected: str) -> None:
    # meeting links: punctuation around a URL in text is not part of it
    assert urls_in(text) == [expected]
    assert find_meeting_link([], [text], LINKS) == expected


def test_first_meeting_url_in_a_text_wins_over_earlier_non_meeting_urls() -> None:
    # meeting links: non-meeting URLs are skipped
    text = f"Agenda https://docs.example.org/a, join {ZOOM} or {MEET}"
    assert find_meeting_link([], [text], LINKS) == ZOOM


def test_no_meeting_hosts_configured_finds_nothing() -> None:
    # meeting links: the hosts are a deployment setting; none configured -> no meeting links
    assert find_meeting_link([MEET], [ZOOM], LinkSettings()) is None


def test_settings_are_normalized() -> None:
    # meeting links: host settings ignore case, trailing dots and blanks
    settings = LinkSettings.of(
        [" Zoom.US. ", ""], ["Legacy-Video.Example.com"], [" Old.Boss@Example.com ", " "]
    )
    assert settings == LinkSettings(("zoom.us",), ("legacy-video.example.com",), ("old.boss@example.com",))


def test_link_host() -> None:
    # meeting links: host extraction
    assert link_host("https://US02WEB.zoom.us:8443/j/1") == "us02web.zoom.us"
    assert link_host("https://[::1/") is None  # invalid URL, no exception
    assert link_host("file:///etc/passwd") is None


def test_legacy_host_links_are_meeting_links_flagged_legacy() -> None:
    # rule U6: a link on a legacy host is a meeting link, and a legacy one
    assert find_meeting_link([], [f"Join {LEGACY}"], LINKS) == LEGACY
    assert is_meeting_url(LEGACY, LINKS)
    assert is_legacy_url(LEGACY, LINKS)
    assert is_legacy_url("https://eu.legacy-video.example.com/j/1", LINKS)
    assert not is_legacy_url(ZOOM, LINKS)
    assert is_legacy(LEGACY, None, LINKS)
    assert not is_legacy(ZOOM, None, LINKS)
    assert not is_legacy(None, None, LINKS)


@pytest.mark.parametrize(
    ("organizer", "expected"),
    [
        ("old.boss@example.com", True),
        ("OLD.BOSS@EXAMPLE.COM", True),
        ("mailto:old.boss@example.com", True),
        (" old.boss@example.com ", True),
        ("young.boss@example.com", False),
        ("someone@still-legacy.example", True),  # "@domain" entry
        ("MAILTO:Someone@Still-Legacy.Example", True),
        ("someone@example.com", False),
        ("someone@not-still-legacy.example", False),  # only the domain itself
        # the domain follows the LAST "@": a quoted local part may hold one (RFC 5321, 4.1.2)
        ('"ops@example.com"@still-legacy.example', True),
        ('"ops@still-legacy.example"@example.com', False),
        ("still-legacy.example", False),  # no address at all
        ("", False),
        (None, False),
    ],
)
def test_legacy_organizers(organizer: str | None, expected: bool) -> None:
    # rule U6: organizer listed as still on the legacy platform (address, or "@domain")
    assert is_legacy_organizer(organizer, LINKS) is expected
    assert is_legacy(ZOOM, organizer, LINKS) is expected
