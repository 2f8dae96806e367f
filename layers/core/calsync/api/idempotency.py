"""``POST …/appointments`` with an ``Idempotency-Key`` header (Powertools idempotency on the
calsync table: pk ``IDEM#scheduling``, sk the hashed key): a retried request answers the first
answer and writes nothing again; the same key with another body is refused (422); a retry while
the first is still running gets 409."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from calsync.domain.errors import IdempotencyInProgress, IdempotencyKeyReused

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

IDEMPOTENCY_TTL = 24 * 3600
Request = dict[str, Any]


def once(
    run: Callable[[Request], Request],
    request: Request,
    persistence: DynamoDBPersistenceLayer,
    lambda_context: Any = None,
) -> Request:
    """``run(request)`` once per (caller, userId, locationId, key); a retry gets the first answer."""
    # only an appointment with an Idempotency-Key needs Powertools' idempotency
    from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    config = IdempotencyConfig(
        event_key_jmespath="[caller, userId, locationId, key]",
        payload_validation_jmespath="body",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_TTL,
    )
    if lambda_context is not None:  # an in-progress record expires with the invocation
        config.register_lambda_context(lambda_context)
    wrapped = idempotent_function(
        data_keyword_argument="request", persistence_store=persistence, config=config
    )(run)
    try:
        result: Request = wrapped(request=request)
    except IdempotencyValidationError as exc:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with another request body: use a new key for a new appointment"
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise IdempotencyInProgress("the first request with this Idempotency-Key is still running") from exc
    return result
