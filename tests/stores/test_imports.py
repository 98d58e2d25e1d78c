"""stores/ sits below the engine: it imports only the shared modules, APScheduler and drivers,
and no driver until a store of its kind is built."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "scheduler_service"
ALLOWED = tuple(
    f"scheduler_service.{name}" for name in ("errors", "dbtypes", "sqlitefiles", "redact", "stores")
)


def ours(path: Path) -> set[str]:
    """Return what a module of stores/ imports of scheduler_service (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "scheduler_service.stores".rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "scheduler_service"}


@pytest.mark.parametrize("path", sorted((PACKAGE / "stores").glob("*.py")), ids=lambda p: p.name)
def test_stores_import_only_what_lies_below(path: Path) -> None:
    bad = {name for name in ours(path) if not name.startswith(ALLOWED)}
    assert not bad, f"{path.name} imports {bad}"


def test_importing_the_registry_loads_no_driver() -> None:
    drivers = ("redis", "pymongo", "bson", "kazoo", "rethinkdb", "psycopg", "pymysql")
    code = (
        "import sys, scheduler_service.stores\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {drivers!r}"
        " or m.startswith('apscheduler.jobstores')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
