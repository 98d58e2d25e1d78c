"""The allowlist of schedulable functions: "package.module:function" inside allowed packages,
and the check of a job's argument values against the function's annotations.

Only plain public functions *defined* in the module named, inside an allowed package, qualify:
a name that an allowed module merely imports (``from os import system``, or a helper of the
jobs package) is refused as well as ``os:system`` itself, and so is anything in a private
module (``jobs._limits``) or with a private name.

Argument values are validated with pydantic against the annotations (``Annotated`` types
carry the constraints, and the validators of the shipped jobs check their file roots and
networks), strictly: the function will receive the stored JSON value as it is, so ``"5"`` is
no number. The job functions check the same annotations again when they run.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import ConfigDict, PydanticUserError, TypeAdapter, ValidationError

_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z][A-Za-z0-9_]*$")


class CallableRefused(ValueError):
    """The reference is malformed, outside the allowed packages, or not a public function."""


def _inside(module: str, allowed: Iterable[str]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in allowed)


def _private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split("."))


def resolve_callable(ref: str, allowed: Sequence[str]) -> Callable[..., Any]:
    """Return the function named by ``ref`` if it lies inside the allowed packages.

    :raises CallableRefused: with a message fit for the API client.
    """
    if not isinstance(ref, str) or not _REF.match(ref):
        raise CallableRefused("must look like 'package.module:function'")
    module_name, func_name = ref.split(":")
    if not _inside(module_name, allowed) or _private(module_name):
        raise CallableRefused(
            f"{ref!r} is outside the allowed job modules ({', '.join(allowed)}); "
            "GET /scheduler/tasks lists what may be scheduled"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise CallableRefused(f"no module named {module_name!r}") from None
    func = getattr(module, func_name, None)
    if not inspect.isfunction(func) or func.__module__ != module_name:
        raise CallableRefused(f"{ref!r} is not a function defined in the allowed job modules")
    return func


class ArgumentsRefused(ValueError):
    """The arguments do not fit the function; ``errors`` maps "args.0" / "kwargs.name" (the
    field of the job that holds the value) to the problem, which names the parameter."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


_STRICT = ConfigDict(strict=True, arbitrary_types_allowed=True)


@functools.lru_cache(maxsize=256)
def _adapters(func: Callable[..., Any]) -> dict[str, TypeAdapter[Any]]:
    """One validator per annotated parameter of ``func`` (an unannotated one takes anything)."""
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # an annotation that does not resolve here: check the binding only
        return {}
    adapters = {}
    for name in inspect.signature(func).parameters:
        if name in hints:
            adapter = _adapter(hints[name])
            if adapter is not None:
                adapters[name] = adapter
    return adapters


def _adapter(hint: Any) -> TypeAdapter[Any] | None:
    """A strict validator of ``hint``; none for a type pydantic cannot validate (then only
    the binding is checked)."""
    for config in (_STRICT, None):  # None: a model has a config of its own
        try:
            return TypeAdapter(hint, config=config)
        except PydanticUserError:
            continue
        except Exception:
            return None
    return None


def _problem(error: ValidationError) -> str:
    """The first problem, without the value (pydantic's own words, or a validator's)."""
    first = error.errors(include_url=False, include_input=False)[0]
    if first["type"] == "value_error":
        return str(first["ctx"]["error"])
    return first["msg"]


def check_arguments(
    func: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    skip: Callable[[Any], bool] = lambda value: False,
) -> None:
    """Check that ``func`` accepts these arguments, each value fitting its annotation;
    values for which ``skip`` is true (secret references) are checked when the job runs.

    :raises ArgumentsRefused: naming each bad argument.
    """
    signature = inspect.signature(func)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:  # Python's own words: "missing a required argument: 'name'"
        raise ArgumentsRefused({"args": str(exc)}) from None
    adapters = _adapters(func)
    errors = {}
    for field, name, value in _given(signature, args, kwargs):
        adapter = adapters.get(name)
        if adapter is None or skip(value):
            continue
        try:
            adapter.validate_python(value, strict=True)
        except ValidationError as error:
            errors[field] = f"{name}: {_problem(error)}"
    if errors:
        raise ArgumentsRefused(errors)


def _given(
    signature: inspect.Signature, args: Sequence[Any], kwargs: dict[str, Any]
) -> Iterable[tuple[str, str, Any]]:
    """Yield the job field ("args.0", "kwargs.name"), the parameter's name and the value of
    each argument given (the arguments bind: checked before)."""
    params = list(signature.parameters.values())
    positional = [p.name for p in params if p.kind <= p.VAR_POSITIONAL]
    var_keyword = next((p.name for p in params if p.kind == p.VAR_KEYWORD), "")
    for index, value in enumerate(args):
        yield f"args.{index}", positional[min(index, len(positional) - 1)], value
    for key, value in kwargs.items():
        yield f"kwargs.{key}", key if key in signature.parameters else var_keyword, value


def _schema(adapter: TypeAdapter[Any] | None) -> dict[str, Any] | None:
    """The JSON Schema of a parameter (none for a type JSON cannot carry, e.g. an Event)."""
    if adapter is None:
        return None
    try:
        return adapter.json_schema()
    except Exception:  # PydanticInvalidForJsonSchema and friends
        return None


def _describe(ref: str, func: Callable[..., Any]) -> dict[str, Any]:
    signature = inspect.signature(func)
    adapters = _adapters(func)
    params = []
    for p in signature.parameters.values():
        param: dict[str, Any] = {"name": p.name, "kind": p.kind.name.lower()}
        if p.annotation is not inspect.Parameter.empty:
            param["type"] = p.annotation if isinstance(p.annotation, str) else repr(p.annotation)
        if p.default is not inspect.Parameter.empty:
            param["default"] = p.default if _json_safe(p.default) else repr(p.default)
        schema = _schema(adapters.get(p.name))
        if schema is not None:
            param["schema"] = schema
        params.append(param)
    return {
        "func": ref,
        "signature": f"{func.__name__}{signature}",
        "doc": inspect.getdoc(func) or "",
        "parameters": params,
    }


def _json_safe(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _modules(allowed: Sequence[str]) -> Iterable[Any]:
    for root in allowed:
        try:
            package = importlib.import_module(root)
        except ImportError:
            continue
        yield package
        for info in pkgutil.walk_packages(getattr(package, "__path__", []), root + "."):
            try:
                yield importlib.import_module(info.name)
            except ImportError:
                continue


def list_tasks(allowed: Sequence[str]) -> list[dict[str, Any]]:
    """Describe every function that may be scheduled, sorted by reference."""
    tasks: dict[str, dict[str, Any]] = {}
    for module in _modules(allowed):
        if _private(module.__name__):
            continue
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or func.__module__ != module.__name__:
                continue
            ref = f"{module.__name__}:{name}"
            tasks[ref] = _describe(ref, func)
    return [tasks[ref] for ref in sorted(tasks)]
