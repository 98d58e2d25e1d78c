"""The allowlist of schedulable functions: "package.module:function" inside allowed packages.

Only plain public functions *defined* in an allowed package qualify, so a name that an allowed
module merely imports (``from os import system``) is refused as well as ``os:system`` itself.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z][A-Za-z0-9_]*$")


class CallableRefused(ValueError):
    """The reference is malformed, outside the allowed packages, or not a public function."""


def _inside(module: str, allowed: Iterable[str]) -> bool:
    return any(module == root or module.startswith(root + ".") for root in allowed)


def resolve_callable(ref: str, allowed: Sequence[str]) -> Callable[..., Any]:
    """Return the function named by ``ref`` if it lies inside the allowed packages.

    :raises CallableRefused: with a message fit for the API client.
    """
    if not isinstance(ref, str) or not _REF.match(ref):
        raise CallableRefused("must look like 'package.module:function'")
    module_name, func_name = ref.split(":")
    if not _inside(module_name, allowed):
        raise CallableRefused(
            f"{ref!r} is outside the allowed job modules ({', '.join(allowed)}); "
            "GET /scheduler/tasks lists what may be scheduled"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise CallableRefused(f"no module named {module_name!r}") from None
    func = getattr(module, func_name, None)
    if not inspect.isfunction(func) or not _inside(func.__module__, allowed):
        raise CallableRefused(f"{ref!r} is not a function defined in the allowed job modules")
    return func


def check_arguments(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """Check that ``func`` accepts these arguments.

    :raises TypeError: with Python's own message, e.g. "missing a required argument: 'name'".
    """
    inspect.signature(func).bind(*args, **kwargs)


def _describe(ref: str, func: Callable[..., Any]) -> dict[str, Any]:
    signature = inspect.signature(func)
    params = []
    for p in signature.parameters.values():
        param: dict[str, Any] = {"name": p.name, "kind": p.kind.name.lower()}
        if p.annotation is not inspect.Parameter.empty:
            param["type"] = p.annotation if isinstance(p.annotation, str) else repr(p.annotation)
        if p.default is not inspect.Parameter.empty:
            param["default"] = p.default if _json_safe(p.default) else repr(p.default)
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
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or func.__module__ != module.__name__:
                continue
            ref = f"{module.__name__}:{name}"
            tasks[ref] = _describe(ref, func)
    return [tasks[ref] for ref in sorted(tasks)]
