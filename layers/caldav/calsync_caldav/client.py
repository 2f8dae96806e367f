"""The CalDAV requests a sync needs, on caldav 1.x (requests underneath; see docs/adr/0003).

- ``probe``: PROPFIND Depth 0 of the calendar for ``CS:getctag`` and ``DAV:sync-token`` (1 request).
- ``sync_collection``: REPORT ``DAV:sync-collection`` (RFC 6578) with a stored token: the hrefs and
  etags changed since, the hrefs deleted since, and the new token. A refused token (403/409/412,
  ``DAV:valid-sync-token``) raises ``CursorRejected``; a truncated answer (507 on the collection)
  says so, and the caller asks again with the token it got.
- ``list_etags``: REPORT ``calendar-query`` (VEVENT resources, only ``getetag``): every href+etag.
- ``multiget``: REPORT ``calendar-multiget`` for the hrefs whose etag changed: their data.

caldav builds the request bodies (its ``elements``) and holds the HTTP session with the account's
credentials (Basic, sent with the first request: no 401 round trip per sync). That session is always
``connect.guarded_session`` (rule X6): every connection of a poll or sync is checked after DNS
resolution, like discovery's and the writer's, so a server that passed the check at connect time and
now resolves to a private or metadata address is refused (``ServerRefused``) before anything is
sent. Answers are checked here, status first, and parsed strictly: lxml without entity resolution
or network access, and a multistatus is required. Redirects are not followed. Errors map to
``calsync.sync.source``'s.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final
from urllib.parse import quote, unquote, urlsplit

import requests
from caldav.davclient import DAVClient
from caldav.elements import cdav, dav
from caldav.elements.base import BaseElement
from caldav.lib.namespace import ns
from lxml import etree  # type: ignore[import-untyped]  # no stubs shipped

from calsync.sync.source import (
    CalendarGone,
    CursorRejected,
    SourceAuthError,
    SourceForbidden,
    SourceProtocolError,
    SourceThrottled,
    SourceUnavailable,
)
from calsync_caldav.connect import Resolver, ServerUnreachable, UrlRefused, guarded_session

DEFAULT_TIMEOUT: Final = 20.0
MAX_RETRY_AFTER: Final = 12 * 3600  # SQS visibility timeout limit
_CS: Final = "http://calendarserver.org/ns/"
_D: Final = "DAV:"
_SAFE_PATH: Final = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar and "/": kept as they are in hrefs
_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True
)


class GetCTag(BaseElement):
    """``CS:getctag`` (calendarserver.org), which caldav 1.x does not define."""

    tag: ClassVar[str | None] = "{" + _CS + "}getctag"


class ServerRefused(SourceProtocolError):
    """Rule X6 refused a connection of a sync (the server now resolves to, or its URL names, an
    address calsync must not reach): nothing was sent; retrying does not help."""


@dataclass(frozen=True, slots=True)
class CollectionState:
    ctag: str | None
    sync_token: str | None


@dataclass(slots=True)
class SyncReport:
    changed: dict[str, str] = field(default_factory=dict)  # href -> etag
    deleted: list[str] = field(default_factory=list)
    token: str | None = None
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Resource:
    href: str
    etag: str | None
    data: str | None  # None: the server has no such resource (any more)


def _xml(parent: BaseElement, *children: BaseElement) -> BaseElement:
    """``parent`` with ``children`` appended (caldav's element builder)."""
    for child in children:
        parent = parent + child
    return parent


def href_key(href: str) -> str:
    """A server href (a path or an absolute URL, percent-encoded) as a stable resource key."""
    return unquote(urlsplit(href).path)


def _tag(namespace: str, name: str) -> str:
    return "{" + namespace + "}" + name


def _status_code(text: str | None) -> int | None:
    parts = (text or "").split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def retry_after_seconds(value: str | None, now: datetime) -> int | None:
    """Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), capped; None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = int(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = int((when - now).total_seconds())
    return max(1, min(seconds, MAX_RETRY_AFTER))


class CalDAVClient:
    """One account's connection to its CalDAV server."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        base_url: str,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], datetime] | None = None,
        on_response: Callable[[requests.Response], None] | None = None,
        allow_local: bool = False,
        resolve: Resolver | None = None,
    ) -> None:
        self._dav = DAVClient(
            url=base_url,
            username=username,
            password=password,
            auth=requests.auth.HTTPBasicAuth(username, password),
            timeout=int(timeout),
        )
        self._dav.session.close()  # caldav's own plain session: never used (X6)
        self._dav.session = guarded_session(allow_local=allow_local, resolve=resolve)
        self._timeout = timeout
        self._clock = clock or (lambda: datetime.now(UTC))
        if on_response is not None:  # tests and the bench count the requests
            self._dav.session.hooks["response"].append(lambda r, *a, **k: on_response(r))

    @property
    def session(self) -> requests.Session:
        return self._dav.session

    def close(self) -> None:
        self._dav.close()

    # ---- one request ------------------------------------------------------------------------
    def _request(self, method: str, url: str, body: BaseElement, depth: int) -> requests.Response:
        headers = {
            **self._dav.headers,
            "Depth": str(depth),
            "Content-Type": 'application/xml; charset="utf-8"',
        }
        try:
            return self._dav.session.request(
                method,
                url,
                data=etree.tostring(body.xmlelement(), encoding="utf-8", xml_declaration=True),
                headers=headers,
                auth=self._dav.auth,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except UrlRefused as exc:
            raise ServerRefused(f"{method} {url}: refused by rule X6: {exc.detail}") from exc
        except ServerUnreachable as exc:  # the name does not resolve (now): try again later
            raise SourceUnavailable(f"{method} {url}: {exc.detail}") from exc
        except requests.Timeout as exc:
            raise SourceUnavailable(f"{method} {url}: the server did not answer in time") from exc
        except requests.RequestException as exc:
            raise SourceUnavailable(
                f"{method} {url}: cannot reach the server ({type(exc).__name__})"
            ) from exc

    def _check(self, resp: requests.Response, what: str) -> None:
        status = resp.status_code
        if status in (200, 207):
            return
        if status == 401:
            raise SourceAuthError(f"{what}: the server refused the credentials (401)")
        if status == 403:
            raise SourceForbidden(f"{what}: the server refused access to the calendar (403)")
        if status in (404, 410):
            raise CalendarGone(f"{what}: the calendar no longer exists ({status})")
        if status in (429, 503):
            after = retry_after_seconds(resp.headers.get("Retry-After"), self._clock())
            raise SourceThrottled(f"{what}: the server asks to try again later ({status})", after)
        if 300 <= status < 400:
            raise SourceProtocolError(f"{what}: the server redirects ({status}); redirects are not followed")
        if status >= 500:
            raise SourceUnavailable(f"{what}: the server failed ({status})")
        raise SourceProtocolError(f"{what}: unexpected answer {status}")

    def _multistatus(self, resp: requests.Response, what: str) -> Any:
        try:
            root = etree.fromstring(resp.content, parser=_PARSER)
        except etree.XMLSyntaxError as exc:
            raise SourceProtocolError(f"{what}: the answer is not XML ({exc.msg})") from exc
        if root is None or root.tag != _tag(_D, "multistatus"):
            raise SourceProtocolError(f"{what}: the answer is not a DAV multistatus")
        return root

    @staticmethod
    def _responses(root: Any) -> Iterable[tuple[str, int | None, dict[str, tuple[int | None, Any]]]]:
        """(href, response status, {prop tag: (propstat status, element)}) of each DAV:response."""
        for response in root.iterfind(_tag(_D, "response")):
            href = response.findtext(_tag(_D, "href"))
            if not href:
                raise SourceProtocolError("a DAV:response without DAV:href")
            props: dict[str, tuple[int | None, Any]] = {}
            for propstat in response.iterfind(_tag(_D, "propstat")):
                code = _status_code(propstat.findtext(_tag(_D, "status")))
                prop = propstat.find(_tag(_D, "prop"))
                for element in prop if prop is not None else ():
                    props[element.tag] = (code, element)
            yield href.strip(), _status_code(response.findtext(_tag(_D, "status"))), props

    @staticmethod
    def _text(props: dict[str, tuple[int | None, Any]], tag: str) -> str | None:
        code, element = props.get(tag, (None, None))
        if element is None or (code is not None and code != 200):
            return None
        text = element.text
        return text.strip() if isinstance(text, str) and text.strip() else None

    # ---- the requests of a sync ---------------------------------------------------------------
    def probe(self, url: str) -> CollectionState:
        body = _xml(dav.Propfind(), _xml(dav.Prop(), GetCTag(), dav.SyncToken()))
        resp = self._request("PROPFIND", url, body, depth=0)
        self._check(resp, "PROPFIND getctag")
        root = self._multistatus(resp, "PROPFIND getctag")
        for _href, _status, props in self._responses(root):
            return CollectionState(
                ctag=self._text(props, _tag(_CS, "getctag")),
                sync_token=self._text(props, _tag(_D, "sync-token")),
            )
        raise SourceProtocolError("PROPFIND getctag: an empty multistatus")

    def sync_collection(self, url: str, token: str) -> SyncReport:
        body = _xml(
            dav.SyncCollection(),
            dav.SyncToken(value=token),
            dav.SyncLevel(value="1"),
            _xml(dav.Prop(), dav.GetEtag()),
        )
        resp = self._request("REPORT", url, body, depth=0)
        if resp.status_code in (403, 409, 412) and b"valid-sync-token" in resp.content:
            raise CursorRejected(f"sync-collection: the server refused the sync token ({resp.status_code})")
        if resp.status_code in (409, 412):  # some servers give no precondition element
            raise CursorRejected(f"sync-collection: the server refused the sync token ({resp.status_code})")
        self._check(resp, "REPORT sync-collection")
        root = self._multistatus(resp, "REPORT sync-collection")
        report = SyncReport(token=(root.findtext(_tag(_D, "sync-token")) or "").strip() or None)
        collection = href_key(url)
        for href, status, props in self._responses(root):
            key = href_key(href)
            if key.rstrip("/") == collection.rstrip("/"):
                report.truncated = report.truncated or status == 507
                continue
            if status == 404:
                report.deleted.append(key)
                continue
            etag = self._text(props, _tag(_D, "getetag"))
            if etag is None:
                raise SourceProtocolError(f"sync-collection: no etag for {href}")
            report.changed[key] = etag
        if report.token is None:
            raise SourceProtocolError("sync-collection: the answer carries no sync token")
        return report

    def list_etags(self, url: str) -> dict[str, str]:
        body = _xml(
            cdav.CalendarQuery(),
            _xml(dav.Prop(), dav.GetEtag()),
            _xml(cdav.Filter(), _xml(cdav.CompFilter("VCALENDAR"), cdav.CompFilter("VEVENT"))),
        )
        resp = self._request("REPORT", url, body, depth=1)
        self._check(resp, "REPORT calendar-query")
        root = self._multistatus(resp, "REPORT calendar-query")
        out: dict[str, str] = {}
        collection = href_key(url)
        for href, _status, props in self._responses(root):
            key = href_key(href)
            if key.rstrip("/") == collection.rstrip("/"):
                continue
            etag = self._text(props, _tag(_D, "getetag"))
            if etag is None:
                raise SourceProtocolError(f"calendar-query: no etag for {href}")
            out[key] = etag
        return out

    def multiget(self, url: str, keys: Sequence[str]) -> list[Resource]:
        hrefs = [dav.Href(value=quote(key, safe=_SAFE_PATH)) for key in keys]
        body = _xml(cdav.CalendarMultiGet(), _xml(dav.Prop(), dav.GetEtag(), cdav.CalendarData()), *hrefs)
        resp = self._request("REPORT", url, body, depth=1)
        self._check(resp, "REPORT calendar-multiget")
        root = self._multistatus(resp, "REPORT calendar-multiget")
        found: dict[str, Resource] = {}
        for href, status, props in self._responses(root):
            key = href_key(href)
            data_status = props.get(ns("C", "calendar-data"), (None, None))[0]
            if status == 404 or data_status == 404:
                found[key] = Resource(key, None, None)
                continue
            data = self._text(props, ns("C", "calendar-data"))
            if data is None:
                raise SourceProtocolError(f"calendar-multiget: no calendar data for {href}")
            found[key] = Resource(key, self._text(props, _tag(_D, "getetag")), data)
        # an href the server did not answer for is treated as gone (it was deleted meanwhile)
        return [found.get(key, Resource(key, None, None)) for key in keys]
