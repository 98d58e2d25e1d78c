"""Imports flow one way (ARCHITECTURE.md): the web layer -> control/ -> firing/ ->
scheduler/ and coordination/ -> runs/ -> stores/ -> the shared base modules; jobs/ stands alone.

Every import counts, those under ``if TYPE_CHECKING:`` and inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "scheduler_service"

# Each part of the package, lowest first: a module may import its own layer and those below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "base",
        (
            "errors",
            "settings",
            "extensions",
            "dbtypes",
            "sqlitefiles",
            "redact",
            "version",
            "migrate_lock",
            "devadmin",
            "shipped_jobs",
            "tuning",
        ),
    ),
    ("stores", ("stores",)),
    ("runs", ("runs",)),
    ("domain", ("scheduler", "coordination")),
    ("engine", ("firing",)),
    ("control", ("control",)),
    (
        "web",
        (
            "web",
            "openapi",
            "schema30",
            "auth",
            "sessions",
            "guards",
            "throttle",
            "server",
            "api",
            "blog",
            "ui",
        ),
    ),
    ("root", ("__init__", "cli", "migrations")),
]
RANK = {part: rank for rank, (_, parts) in enumerate(LAYERS) for part in parts}
WEB = RANK["web"]


def part_of(name: str) -> str | None:
    """The top-level part (``stores``, ``errors``...) a module of the package belongs to."""
    if name == "scheduler_service":
        return "__init__"
    if not name.startswith("scheduler_service."):
        return None
    return name.split(".")[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """Whether ``scheduler_service.x.y`` names a module or package (not a name inside one)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports_in(source: str, package: str) -> set[str]:
    """Return what ``source`` (a module of ``package``) imports, as absolute names (relative
    imports resolved): a module, or ``module.name`` for ``from module import name``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            # `from a import b` names a.b only: b is a module of a, or a name inside a
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def imports_of(path: Path) -> set[str]:
    return imports_in(path.read_text(), ".".join(path.parent.relative_to(ROOT).parts))


def ours(names: set[str]) -> set[str]:
    """The modules of the package among ``names`` (a name inside a module counts as its
    module)."""
    found = set()
    for name in names:
        if name.startswith("scheduler_service"):
            found.add(name if is_module(name) else name.rpartition(".")[0])
    return found


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "versions" not in p.parts)


def ident(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


@pytest.mark.parametrize("path", package_files(), ids=ident)
def test_imports_flow_downward(path: Path) -> None:
    part = part_of(module_name(path))
    assert part in RANK, f"{ident(path)}: add its part {part!r} to a layer in LAYERS"
    upward = {
        name
        for name in ours(imports_of(path))
        if part_of(name) != part and RANK.get(part_of(name) or "", 0) > RANK[part]
    }
    assert not upward, f"{ident(path)} ({part}) imports from a higher layer: {sorted(upward)}"


@pytest.mark.parametrize("path", package_files(), ids=ident)
def test_nothing_below_imports_the_package_root(path: Path) -> None:
    if part_of(module_name(path)) in ("__init__", "cli", "migrations"):
        return
    assert "scheduler_service" not in ours(imports_of(path)), (
        f"{ident(path)} imports the package root"
    )


@pytest.mark.parametrize("path", package_files(), ids=ident)
def test_only_the_web_layer_reads_flask_request(path: Path) -> None:
    if RANK[part_of(module_name(path)) or ""] >= WEB:
        return
    names = imports_of(path)
    assert "flask.request" not in names, f"{ident(path)} imports Flask's request"


@pytest.mark.parametrize("path", sorted((ROOT / "jobs").rglob("*.py")), ids=lambda p: p.name)
def test_jobs_import_nothing_of_the_service(path: Path) -> None:
    assert not {n for n in imports_of(path) if n.startswith("scheduler_service")}


@pytest.mark.parametrize("path", sorted((PACKAGE / "blog").rglob("*.py")), ids=lambda p: p.name)
def test_blog_never_imports_the_scheduler(path: Path) -> None:
    parts = {"scheduler", "firing", "control", "runs", "stores", "coordination"}
    bad = {n for n in ours(imports_of(path)) if part_of(n) in parts}
    assert not bad, f"{path.name} imports {bad}"


def test_the_checker_sees_every_kind_of_import() -> None:
    """Relative imports resolve; a name inside a module counts as its module; imports inside
    functions and under TYPE_CHECKING count."""
    names = ours(imports_of(PACKAGE / "api" / "jobs.py"))
    assert {"scheduler_service.control", "scheduler_service.web"} <= names
    assert "scheduler_service" in ours(imports_of(PACKAGE / "cli.py"))  # from . import create_app
    probe = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..control import get_scheduler\n"
        "from .. import create_app\n"
        "def f():\n"
        "    from flask import request\n"
    )
    found = imports_in(probe, "scheduler_service.runs")
    assert {"scheduler_service.control", "scheduler_service"} <= ours(found)
    assert "flask.request" in found
