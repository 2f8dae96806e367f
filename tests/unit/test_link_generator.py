"""The meeting link calsync adds to an event (rule C12, ``calsync.domain.link_generator``)."""

from __future__ import annotations

import re

import pytest

from calsync.domain.link_generator import DEFAULT_TEMPLATE, from_environment, template_generator

# secrets.token_urlsafe(12): 12 random bytes (96 bits), 16 URL-safe base64 characters
ROOM_ID = r"[A-Za-z0-9_-]{16}"


def test_template_is_filled_with_a_fresh_unguessable_id_never_the_events_own() -> None:
    # rule C12: the link's room id is random, not derived from the occurrence
    generate = template_generator("https://video.example.com/r/{id}?x=1")
    links = {generate("occ-1") for _ in range(20)}
    assert len(links) == 20
    for link in links:
        assert re.fullmatch(rf"https://video\.example\.com/r/{ROOM_ID}\?x=1", link)
        assert "occ-1" not in link


@pytest.mark.parametrize(
    "template",
    [
        "https://video.example.com/r/",  # no {id}
        "https://video.example.com/r/{ID}",  # {id} is lower case
        "http://video.example.com/r/{id}",  # not https
        "video.example.com/r/{id}",  # no scheme
        "",
    ],
)
def test_a_template_that_is_not_https_with_an_id_is_refused(template: str) -> None:
    # rule C12: a link written to people's calendars is an https URL with a room id
    with pytest.raises(ValueError, match=r"^MEETING_LINK_TEMPLATE must be an https URL containing \{id\}$"):
        template_generator(template)


def test_from_environment_uses_meeting_link_template(monkeypatch: pytest.MonkeyPatch) -> None:
    # rule C12: the deployment's template (surrounding spaces ignored)
    monkeypatch.setenv("MEETING_LINK_TEMPLATE", "  https://video.example.com/{id}  ")
    assert re.fullmatch(rf"https://video\.example\.com/{ROOM_ID}", from_environment()("occ"))


@pytest.mark.parametrize("value", [None, "", "   "])
def test_from_environment_defaults_when_unset_or_blank(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    # rule C12: without a configured template, calsync's default one
    if value is None:
        monkeypatch.delenv("MEETING_LINK_TEMPLATE", raising=False)
    else:
        monkeypatch.setenv("MEETING_LINK_TEMPLATE", value)
    prefix = DEFAULT_TEMPLATE.removesuffix("{id}")
    assert prefix == "https://meet.calsync.test/"
    assert re.fullmatch(re.escape(prefix) + ROOM_ID, from_environment()("occ"))


def test_an_invalid_template_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # rule C12: a misconfigured deployment fails loudly instead of writing bad links
    monkeypatch.setenv("MEETING_LINK_TEMPLATE", "http://video.example.com/{id}")
    with pytest.raises(ValueError, match="MEETING_LINK_TEMPLATE"):
        from_environment()
