"""What the HTTP functions use of Powertools' event handler, imported through :mod:`calsync` so that
its lazy package stand-ins are in place first (:mod:`calsync.lean_imports`, docs/adr/0022): importing
``aws_lambda_powertools.event_handler`` directly before any ``calsync`` module would load every
resolver and every event class of Powertools at the function's cold start."""

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query

__all__ = ["APIGatewayHttpResolver", "Body", "Depends", "Header", "Path", "Query", "Response"]
