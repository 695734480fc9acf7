"""The layers that a linter of imports cannot see: SQL is built only in repositories (and the
auditors), and a feature reaches another feature's data only through that feature's service.

Import layers between packages are checked by ``lint-imports`` (contracts in pyproject.toml),
which the test command runs before this suite.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "kopilka"
# Statement builders and raw SQL belong to repositories; the kit's bulk writer and query
# helpers, the engine set-up, the tables and the migrations are the plumbing under them.
SQL_HOMES = ("repository.py", "audit.py")
PLUMBING = ("kit/", "models/", "migrations/", "db.py")
BUILDERS = {
    "select",
    "insert",
    "update",
    "delete",
    "text",
    "func",
    "and_",
    "or_",
    "tuple_",
    "bindparam",
    "literal",
    "case",
    "exists",
    "extract",
    "column",
    "values",
}
RAW_SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|LOCK)\s", re.IGNORECASE)
EXECUTES = {"execute", "exec_driver_sql", "fetch", "fetchrow", "executemany"}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        yield relative, ast.parse(path.read_text(), filename=relative)


def builds_sql(tree: ast.Module) -> list[str]:
    """What in a module builds or runs SQL, as readable findings."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            names = {a.name for a in node.names} & BUILDERS
            if names and node.module in ("sqlalchemy", "sqlalchemy.sql"):
                found.append(f"line {node.lineno}: imports {sorted(names)} from sqlalchemy")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if RAW_SQL.match(node.value) and not node.value.strip().endswith((".", ":")):
                found.append(f"line {node.lineno}: SQL text {node.value[:40]!r}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in EXECUTES
        ):
            found.append(f"line {node.lineno}: runs a statement (.{node.func.attr})")
    return found


def test_sql_is_built_only_in_repositories() -> None:
    offenders = {
        name: findings
        for name, tree in modules()
        if not name.endswith(SQL_HOMES)
        and not name.startswith(PLUMBING)
        and (findings := builds_sql(tree))
    }
    assert offenders == {}


def test_a_feature_uses_another_feature_only_through_its_service() -> None:
    """No module imports another package's repository (the feature's service is the way
    in, and holds the rules around the data: locks, idempotency, events)."""
    offenders = []
    for name, tree in modules():
        package = name.split("/")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if (
                    len(parts) == 3
                    and parts[0] == "kopilka"
                    and parts[2] == "repository"
                    and parts[1] != package
                ):
                    offenders.append(f"{name}:{node.lineno} imports {node.module}")
    assert offenders == []


def test_the_checks_catch_what_they_look_for() -> None:
    """The checks themselves can fail: SQL written in a service is found."""
    service = ast.parse(
        "from sqlalchemy import select\n"
        "Q = 'SELECT 1 FROM t'\n"
        "async def f(conn):\n"
        "    await conn.execute(Q)\n"
    )
    assert len(builds_sql(service)) == 3
    assert builds_sql(ast.parse("from sqlalchemy.ext.asyncio import AsyncConnection\n")) == []
