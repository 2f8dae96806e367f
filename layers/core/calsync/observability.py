"""The one Logger, Tracer and Metrics of calsync (Powertools)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="calsync")
tracer = Tracer(service="calsync")
metrics = Metrics(namespace="calsync", service="calsync")
