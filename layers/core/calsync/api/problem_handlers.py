"""The exception handlers that turn every failure into an RFC 9457 problem answer, for any
Powertools resolver (the same mapping as functions/api/app.py's, reusable by other functions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)

from calsync.api import problems
from calsync.api.etags import NotModified
from calsync.domain.errors import CalsyncError, Unauthorized

# Powertools' request parsing: the event's body decoded (base64, UTF-8) and read (JSON, forms) before a
# route runs. A ValueError (UnicodeDecodeError, a form without its boundary) or a RecursionError (JSON
# nested deeper than Python's stack) raised there is the request's fault, not ours (X5).
_PARSERS = (
    "aws_lambda_powertools.event_handler.middlewares.openapi_validation",
    "aws_lambda_powertools.utilities.data_classes",
)


def from_request_parsing(error: BaseException) -> bool:
    """Whether ``error`` was raised while Powertools read the request, with none of calsync's code
    running after that (an error of calsync's own code inside a route stays a 500)."""
    parsing = False
    tb = error.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(_PARSERS):
            parsing = True
        elif module.startswith(("calsync", "functions")):
            parsing = False
        tb = tb.tb_next
    return parsing


def problem_response(problem: problems.Problem, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=problem.status, content_type=problems.PROBLEM_JSON, body=problem.body(), headers=headers
    )


def install(app: ApiGatewayResolver, logger: Logger, caller: Callable[[], Any]) -> None:
    """Register the problem handlers on ``app``; ``caller()`` raises ``Unauthorized`` for an
    anonymous request (who asks comes first: an anonymous caller learns nothing about validity)."""

    def _domain_error(error: CalsyncError) -> Response[str]:
        if error.status >= 500:
            logger.warning("service unavailable", extra={"type": error.type_slug, "detail": error.detail})
            return problem_response(problems.from_error(error), {"Retry-After": "1"})
        return problem_response(problems.from_error(error))

    def _invalid_request(error: RequestValidationError) -> Response[str]:
        try:
            caller()
        except Unauthorized as unauthorized:
            return problem_response(problems.from_error(unauthorized))
        return problem_response(problems.from_validation(error.errors()))

    def _unsupported_media_type(_: RequestUnsupportedContentType) -> Response[str]:
        return problem_response(problems.unsupported_media_type())

    def _route_not_found(_: NotFoundError) -> Response[str]:
        return problem_response(problems.route_not_found())

    def _service_error(error: ServiceError) -> Response[str]:
        status = error.status_code if 400 <= error.status_code < 600 else 500
        return problem_response(
            problems.problem(status, "http-error", "Error", "the request could not be served")
        )

    def _unreadable_body(error: Exception) -> Response[str]:
        if not from_request_parsing(error):
            return _unexpected(error)
        try:
            caller()
        except Unauthorized as unauthorized:
            return problem_response(problems.from_error(unauthorized))
        return problem_response(problems.malformed_body())

    def _not_modified(answer: NotModified) -> Response[None]:
        return Response(status_code=304, content_type=None, body=None, headers={"ETag": answer.etag})

    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error", extra={"error_type": type(error).__name__})
        return problem_response(problems.internal())

    app.exception_handler(NotModified)(_not_modified)  # not a failure: a conditional GET's answer
    app.exception_handler(CalsyncError)(_domain_error)
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(RequestUnsupportedContentType)(_unsupported_media_type)
    app.exception_handler(ServiceError)(_service_error)
    app.exception_handler([ValueError, RecursionError])(_unreadable_body)
    app.exception_handler([ResponseValidationError, Exception])(_unexpected)
    app.not_found(_route_not_found)
