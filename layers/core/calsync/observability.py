"""The one Logger and Metrics of calsync (Powertools).

No Tracer: the functions' traces are Lambda's active tracing (template.yaml ``Tracing: Active``),
which needs no X-Ray SDK in the function; importing the SDK and patching boto3 and requests cost
about as much as a boto3 client at every cold start (docs/adr/0010-cold-start-tracing-and-imports.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="calsync")
metrics = Metrics(namespace="calsync", service="calsync")

F = TypeVar("F", bound=Callable[..., Any])


def observed(handler: F) -> F:
    """A function's Lambda handler with calsync's logs and metrics: every log line carries the
    invocation's context (request id, cold start), and the metrics are flushed when it returns."""
    return cast("F", logger.inject_lambda_context(metrics.log_metrics(handler)))
