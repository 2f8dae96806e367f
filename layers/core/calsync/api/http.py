"""What every HTTP function shares (docs/adr/0023): its resolver (``HttpApi``: requests and answers
validated, every failure an RFC 9457 problem, the caller's verified claims, the Lambda handler) and
the OpenAPI answers and responses of a route that creates (201) or answers nothing (204).

What the HTTP functions use of Powertools' event handler is imported through here, that is through
:mod:`calsync`, so that its lazy package stand-ins are in place first (:mod:`calsync.lean_imports`,
docs/adr/0022): importing ``aws_lambda_powertools.event_handler`` directly before any ``calsync``
module would load every resolver and every event class of Powertools at the function's cold start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.request import Request
from aws_lambda_powertools.logging import correlation_paths

from calsync.api import problem_handlers, problems
from calsync.api.auth import Principal, principal_from_event
from calsync.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = [
    "JSON",
    "Body",
    "Caller",
    "Depends",
    "Header",
    "HttpApi",
    "Path",
    "Query",
    "Response",
    "created",
    "creates",
    "no_content",
    "no_content_route",
]

JSON = "application/json"


def caller(request: Request) -> Principal:
    """The verified JWT claims of the request (401 problem when there are none)."""
    return principal_from_event(request.resolved_event.raw_event)


Caller = Annotated[Principal, Depends(caller)]  # a route's ``me: Caller``


class HttpApi(APIGatewayHttpResolver):
    """An HTTP function's resolver: validates requests and answers (an answer off its own schema is
    a 500), and answers every failure as an RFC 9457 problem (``calsync.api.problem_handlers``)."""

    def __init__(self) -> None:
        super().__init__(enable_validation=True, response_validation_error_http_code=500)
        # who asks comes first: an anonymous caller's invalid request is a 401, not a 400
        problem_handlers.install(self, logger, lambda: principal_from_event(self.current_event.raw_event))

    def lambda_handler(self) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
        """The function's Lambda handler: the request's id is the logs' correlation id."""

        @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
        def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            return self.resolve(event, context)

        return lambda_handler


def creates(
    model: type[Any], description: str, *statuses: int, described: Mapping[int, str] | None = None
) -> dict[int, OpenAPIResponse]:
    """The OpenAPI answers of a route that answers 201 with ``model``, and its problems."""
    return {
        201: {"description": description, "content": {JSON: {"model": model}}},
        **problems.responses(*statuses, described=described),
    }


def created(body: Any) -> Response[Any]:
    return Response(status_code=201, content_type=JSON, body=body)


def no_content_route(description: str, *statuses: int) -> dict[str, Any]:
    """A route's ``status_code`` and OpenAPI answers when it answers 204, and its problems."""
    return {
        "status_code": 204,
        "responses": {204: {"description": description}, **problems.responses(*statuses)},
    }


def no_content() -> Response[None]:
    return Response(status_code=204, content_type=None, body=None)
