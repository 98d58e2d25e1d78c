"""Reading JSON bodies and query parameters, with SPEC §3 errors for bad ones."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from ..errors import BadRequest, UnsupportedMediaType, validation_errors

M = TypeVar("M", bound=BaseModel)
_JSON_TYPES = ("application/json",)


def is_json_mimetype(mimetype: str) -> bool:
    """Tell whether a Content-Type names JSON (application/json or application/*+json)."""
    return mimetype in _JSON_TYPES or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def refuse_non_json_body() -> None:
    """Answer 415 to a request that changes state with a form or text body (blocks CSRF).

    A body with no Content-Type is read as JSON, as Flask-APScheduler does.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.content_type and not is_json_mimetype(request.mimetype):
        raise UnsupportedMediaType(
            f"the body must be JSON, not {request.mimetype}: send Content-Type: "
            "application/json (curl: --json '{...}' or -H 'Content-Type: application/json')"
        )


def _refuse_constant(name: str) -> Any:
    # Python reads NaN and Infinity, which are not JSON: a job holding one could not be shown.
    raise ValueError(f"{name} is not a JSON value")


def json_body(*, required: bool = True) -> Any:
    """Return the request body parsed as JSON; None when it is empty and not required.

    :raises BadRequest: the body is empty (when required) or is not valid JSON.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise BadRequest("a JSON body is required")
        return None
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def json_object(*, required: bool = True) -> dict[str, Any] | None:
    """Return the body as a JSON object.

    :raises BadRequest: the body is not a JSON object.
    """
    body = json_body(required=required)
    if body is not None and not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def query_args(model: type[M]) -> M:
    """Validate the query string with ``model`` (unknown parameters are ignored).

    :raises BadRequest: naming each bad parameter.
    """
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        errors = validation_errors(exc)
        first, problem = next(iter(errors.items()))
        raise BadRequest(f"query parameter {first!r}: {problem}", errors=errors) from None


def check_at_most(name: str, value: int | None, maximum: int) -> None:
    """Refuse a query parameter above a bound that settings decide.

    :raises BadRequest: naming the parameter.
    """
    if value is not None and value > maximum:
        raise BadRequest(
            f"query parameter {name!r} must be at most {maximum}", errors={name: str(value)}
        )


def check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> None:
    """Refuse a query parameter outside choices that settings decide.

    :raises BadRequest: naming the parameter.
    """
    if value is not None and value not in choices:
        raise BadRequest(
            f"query parameter {name!r} must be one of {', '.join(choices)}", errors={name: value}
        )
