"""Reading JSON bodies and query parameters, with SPEC §3 errors for bad ones."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from ..errors import BadRequest, UnsupportedMediaType

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
        return json.loads(raw)
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


def int_arg(
    name: str, *, default: int | None, minimum: int, maximum: int | None = None
) -> int | None:
    """Read an integer query parameter within bounds.

    :raises BadRequest: naming the parameter.
    """
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(
            f"query parameter {name!r} must be an integer", errors={name: raw}
        ) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise BadRequest(f"query parameter {name!r} must be {bound}", errors={name: raw})
    return value


def bool_arg(name: str) -> bool | None:
    """Read a true/false query parameter.

    :raises BadRequest: naming the parameter.
    """
    raw = request.args.get(name)
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadRequest(f"query parameter {name!r} must be true or false", errors={name: raw})


def choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    """Read a query parameter that must be one of ``choices``.

    :raises BadRequest: naming the parameter.
    """
    raw = request.args.get(name)
    if raw is not None and raw not in choices:
        raise BadRequest(
            f"query parameter {name!r} must be one of {', '.join(choices)}", errors={name: raw}
        )
    return raw
