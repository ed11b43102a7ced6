"""Issue 11: SQL lives in the journal alone — terminal/journal.py and the journal at open (connection, migrations),
terminal/journal_open.py (split off when journal.py reached 400 lines); every other module asks the journal by a
named method."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("terminal", "flows", "drivers", "emv", "firmware_image", "pos_errors")
JOURNAL = ROOT / "terminal" / "journal.py"
MIGRATE = ROOT / "terminal" / "journal_open.py"  # the connection and the migrations at open, beside journal.py
SCHEMA = ROOT / "terminal" / "journal_schema.py"  # the journal's migrations as data: DDL text, executed by JOURNAL only
# statement shapes, not bare keywords: EMV speaks of "SELECT PSE" and "SELECT AID"
SQL = re.compile(r"\b(SELECT\s+[\w*,() ]+\s+FROM\s+\w+|INSERT\s+(OR\s+\w+\s+)?INTO\s+\w+|UPDATE\s+\w+\s+SET\b"
                 r"|DELETE\s+FROM\s+\w+|CREATE\s+(TABLE|INDEX|TRIGGER)\b|DROP\s+(TABLE|TRIGGER)\b|PRAGMA\s+\w+)",
                 re.IGNORECASE)
DB_CALLS = {"execute", "executemany", "executescript"}


def _sql_in(path: Path, base: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            if not _is_docstring(tree, node):
                found.append(f"{path.relative_to(base)}:{node.lineno}: {SQL.search(node.value).group(0)!r}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DB_CALLS:
            found.append(f"{path.relative_to(base)}:{node.lineno}: .{node.func.attr}(")
    return found


def _is_docstring(tree: ast.Module, constant: ast.Constant) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and first.value is constant:
                return True
    return False


def test_no_sql_outside_the_journal() -> None:
    offenders = [hit for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))
                 if path not in (JOURNAL, MIGRATE) for hit in _sql_in(path) if path != SCHEMA or hit.endswith("(")]
    assert offenders == []


def test_the_schema_module_holds_statements_and_runs_none() -> None:
    hits = _sql_in(SCHEMA)
    assert any("CREATE TABLE" in hit for hit in hits) and not [hit for hit in hits if hit.endswith("(")]


def test_the_scan_finds_sql_where_there_is_some(tmp_path: Path) -> None:
    assert len(_sql_in(JOURNAL)) > 20  # the journal itself is full of it: the scanner sees statements and calls
    sample = tmp_path / "sample.py"
    sample.write_text('def f(db):\n    db.execute("UPDATE users SET role = ? WHERE user_id = ?")\n'
                      'SELECT_PSE = "SELECT PSE"\n', encoding="utf-8")
    assert sorted(hit.split(": ", 1)[1] for hit in _sql_in(sample, tmp_path)) == ["'UPDATE users SET'", ".execute("]
