"""Reading JSON bodies and query parameters, with SPEC §3 errors for bad ones.

A body is read as JSON whatever its Content-Type, as Flask-APScheduler does; cross-site
browser requests never get this far (``guards.py``).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel, ValidationError

from .errors import BadRequest, validation_errors

M = TypeVar("M", bound=BaseModel)
# A JSON string, escapes included; an unterminated one runs to the end. Possessive, and unable
# to fail once at a quote: every byte is looked at once, whatever the input (linear time).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+\\?(?:"|\Z)', re.DOTALL)
# What counts for nesting: [ and { open, ] and } close.
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def nesting_depth(raw: bytes) -> int:
    """Return how deep arrays and objects nest in a UTF-8 JSON text, without parsing it.

    Strings are cut out (a bracket inside one does not count); what is left is reduced to
    +1 per opening and -1 per closing bracket (bytes read as signed), whose running sum peaks
    at the depth. All of it runs in C: a megabyte takes tens of milliseconds.
    """
    brackets = _STRING.sub(b"", raw).translate(_BRACKETS, _NOT_BRACKETS)
    return max(accumulate(memoryview(brackets).cast("b"), initial=0))


def _check_depth(raw: bytes) -> None:
    encoding = json.detect_encoding(raw)  # JSON may come in UTF-16 or UTF-32 too
    if encoding not in ("utf-8", "utf-8-sig"):
        raw = raw.decode(encoding).encode()
    limit = current_app.config["SCHEDULER_MAX_JSON_DEPTH"]
    if nesting_depth(raw) > limit:
        raise BadRequest(
            f"the body nests arrays and objects more than {limit} deep (SCHEDULER_MAX_JSON_DEPTH)"
        )


def _refuse_constant(name: str) -> Any:
    # Python reads NaN and Infinity, which are not JSON: a job holding one could not be shown.
    raise ValueError(f"{name} is not a JSON value")


def json_body(*, required: bool = True) -> Any:
    """Return the request body parsed as JSON; None when it is empty and not required.

    :raises BadRequest: the body is empty (when required), nests deeper than
        SCHEDULER_MAX_JSON_DEPTH or is not valid JSON.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise BadRequest("a JSON body is required")
        return None
    try:
        _check_depth(raw)
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # the depth check is set above what the interpreter allows
        raise BadRequest("the body nests arrays and objects too deep") from None


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
