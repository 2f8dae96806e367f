"""Store what calsync itself wrote to a provider (C7 appointments, C12 meeting links) at once,
through the sync engine's per-resource index, so that the next sync of the calendar finds the same
resource with the same etag (a full pass skips it; an incremental pass rewrites the same items)
and nothing is stored twice.

The order is the engine's (``SyncEngine._apply_page``): the resource entry first lists every
occurrence id that may be stored (etag unknown), then the occurrences, then the entry with the etag.
"""

from __future__ import annotations

from calsync.store.items import Calendar
from calsync.store.repository import Repository
from calsync.store.sync_state import ResourceEntry, SyncStateStore
from calsync.sync.writer import WrittenEvent


def store_written(
    repository: Repository, state: SyncStateStore, calendar: Calendar, written: WrittenEvent
) -> int:
    """Store the occurrences of a written resource; the number of items written."""
    cal_id = calendar.calendar_id
    old = state.get_resource(cal_id, written.resource_key)
    by_id = {occ.id: occ for occ in written.occurrences}
    new_ids = sorted(by_id)
    old_ids = set(old.occ_ids) if old else set()
    recurring = any(occ.recurring for occ in by_id.values())
    generation = old.generation if old else state.get(cal_id).generation
    state.put_resource(
        cal_id,
        ResourceEntry(
            key=written.resource_key,
            etag="",
            generation=generation,
            occ_ids=sorted(old_ids | set(new_ids)),
            recurring=recurring or bool(old and old.recurring),
            horizon_end=old.horizon_end if old else None,
        ),
    )
    count = repository.store_occurrences(calendar, list(by_id.values()))
    for occ_id in sorted(old_ids - set(new_ids)):
        repository.delete_occurrence(cal_id, occ_id)
    state.put_resource(
        cal_id,
        ResourceEntry(
            key=written.resource_key,
            etag=written.etag,
            generation=generation,
            occ_ids=new_ids,
            recurring=recurring,
            horizon_end=old.horizon_end if old else None,
        ),
    )
    return count
