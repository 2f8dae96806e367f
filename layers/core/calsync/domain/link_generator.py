"""The meeting link calsync adds to an event (C12): a small, pluggable generator.

The default fills ``MEETING_LINK_TEMPLATE`` (e.g. ``https://meet.calsync.test/{id}``) with a fresh,
unguessable room id; a deployment with its own video platform plugs in a function of the same
shape (``LinkGenerator``) that asks that platform for a room.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

LinkGenerator = Callable[[str], str]  # (the occurrence id) -> a meeting URL
DEFAULT_TEMPLATE = "https://meet.calsync.test/{id}"


def template_generator(template: str) -> LinkGenerator:
    """Links from a ``{id}`` template (https only; the id is random, never the event's own id)."""
    if "{id}" not in template or urlsplit(template.replace("{id}", "x")).scheme != "https":
        raise ValueError("MEETING_LINK_TEMPLATE must be an https URL containing {id}")

    def generate(_occurrence_id: str) -> str:
        return template.replace("{id}", secrets.token_urlsafe(12))

    return generate


def from_environment() -> LinkGenerator:
    return template_generator(os.environ.get("MEETING_LINK_TEMPLATE", "").strip() or DEFAULT_TEMPLATE)
