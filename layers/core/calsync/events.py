"""Presence changes on EventBridge (issue 8), for a future push channel to subscribe to.

Shape: docs/events.md. Publishing never fails the request that changed the presence: a failure is
logged and counted (metric ``PresenceEventsFailed``); the change itself is already stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from calsync.observability import logger, metrics

SOURCE = "calsync.presence"
DETAIL_TYPE = "PresenceChanged"


class PresencePublisher:
    def __init__(self, events: Any, bus_name: str) -> None:
        self._events = events
        self._bus = bus_name

    def publish(self, detail: Mapping[str, Any]) -> bool:
        """Put one PresenceChanged event; ``False`` (logged, counted) when it could not be put."""
        entry = {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail, separators=(",", ":")),
            "EventBusName": self._bus,
        }
        try:
            resp = self._events.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            return self._failed(type(exc).__name__, detail)
        if resp.get("FailedEntryCount"):
            codes = [e.get("ErrorCode") for e in resp.get("Entries", []) if e.get("ErrorCode")]
            return self._failed(",".join(str(c) for c in codes) or "FailedEntry", detail)
        metrics.add_metric(name="PresenceEventsPublished", unit="Count", value=1)
        return True

    @staticmethod
    def _failed(why: str, detail: Mapping[str, Any]) -> bool:
        logger.warning("presence event not published", extra={"why": why, "user_id": detail.get("userId")})
        metrics.add_metric(name="PresenceEventsFailed", unit="Count", value=1)
        return False
