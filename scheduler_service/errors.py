"""Domain errors and the one JSON error body every non-2xx answer uses.

Exception tree::

    ServiceError                    500  root of every error the service raises on purpose
    ├── ConfigError (ValueError)    bad settings or job declarations; stops start-up
    ├── BadRequest                  400  malformed request (bad JSON, bad query parameter)
    │   └── ValidationFailed        400  body fails the schema; ``errors`` maps field -> problem
    ├── Unauthorized                401  missing or wrong credentials
    ├── Forbidden                   403  the role is too low, or a cross-site browser request
    ├── NotFound (LookupError)      404  unknown job (or other resource)
    ├── Conflict                    409  id already taken, or the state forbids the operation
    ├── PayloadTooLarge             413  a body over SCHEDULER_MAX_BODY_BYTES
    ├── Unprocessable               422  well-formed but impossible (date in the past, end < start)
    ├── TooManyRequests             429  a per-client limit: failed logins, streams per user
                                         (with Retry-After)
    └── ServiceUnavailable          503  a job store or database cannot be reached, or too many
                                         password checks at once (with Retry-After)

Every answer that is not 2xx has the body of SPEC §3::

    {"error_message": "...", "code": 422, "status": "Unprocessable Entity", "errors": {...}}
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import BaseModel, ConfigDict, ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Root of the service's own errors; knows its HTTP status."""

    code: int = 500

    def __init__(
        self,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers or {}  # sent with the answer, e.g. Retry-After


class ConfigError(ServiceError, ValueError):
    """Settings or declared jobs are invalid; the message names the key or job."""


class BadRequest(ServiceError):
    code = 400


class ValidationFailed(BadRequest):
    """The request body does not match the schema."""


class Unauthorized(ServiceError):
    """Raised with the ``WWW-Authenticate`` header of the scheme the service asks for."""

    code = 401


class Forbidden(ServiceError):
    code = 403


class NotFound(ServiceError, LookupError):
    code = 404


class Conflict(ServiceError):
    code = 409


class PayloadTooLarge(ServiceError):
    code = 413


class Unprocessable(ServiceError):
    code = 422


class TooManyRequests(ServiceError):
    code = 429


class ServiceUnavailable(ServiceError):
    code = 503


class ErrorBody(BaseModel):
    """The body of every answer that is not 2xx (SPEC §3), as the OpenAPI document shows it."""

    model_config = ConfigDict(extra="forbid")

    error_message: str
    code: int
    status: str
    errors: dict[str, Any] | None = None


def validation_errors(exc: ValidationError) -> dict[str, str]:
    """Map a pydantic ValidationError to ``{"field": "problem"}``, the shape of ``errors``."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "body"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        errors.setdefault(field, message)
    return errors


def error_response(code: int, message: str, *, errors: dict[str, Any] | None = None) -> Response:
    """Build the SPEC §3 error body with the given status."""
    body: dict[str, Any] = {
        "error_message": message,
        "code": code,
        "status": HTTPStatus(code).phrase,
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = code
    return response


def _handle_service_error(error: ServiceError) -> Response:
    response = error_response(error.code, error.message, errors=error.errors)
    response.headers.update(error.headers)
    return response


def _handle_http_exception(error: HTTPException) -> Response:
    code = error.code or 500
    response = error_response(code, error.description or HTTPStatus(code).phrase)
    if code == 405 and error.valid_methods:  # type: ignore[attr-defined]
        response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return response


def database_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says a SQL database is out of reach (a connection refused or lost,
    a lock or pool timeout), not that it refused what was asked."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(error, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def _handle_unexpected(error: Exception) -> Response:
    if database_unreachable(error):  # a route without its own check: still a 503, one line
        log.warning("the service database is unreachable: %s", type(error).__name__)
        return error_response(503, "the service database is unavailable")
    # The traceback goes to the log; the client learns nothing about internals.
    log.exception("unhandled error", exc_info=error)
    return error_response(500, "Internal server error")


def register_error_handlers(app: Flask) -> None:
    """Turn every error, HTTPException included, into the SPEC §3 JSON body."""
    app.register_error_handler(ServiceError, _handle_service_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
