"""Schemathesis hooks for the CLI run of every phase (tests/system/test_api_fuzz.py): keep
generated requests inside what one test can wait for, and let generated jobs reach the trigger
and the store instead of being refused for a random `func`."""

from __future__ import annotations

from typing import Any

import schemathesis

# POST /jobs/<id>/run?wait=N blocks up to N (<= 300) seconds: keep generated waits short.
MAX_WAIT = 1


@schemathesis.hook
def map_query(ctx: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    wait = (query or {}).get("wait")
    if isinstance(wait, int) and not isinstance(wait, bool) and wait > MAX_WAIT:
        query["wait"] = MAX_WAIT  # type: ignore[index]
    return query


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    operation = ctx.operation
    if not (operation.path.startswith("/scheduler/jobs") and isinstance(body, dict)):
        return body
    if operation.method.upper() == "POST" or "func" in body:
        body["func"] = "jobs.examples:print_test"
    if operation.method.upper() == "POST" or {"args", "kwargs"} & set(body):
        body.update(args=["fuzz"], kwargs={})
    return body
