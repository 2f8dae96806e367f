"""An in-memory ``CalendarSource`` that enforces the rules a real provider does.

- Every write gives the resource a new etag and the calendar a new version; a cursor is a version.
- ``may_have_changed(cursor)``: False only when no write happened since (like an unchanged ctag).
- ``changes(cursor)``: the resources written or deleted since the cursor's version (the last state
  of each), in pages of ``page_size``. A cursor that is not one of ours, or older than
  :meth:`expire_cursors` allows, is rejected (``CursorRejected``), as is every cursor when
  ``supports_cursors`` is False (a CalDAV server without sync tokens).
- ``changes(None, known)``: every resource; those whose etag equals ``known[key]`` are reported
  unchanged, as an ETag comparison does.
- ``requests`` counts the round trips a real server would see (a check, a page).
- ``fail_after_pages``: raise ``RuntimeError`` after that many pages of the next listing (a worker
  dying half-way through a sync).

Used by the engine's unit tests; the same contract tests run against the CalDAV source.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from calsync.domain.models import Occurrence, widest_instants
from calsync.sync.source import CursorRejected, Horizon, Page, ResourceChange


@dataclass(frozen=True, slots=True)
class _Resource:
    etag: str
    occurrences: tuple[Occurrence, ...]


class FakeSource:
    def __init__(self, *, page_size: int = 2, supports_cursors: bool = True) -> None:
        self.page_size = page_size
        self.supports_cursors = supports_cursors
        self.requests = 0
        self.fail_after_pages: int | None = None
        self._resources: dict[str, _Resource] = {}
        self._log: list[tuple[int, str]] = []  # (version, key) of every write and delete
        self._version = 0
        self._oldest_cursor = 0
        self._next_cursor: str | None = None
        self._lock = threading.Lock()

    # ---- the "server" side: what tests do to the calendar -----------------------------------
    def put(self, key: str, occurrences: Sequence[Occurrence]) -> str:
        with self._lock:
            self._version += 1
            etag = f'"{key}-{self._version}"'
            self._resources[key] = _Resource(etag, tuple(occurrences))
            self._log.append((self._version, key))
            return etag

    def delete(self, key: str) -> None:
        with self._lock:
            del self._resources[key]
            self._version += 1
            self._log.append((self._version, key))

    def expire_cursors(self) -> None:
        """Every cursor handed out so far is refused from now on (a server forgetting tokens)."""
        with self._lock:
            self._oldest_cursor = self._version + 1

    def etag(self, key: str) -> str:
        return self._resources[key].etag

    # ---- the CalendarSource protocol --------------------------------------------------------
    def _parse(self, cursor: str) -> int | None:
        if not cursor.startswith("v") or not cursor[1:].isdigit():
            return None
        version = int(cursor[1:])
        if version < self._oldest_cursor or version > self._version:
            return None
        return version

    def may_have_changed(self, cursor: str) -> bool:
        self.requests += 1
        version = self._parse(cursor)
        return version is None or version < self._version

    @property
    def next_cursor(self) -> str | None:
        return self._next_cursor

    def changes(self, cursor: str | None, known: Mapping[str, str], horizon: Horizon) -> Iterator[Page]:
        self._next_cursor = None  # a rejected or unfinished listing leaves no cursor behind
        with self._lock:  # a consistent snapshot, as one REPORT answer is
            version = self._version
            resources = dict(self._resources)
            if cursor is not None:
                since = self._parse(cursor) if self.supports_cursors else None
                if since is None:
                    self.requests += 1
                    raise CursorRejected(f"cursor {cursor!r} is not valid")
                keys = sorted({key for v, key in self._log if v > since})
            else:
                keys = sorted(resources)
        changes: list[ResourceChange] = []
        for key in keys:
            res = resources.get(key)
            if res is None:
                changes.append(ResourceChange(key, deleted=True))
            elif cursor is None and known.get(key) == res.etag:
                changes.append(ResourceChange(key, res.etag, unchanged=True))
            else:
                inside = tuple(o for o in res.occurrences if _overlaps(o, horizon))
                changes.append(ResourceChange(key, res.etag, inside))
        self._next_cursor = None
        pages = [changes[i : i + self.page_size] for i in range(0, len(changes), self.page_size)] or [[]]
        for n, page in enumerate(pages):
            if self.fail_after_pages is not None and n >= self.fail_after_pages:
                self.fail_after_pages = None
                raise RuntimeError(f"injected failure after {n} page(s)")
            self.requests += 1
            yield page
        self._next_cursor = f"v{version}"


def _overlaps(occ: Occurrence, horizon: Horizon) -> bool:
    start, end = widest_instants(occ)
    return start < horizon.end and end > horizon.start
