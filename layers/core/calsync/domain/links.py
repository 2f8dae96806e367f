"""Meeting links: where they are found, and which are on the legacy platform (rule U6).

A meeting link is a URL whose host is one of the configured meeting hosts (or a sub-domain of
one: ``us02web.zoom.us`` is on ``zoom.us``). It is looked for first in the provider's structured
conference fields, then in the location, URL and description text, in that order. Links on a
legacy meeting host are meeting links too, but flag the event as legacy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

_URL = re.compile(r"""https?://[^\s<>"'`\\]+""", re.IGNORECASE)
_TRAILING = ".,;:!?)]}>"


def _normalize_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """The deployment's meeting hosts, legacy hosts and legacy organizers."""

    meeting_hosts: tuple[str, ...] = ()
    legacy_hosts: tuple[str, ...] = ()
    # e-mail addresses, or "@domain" for any address at that domain
    legacy_organizers: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        meeting_hosts: Iterable[str] = (),
        legacy_hosts: Iterable[str] = (),
        legacy_organizers: Iterable[str] = (),
    ) -> LinkSettings:
        return cls(
            tuple(_normalize_host(h) for h in meeting_hosts if h.strip()),
            tuple(_normalize_host(h) for h in legacy_hosts if h.strip()),
            tuple(o.strip().lower() for o in legacy_organizers if o.strip()),
        )


def _host_matches(host: str, hosts: tuple[str, ...]) -> bool:
    return any(host == h or host.endswith("." + h) for h in hosts)


def link_host(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return _normalize_host(parts.hostname)


def is_meeting_url(url: str, settings: LinkSettings) -> bool:
    host = link_host(url)
    return host is not None and _host_matches(host, settings.meeting_hosts + settings.legacy_hosts)


def is_legacy_url(url: str, settings: LinkSettings) -> bool:
    host = link_host(url)
    return host is not None and _host_matches(host, settings.legacy_hosts)


def urls_in(text: str) -> list[str]:
    return [m.group(0).rstrip(_TRAILING) for m in _URL.finditer(text)]


def find_meeting_link(
    structured: Iterable[str | None], texts: Iterable[str | None], settings: LinkSettings
) -> str | None:
    """The event's meeting link: structured conference fields first, then free text, in order."""
    for candidate in structured:
        if candidate and is_meeting_url(candidate.strip(), settings):
            return candidate.strip()
    for text in texts:
        if not text:
            continue
        for url in urls_in(text):
            if is_meeting_url(url, settings):
                return url
    return None


def is_legacy_organizer(organizer: str | None, settings: LinkSettings) -> bool:
    if not organizer:
        return False
    address = organizer.strip().lower()
    if address.startswith("mailto:"):
        address = address[len("mailto:") :]
    _, at_sign, domain = address.rpartition("@")
    for entry in settings.legacy_organizers:
        if entry.startswith("@"):
            if at_sign and domain == entry[1:]:
                return True
        elif address == entry:
            return True
    return False


def is_legacy(link: str | None, organizer: str | None, settings: LinkSettings) -> bool:
    """Rule U6: the link is on a legacy meeting host, or the organizer is still on the legacy platform."""
    return (link is not None and is_legacy_url(link, settings)) or is_legacy_organizer(organizer, settings)
