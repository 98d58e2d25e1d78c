"""JSON Schema 2020-12, as pydantic writes it, rewritten into OpenAPI 3.0 schema objects.

OpenAPI 3.0 spells a few keywords its own way: ``nullable: true`` instead of a null type,
boolean ``exclusiveMinimum``, ``enum`` instead of ``const``, one ``example``. The bundled
Swagger UI (4.x) renders 3.0 documents only, hence the rewrite.
"""

from __future__ import annotations

from typing import Any


def to_openapi30(schema: Any) -> Any:
    """Rewrite a pydantic JSON schema into an OpenAPI 3.0 schema object."""
    if isinstance(schema, list):
        return [to_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    for union in ("anyOf", "oneOf"):
        if {"type": "null"} in schema.get(union, ()):
            return to_openapi30(_nullable(schema, union))
    out = {key: to_openapi30(value) for key, value in schema.items() if key != "properties"}
    if "properties" in schema:
        out["properties"] = {k: to_openapi30(v) for k, v in schema["properties"].items()}
    if out.get("type") == "null":  # 3.0 has no null type: a nullable schema that takes only null
        del out["type"]
        out.update(enum=[None], nullable=True)
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if out.get("nullable") and isinstance(out.get("enum"), list) and None not in out["enum"]:
        out["enum"].append(None)  # in 3.0 an enum without null refuses null, nullable or not
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out[bound], bool):
            out[inclusive] = out.pop(bound)
            out[bound] = True
    if "examples" in out:
        examples = out.pop("examples")
        if isinstance(examples, list) and examples:
            out["example"] = examples[0]
    return out


def _nullable(schema: dict[str, Any], union: str) -> dict[str, Any]:
    """Turn ``anyOf: [X, {type: null}]`` into X with ``nullable: true``."""
    rest = {k: v for k, v in schema.items() if k != union}
    choices = [c for c in schema[union] if c != {"type": "null"}]
    if len(choices) == 1 and "$ref" not in choices[0]:
        return {**choices[0], **rest, "nullable": True}
    if len(choices) == 1:
        return {"allOf": choices, **rest, "nullable": True}
    return {union: choices, **rest, "nullable": True}
