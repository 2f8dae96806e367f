"""CalDAV for calsync: iCalendar resources parsed into normalized occurrences (pure, no I/O).

``parse_resource`` reads one CalDAV resource (VCALENDAR text) and returns the occurrences inside
a horizon, with recurrences expanded (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides).
"""

from calsync_caldav.ical import ParseContext, ParseResult, parse_resource
from calsync_caldav.recurrence import MAX_INSTANCES, localize

__all__ = ["MAX_INSTANCES", "ParseContext", "ParseResult", "localize", "parse_resource"]
