"""The house rules that keep the layout readable (issue 10), checked on the
source: SQL lives in store/ (reads for reports may live in reports/), and no
module imports one that imports it back."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "mailbeacon"
# SQLAlchemy's statement builders and the raw SQL that starts a statement.
BUILDERS = {"select", "insert", "update", "delete", "text", "func", "exists", "union_all"}
RAW_SQL = re.compile(
    r"^\s*(SELECT\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|BEGIN\b|PRAGMA\s"
    r"|CREATE\s+(TABLE|INDEX)\s|DROP\s+TABLE\s|ALTER\s+TABLE\s)"
)
SQL_ROOMS = ("store/", "reports/")


def _sql_outside_store() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(SQL_ROOMS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy":
                names = sorted({a.name for a in node.names} & BUILDERS)
                if names:
                    found.append(f"{rel}:{node.lineno} builds SQL ({', '.join(names)})")
            elif isinstance(node, ast.ImportFrom) and node.module == "mailbeacon.store.schema":
                found.append(f"{rel}:{node.lineno} reads tables from store.schema")
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and RAW_SQL.match(node.value)
            ):
                found.append(f"{rel}:{node.lineno} SQL {node.value[:40]!r}")
    return found


def test_sql_lives_in_store_and_reports() -> None:
    found = _sql_outside_store()
    assert not found, "move these into store/ (writes) or reports/ (report reads):\n" + "\n".join(
        found
    )


def test_the_check_sees_sql_where_it_should_not_be(tmp_path: Path) -> None:
    """The check itself can fail: each kind of SQL it looks for is caught."""
    cases = {
        "from sqlalchemy import select\n": "builds SQL",
        "from mailbeacon.store.schema import events\n": "reads tables",
        'Q = "SELECT id FROM events"\n': "SQL",
        'Q = "UPDATE events SET label = ?"\n': "SQL",
    }
    for source, _what in cases.items():
        tree = ast.parse(source)
        hit = any(
            (
                isinstance(n, ast.ImportFrom)
                and n.module in ("sqlalchemy", "mailbeacon.store.schema")
            )
            or (isinstance(n, ast.Constant) and isinstance(n.value, str) and RAW_SQL.match(n.value))
            for n in ast.walk(tree)
        )
        assert hit, source
    assert not RAW_SQL.match("Delete the address's messages")  # a docstring is not SQL


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("mailbeacon"):
                out.add(node.module)
                out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("mailbeacon"))
    return out


def test_no_module_imports_one_that_imports_it_back() -> None:
    modules = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("").as_posix().replace("/", ".")
        modules[rel.removesuffix(".__init__")] = _imports(path)
    cycles = sorted(
        f"{a} <-> {b}"
        for a, deps in modules.items()
        for b in deps
        if b in modules
        and b != a
        and a < b
        and a in modules[b]
        # a package's __init__ re-exporting its own modules is not a cycle
        and not b.startswith(a + ".")
    )
    assert not cycles, cycles
