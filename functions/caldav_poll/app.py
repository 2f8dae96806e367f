"""CalDAV poll schedule (rate 5 minutes): dispatch the poll (S3, S5), one task per shard of the poll
registry to the PollQueue; PollShardFunction runs them in parallel (``calsync.sync.poll``).

Thin: it reads nothing and sends two SendMessageBatch calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source

from calsync.config import get_settings
from calsync.observability import observed
from calsync.store.keys import POLL_SHARDS
from calsync.sync.poll import dispatch
from calsync.sync.tasks import dispatched
from calsync.wiring import Wiring
from calsync.wiring.tasks import TaskDeps, task_deps

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

PROVIDER = "caldav"
# tests: ``with wiring.use(task_deps(poll_queue_url, sqs=..., clock=..., reads_table=False)):``
wiring: Wiring[TaskDeps] = Wiring(lambda: task_deps(get_settings().poll_queue_url, reads_table=False))


@observed
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    deps = wiring()
    failed = dispatch(deps.sqs, deps.task_queue_url, PROVIDER, deps.clock(), adaptive=True)
    return dispatched("poll", "PollTasksNotSent", "poll dispatched", POLL_SHARDS, failed)
