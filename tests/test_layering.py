"""Imports flow one way: app factory -> api/ -> scheduler/ -> APScheduler; jobs/ stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    """Return the absolute module names a file imports (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


CORE = [
    *files("scheduler_service/scheduler"),
    *files("scheduler_service/firing"),
    *files("scheduler_service/runs"),
    *files("scheduler_service/coordination"),
]


@pytest.mark.parametrize("path", CORE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scheduler_core_knows_no_http_layer(path: Path) -> None:
    bad = {
        n
        for n in imports_of(path)
        if n.startswith(("scheduler_service.api", "scheduler_service.auth", "flask.request"))
        or n == "flask.request"
    }
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", files("jobs"), ids=lambda p: p.name)
def test_jobs_import_nothing_of_the_service(path: Path) -> None:
    assert not {n for n in imports_of(path) if n.startswith("scheduler_service")}


def test_the_checker_sees_relative_imports() -> None:
    names = imports_of(ROOT / "scheduler_service/api/jobs.py")
    assert "scheduler_service.scheduler.ext" in names


@pytest.mark.parametrize("path", files("scheduler_service/blog"), ids=lambda p: p.name)
def test_blog_never_imports_the_scheduler(path: Path) -> None:
    bad = {n for n in imports_of(path) if n.startswith("scheduler_service.scheduler")}
    assert not bad, f"{path.name} imports {bad}"
