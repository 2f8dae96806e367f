"""One CalDAV calendar as a ``CalendarSource`` of the sync engine (rule S3).

The cursor is ``{"ctag": …, "token": …}`` as JSON, both read by one PROPFIND *before* anything
is listed, so a change made during a sync is never behind the stored cursor.

- ``may_have_changed``: that PROPFIND; the same ctag means nothing changed (1 request, no write).
- ``changes(cursor)``: ``sync-collection`` with the stored token (again while the server says the
  answer was truncated), then ``calendar-multiget`` of the changed hrefs, ``batch_size`` at a
  time: one page per multiget. A server without sync tokens, or one refusing ours, makes the
  engine ask for a full listing (``CursorRejected``).
- ``changes(None, known)``: ``calendar-query`` for every href and etag; hrefs whose etag we have are
  reported unchanged (no request, no write); the others are fetched by multiget.

Resources are parsed by ``calsync_caldav.ical.parse_resource`` inside the engine's horizon (S10);
VEVENTs that cannot be read come back as the change's ``errors`` and the rest is stored.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from calsync.sync.source import CursorRejected, Horizon, Page, ResourceChange
from calsync_caldav.client import CalDAVClient, CollectionState, href_key
from calsync_caldav.ical import ParseContext, parse_resource
from calsync_caldav.prescan import may_reach_after

BATCH_SIZE: Final = 50


def dump_cursor(ctag: str | None, token: str | None) -> str:
    return json.dumps({"ctag": ctag, "token": token}, separators=(",", ":"), sort_keys=True)


def load_cursor(cursor: str | None) -> tuple[str | None, str | None] | None:
    """(ctag, token), or None for a cursor that is not ours."""
    if not cursor:
        return None
    try:
        value = json.loads(cursor)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    ctag, token = value.get("ctag"), value.get("token")
    if not (ctag is None or isinstance(ctag, str)) or not (token is None or isinstance(token, str)):
        return None
    return ctag, token


class CalDAVSource:
    def __init__(
        self,
        client: CalDAVClient,
        calendar_url: str,
        context: ParseContext,
        *,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.client = client
        self.url = calendar_url
        self.context = context
        self.batch_size = batch_size
        self._probed: CollectionState | None = None
        self._next_cursor: str | None = None

    @property
    def next_cursor(self) -> str | None:
        return self._next_cursor

    def _state(self) -> CollectionState:
        """The collection's ctag and token: the one a check just read, else a fresh PROPFIND."""
        state, self._probed = self._probed, None
        return state if state is not None else self.client.probe(self.url)

    def may_have_changed(self, cursor: str) -> bool:
        stored = load_cursor(cursor)
        self._probed = self.client.probe(self.url)
        return stored is None or self._probed.ctag is None or self._probed.ctag != stored[0]

    def changes(self, cursor: str | None, known: Mapping[str, str], horizon: Horizon) -> Iterator[Page]:
        self._next_cursor = None
        state = self._state()
        if cursor is None:
            yield from self._full(known, horizon)
            self._next_cursor = dump_cursor(state.ctag, state.sync_token)
            return
        stored = load_cursor(cursor)
        if stored is None or stored[1] is None or state.sync_token is None:
            raise CursorRejected("no sync token to continue from: full comparison by etag")
        token = stored[1]
        while True:
            report = self.client.sync_collection(self.url, token)
            if report.deleted:
                yield [ResourceChange(key, deleted=True) for key in sorted(set(report.deleted))]
            yield from self._fetch(sorted(report.changed), report.changed, horizon)
            assert report.token is not None
            token = report.token
            if not report.truncated:
                break
        self._next_cursor = dump_cursor(state.ctag, token)

    def _full(self, known: Mapping[str, str], horizon: Horizon) -> Iterator[Page]:
        etags = self.client.list_etags(self.url)
        unchanged = [
            ResourceChange(k, e, unchanged=True) for k, e in sorted(etags.items()) if known.get(k) == e
        ]
        if unchanged:
            yield unchanged
        changed = sorted(k for k, e in etags.items() if known.get(k) != e)
        yield from self._fetch(changed, etags, horizon)

    def _fetch(self, keys: Sequence[str], etags: Mapping[str, str], horizon: Horizon) -> Iterator[Page]:
        collection = href_key(self.url).rstrip("/")
        keys = [k for k in keys if k.rstrip("/") != collection]
        for start in range(0, len(keys), self.batch_size):
            page: list[ResourceChange] = []
            for res in self.client.multiget(self.url, keys[start : start + self.batch_size]):
                if res.data is None:
                    page.append(ResourceChange(res.href, deleted=True))
                    continue
                etag = res.etag or etags.get(res.href, "")
                ctx = dataclasses.replace(self.context, etag=etag)
                parsed = parse_resource(res.data, ctx, horizon.start, horizon.end)
                later = not parsed.occurrences and may_reach_after(res.data, horizon.end.date())
                page.append(
                    ResourceChange(
                        res.href, etag, tuple(parsed.occurrences), errors=tuple(parsed.errors), later=later
                    )
                )
            yield page
