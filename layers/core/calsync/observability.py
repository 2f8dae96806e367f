"""The one Logger and Metrics of calsync (Powertools).

No Tracer: the functions' traces are Lambda's active tracing (template.yaml ``Tracing: Active``),
which needs no X-Ray SDK in the function; importing the SDK and patching boto3 and requests cost
about as much as a boto3 client at every cold start (docs/adr/0010-cold-start-tracing-and-imports.md).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="calsync")
metrics = Metrics(namespace="calsync", service="calsync")
