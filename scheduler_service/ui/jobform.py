"""The job form: its fields from the task catalog, and the API's JSON from what was posted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..scheduler.serialize import job_to_dict
from .words import CRONTAB_FIELDS

TRIGGERS = ("interval", "cron", "date")
UNITS = ("seconds", "minutes", "hours")
TRIGGER_INPUTS = (*UNITS, "crontab", "run_date", "timezone")
_KINDS = ("positional_or_keyword", "keyword_only")
_JSON_TYPES = {"integer": int, "number": float}


def fields_of(task: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One form field per parameter a keyword can set: name, type, JSON Schema, default."""
    if task is None:
        return []
    fields = []
    for param in task["parameters"]:
        if param["kind"] not in _KINDS:
            continue
        schema = param.get("schema") or {}
        fields.append(
            {
                "name": param["name"],
                "key": f"kwargs.{param['name']}",
                "type": param.get("type", ""),
                "json_type": schema.get("type", ""),
                "doc": schema.get("description", ""),
                "required": "default" not in param,
                "default": param.get("default"),
            }
        )
    return fields


def _value(raw: str, json_type: str) -> Any:
    """The form's text as the parameter's JSON type; unchanged when it is not one (the
    validator then names the field)."""
    if json_type == "string":
        return raw
    if json_type in _JSON_TYPES:
        try:
            return _JSON_TYPES[json_type](raw)
        except ValueError:
            return raw
    if json_type == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def body_from(form: Mapping[str, str], fields: list[dict[str, Any]], *, edit: bool) -> dict:
    """Build the JSON that POST /scheduler/jobs (or, for ``edit``, the PATCH) takes."""
    body: dict[str, Any] = {} if edit else {"id": form.get("id", "")}
    if form.get("name") or edit:
        body["name"] = form.get("name") or None
    body["func"] = form.get("func", "")
    body["kwargs"] = {
        f["name"]: _value(form[f["key"]], f["json_type"]) for f in fields if form.get(f["key"])
    }
    if edit:
        body["args"] = []  # the form sets every parameter by name
        if body["name"] is None:
            del body["name"]
    trigger = form.get("trigger", "")
    body["trigger"] = trigger
    if trigger == "interval":
        for unit in UNITS:
            raw = form.get(unit, "")
            value = int(raw) if raw.isdigit() else (raw or None)
            if value is not None or edit:
                body[unit] = value
    elif trigger == "cron" and (form.get("crontab") or edit):
        body["crontab"] = form.get("crontab", "")
    elif trigger == "date" and (form.get("run_date") or edit):
        body["run_date"] = form.get("run_date", "")
    if form.get("timezone"):
        body["timezone"] = form["timezone"]
    return body


def values_of(job: Any, fields: list[dict[str, Any]]) -> dict[str, str]:
    """The form's values for a stored job (positional args shown by their parameter's name)."""
    data = job_to_dict(job)
    values = {"id": data["id"], "name": data["name"], "func": data["func"]}
    named = dict(zip([f["name"] for f in fields], data["args"], strict=False))
    for name, value in {**named, **data["kwargs"]}.items():
        values[f"kwargs.{name}"] = value if isinstance(value, str) else json.dumps(value)
    values["trigger"] = data["trigger"]
    if data["trigger"] == "interval":
        hours = data.get("weeks", 0) * 168 + data.get("days", 0) * 24 + data.get("hours", 0)
        for unit, value in (("hours", hours), ("minutes", data.get("minutes", 0))):
            if value:
                values[unit] = str(value)
        if data.get("seconds"):
            values["seconds"] = str(data["seconds"])
    elif data["trigger"] == "cron":
        values["crontab"] = " ".join(str(data.get(name, "*")) for name in CRONTAB_FIELDS)
    elif data["trigger"] == "date":
        values["run_date"] = data.get("run_date") or ""
    values["timezone"] = data.get("timezone", "")
    return values
