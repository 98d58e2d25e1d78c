"""The OpenAPI 3.0 document of the service, built from the app's URL map and the pydantic
models that validate requests; each view adds what only it knows with ``@describe(...)``.

Statuses are derived where the service decides them once for all: 401, 429 (failed logins)
and 503 (password checks busy) from auth, 403 from the view's role and, for a method that
changes state, the cross-site guard, 413 for a method with a body, 400 for a body or query
schema, 404 for path parameters; a view names the others (409, 422, 503).

Size: the document builder and the ``@describe`` it reads are one piece; the 3.0 conversion of
pydantic's schemas is apart, in schema30.py.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from flask import Flask
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from werkzeug.routing import FloatConverter, IntegerConverter, PathConverter, Rule

from .auth import PUBLIC_ENDPOINTS, ROLES, required_role
from .errors import ErrorBody
from .schema30 import to_openapi30
from .version import service_version

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"
_AUTOMATIC_METHODS = frozenset({"HEAD", "OPTIONS"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
# Statuses that tell when to try again; what they mean here.
_RETRY_AFTER = {
    429: "Too Many Requests: too many failed logins from this address or for this user",
    503: "Service Unavailable: a store or database is unreachable, or too many password "
    "checks are under way (then with Retry-After)",
}


@dataclass(frozen=True)
class Operation:
    """What the document says about one view, besides what the URL map and auth know."""

    summary: str
    body: Any = None  # a pydantic model validating the JSON body
    body_required: bool = True
    query: type[BaseModel] | None = None  # a pydantic model validating the query string
    response: Any = None  # a type describing the success body; None: no body
    status: int = 200
    media_type: str | tuple[str, ...] = "application/json"
    paged: bool = False  # answers X-Total-Count
    errors: tuple[int, ...] = ()  # statuses beyond those every operation of its kind has
    responses: dict[int, Any] = field(default_factory=dict)  # status -> non-error body type
    description: str = ""
    # OpenAPI links of the success answer: name -> (operationId, {parameter: expression}),
    # e.g. ("jobs.get_job", {"job_id": "$response.body#/id"}); clients and Schemathesis'
    # stateful phase follow them.
    links: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)


def describe(summary: str, **details: Any) -> Callable[[F], F]:
    """Attach what the OpenAPI document says about a view (see ``Operation``)."""
    operation = Operation(summary=summary, **details)

    def mark(view: F) -> F:
        view.openapi = operation  # type: ignore[attr-defined]
        return view

    return mark


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def partial_model(
    model: type[BaseModel], *, name: str, exclude: tuple[str, ...] = ()
) -> type[BaseModel]:
    """Derive the schema of a PATCH body: the fields of ``model``, none of them required."""
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        if field_name not in exclude:
            annotation = (
                Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
            )
            fields[field_name] = (
                annotation,
                Field(None, description=info.description, json_schema_extra=_no_default),
            )
    return create_model(
        name,
        __config__=ConfigDict(extra=model.model_config.get("extra")),
        __doc__=f"Changes: any fields of {model.__name__}"
        + (f" but {', '.join(exclude)}." if exclude else "."),
        **fields,
    )


# -- the document --------------------------------------------------------------------------------


class _Components:
    """The schemas the document refers to, collected while operations are described."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def add(self, name: str, schema: dict[str, Any]) -> None:
        known = self.schemas.setdefault(name, schema)
        if known != schema:
            raise ValueError(f"two different schemas are called {name!r}")

    def schema_for(self, tp: Any) -> dict[str, Any]:
        """Return a schema for ``tp``: a $ref for a model, and arrays and unions of them."""
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            schema = tp.model_json_schema(ref_template=REF)
            for name, definition in schema.pop("$defs", {}).items():
                self.add(name, to_openapi30(definition))
            self.add(tp.__name__, to_openapi30(schema))
            return {"$ref": REF.format(model=tp.__name__)}
        origin = get_origin(tp)
        if origin is list:
            return {"type": "array", "items": self.schema_for(get_args(tp)[0])}
        if origin in (Union, types.UnionType):
            return {"anyOf": [self.schema_for(arg) for arg in get_args(tp)]}
        schema = TypeAdapter(tp).json_schema(ref_template=REF)
        for name, definition in schema.pop("$defs", {}).items():
            self.add(name, to_openapi30(definition))
        return to_openapi30(schema)


_PAGES = ("ui", "ui_home")  # blueprints of HTML pages


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    parameters = []
    for name in _ARGUMENT.findall(rule.rule):
        # Werkzeug has no public map of a rule's converters.
        converter = rule._converters[name]
        if isinstance(converter, IntegerConverter):
            schema: dict[str, Any] = {"type": "integer", "minimum": 0}
        elif isinstance(converter, FloatConverter):
            schema = {"type": "number", "minimum": 0}
        elif isinstance(converter, PathConverter):
            schema = {"type": "string", "pattern": "^[^/]"}
        else:
            schema = {"type": "string", "pattern": "^[^/]+$"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _query_parameters(model: type[BaseModel], components: _Components) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    for name, definition in schema.pop("$defs", {}).items():
        components.add(name, to_openapi30(definition))
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = to_openapi30(prop)
        if prop.pop("nullable", False):  # a query parameter is absent, never null
            if prop.get("default", ...) is None:
                del prop["default"]
            if isinstance(prop.get("enum"), list):
                prop["enum"] = [v for v in prop["enum"] if v is not None]
        description = prop.pop("description", "")
        prop.pop("title", None)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _error(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": HTTPStatus(status).phrase,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorBody")}}},
    }
    if status in _RETRY_AFTER:
        answer["description"] = _RETRY_AFTER[status]
        answer["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before trying again",
                "required": status == 429,
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return answer


def _success(op: Operation, components: _Components) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": HTTPStatus(op.status).phrase}
    if op.response is not None:
        schema = (
            op.response if isinstance(op.response, dict) else components.schema_for(op.response)
        )
        media_types = (op.media_type,) if isinstance(op.media_type, str) else op.media_type
        answer["content"] = {media_type: {"schema": schema} for media_type in media_types}
    if op.paged:
        answer["headers"] = {
            "X-Total-Count": {
                "description": "how many items the whole list holds",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    if op.links:
        answer["links"] = {
            name: {"operationId": operation_id, "parameters": parameters}
            for name, (operation_id, parameters) in op.links.items()
        }
    if op.status == 201:
        answer.setdefault("headers", {})["Location"] = {
            "description": "the URL of the new resource",
            "schema": {"type": "string"},
        }
    return answer


def _responses(
    op: Operation, components: _Components, *, role: str | None, has_path: bool, method: str
) -> dict[str, Any]:
    statuses = set(op.errors)
    if has_path:
        statuses.add(404)
    if op.body is not None or op.query is not None:
        statuses.add(400)
    if method in _BODY_METHODS:
        statuses.update((403, 413))  # a cross-site browser request; a body over the limit
    if role is not None:  # None: no authentication
        statuses.update((401, 429, 503))
        if role != ROLES[0]:
            statuses.add(403)
    responses: dict[str, Any] = {str(op.status): _success(op, components)}
    for status in sorted(statuses):
        responses[str(status)] = _error(status)
    for status, tp in op.responses.items():
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"schema": components.schema_for(tp)}},
        }
    return responses


def _operation(app: Flask, rule: Rule, method: str, components: _Components) -> dict[str, Any]:
    view = app.view_functions[rule.endpoint]
    op: Operation | None = getattr(view, "openapi", None)
    if op is None:
        raise LookupError(f"view {rule.endpoint} has no @describe(...) for the OpenAPI document")
    parameters = _path_parameters(rule)
    role = None if rule.endpoint in PUBLIC_ENDPOINTS else required_role(view, method)
    methods = (rule.methods or set()) - _AUTOMATIC_METHODS
    document: dict[str, Any] = {
        "operationId": rule.endpoint if len(methods) == 1 else f"{rule.endpoint}.{method.lower()}",
        "summary": op.summary,
        "description": op.description
        if role is None
        else f"{op.description}\n\nNeeds the `{role}` role.".strip(),
        "tags": [rule.endpoint.split(".")[-2] if "." in rule.endpoint else "service"],
        "responses": _responses(
            op, components, role=role, has_path=bool(parameters), method=method
        ),
    }
    if op.query is not None:
        parameters += _query_parameters(op.query, components)
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        document["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": components.schema_for(op.body)}},
        }
    if role is None:
        document["security"] = []
    return document


def documented(rule: Rule) -> bool:
    """Whether a route belongs in the document: not static files, not the dashboard's pages
    (HTML for browsers, not an API)."""
    return rule.endpoint != "static" and rule.endpoint.partition(".")[0] not in _PAGES


def build_document(app: Flask) -> dict[str, Any]:
    """Build the OpenAPI 3.0 document of every route of ``app`` but static files.

    :raises LookupError: a view has no ``@describe``.
    """
    components = _Components()
    components.schema_for(ErrorBody)
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not documented(rule):
            continue
        for method in sorted((rule.methods or set()) - _AUTOMATIC_METHODS):
            operation = _operation(app, rule, method, components)
            paths.setdefault(_ARGUMENT.sub(r"{\1}", rule.rule), {})[method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "scheduler-service",
            "version": service_version(),
            "description": "A job-scheduling control plane: Flask-APScheduler's REST API, "
            "behind authentication. Every answer that is not 2xx has the ErrorBody shape.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"basic": []}, {"bearer": []}],
    }
