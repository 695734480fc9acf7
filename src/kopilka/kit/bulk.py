"""Multi-row inserts at driver speed.

SQLAlchemy Core spends tens of microseconds per row turning each parameter dict into driver
values; a purchase writes about eight rows, so that overhead alone would cap ingestion at a
few thousand purchases a second. Here each column gets one converter, computed once per
table and dialect, rows become tuples, and they go to the driver in one call: ``COPY`` on
PostgreSQL for large batches, ``executemany`` otherwise. Values are stored exactly as the
SQLAlchemy types would store them, so Core and ORM reads see no difference.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any, cast
from uuid import UUID

import orjson
from sqlalchemy import JSON, Date, Table, Uuid, and_, bindparam, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import DRIVER_ERRORS, driver_error, pg_driver
from kopilka.kit.timestamps import Timestamp

Converter = Callable[[Any], Any]
COPY_THRESHOLD = 64  # below this, COPY's set-up costs more than it saves
MAX_PG_PARAMS = 32_000  # the wire protocol allows 32,767 parameters per statement
CACHED_ROWS = 16  # statement texts kept for up to this many rows
_SIZE = re.compile(r"\(\d+(?:,\s*\d+)?\)")


def _json_default(value: Any) -> Any:
    # The driver hands back ids as its own UUID subclass, which orjson does not take as a
    # UUID; they are written as every other id is.
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def json_dumps(value: Any) -> str:
    return orjson.dumps(value, default=_json_default).decode()


def _identity(value: Any) -> Any:
    return value


# Rows of one batch repeat the same program, member, entry and instant many times over, so
# the converted values are memoised.
@lru_cache(maxsize=65_536)
def _sqlite_uuid(value: UUID | None) -> str | None:
    return None if value is None else value.hex


@lru_cache(maxsize=65_536)
def _sqlite_timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    # The layout SQLAlchemy's SQLite DATETIME uses, always with six fraction digits.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _pg_timestamp(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _json(value: Any) -> str | None:
    return None if value is None else json_dumps(value)


def _converter(column_type: Any, sqlite: bool) -> Converter:
    if isinstance(column_type, Timestamp):
        return _sqlite_timestamp if sqlite else _pg_timestamp
    if isinstance(column_type, Uuid):
        return _sqlite_uuid if sqlite else _identity
    if isinstance(column_type, JSON):
        return _json
    if isinstance(column_type, Date) and sqlite:
        return _sqlite_date
    return _identity


@cache
def _plan(table: Table, columns: tuple[str, ...], sqlite: bool) -> tuple[str, list[Converter]]:
    names = ", ".join(columns)
    if sqlite:
        placeholders = ", ".join("?" for _ in columns)
    else:
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    statement = f"INSERT INTO {table.name} ({names}) VALUES ({placeholders})"
    return statement, [_converter(table.c[name].type, sqlite) for name in columns]


def _records(
    rows: Sequence[dict[str, Any]], columns: tuple[str, ...], converters: list[Converter]
) -> list[tuple[Any, ...]]:
    get = itemgetter(*columns)
    single = len(columns) == 1
    to_convert = [(i, f) for i, f in enumerate(converters) if f is not _identity]
    records: list[tuple[Any, ...]] = []
    for row in rows:
        values = [get(row)] if single else list(get(row))
        for index, convert in to_convert:
            values[index] = convert(values[index])
        records.append(tuple(values))
    return records


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in one driver call."""
    if not rows:
        return
    columns = tuple(rows[0])
    sqlite = conn.dialect.name == "sqlite"
    statement, converters = _plan(table, columns, sqlite)
    records = _records(rows, columns, converters)
    if sqlite:
        await conn.exec_driver_sql(statement, records)
        return
    driver = await pg_driver(conn)
    try:
        if len(records) >= COPY_THRESHOLD:
            await driver.copy_records_to_table(table.name, records=records, columns=list(columns))
        else:
            await driver.executemany(statement, records)
    except DRIVER_ERRORS as exc:
        raise await driver_error(conn, exc, statement) from exc


# --- several tables in one round trip ---------------------------------------------------------

SINGLE_STATEMENT_ROWS = 64  # above this, COPY per table is cheaper than one big statement


@dataclass(frozen=True)
class _Update:
    table: Table
    keys: tuple[str, ...]
    rows: list[dict[str, Any]]


@dataclass
class WriteBatch:
    """Inserts and updates of one transaction, written together.

    On PostgreSQL a small batch (one purchase at a till) goes out as a single statement of
    writable CTEs, one round trip instead of one per table; large batches use COPY. Rows in
    one batch must not depend on each other's updates: an update never sees a row inserted
    by the same batch.
    """

    inserts: list[tuple[Table, list[dict[str, Any]]]] = field(default_factory=list)
    updates: list[_Update] = field(default_factory=list)

    def insert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.inserts.append((table, list(rows)))

    def update(self, table: Table, keys: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> None:
        """Update ``rows`` (dicts of key and new values) matched on the ``keys`` columns;
        with two rows for one key the last one wins, as it would row by row (an
        ``UPDATE … FROM`` would apply either)."""
        if rows:
            last = {tuple(row[k] for k in keys): row for row in rows}
            self.updates.append(_Update(table, keys, list(last.values())))

    def _size(self) -> int:
        return sum(len(r) for _, r in self.inserts) + sum(len(u.rows) for u in self.updates)

    async def write(self, conn: AsyncConnection) -> None:
        if conn.dialect.name == "postgresql" and 0 < self._size() <= SINGLE_STATEMENT_ROWS:
            await self._write_in_one_statement(conn)
            return
        for table, rows in self.inserts:
            await insert_rows(conn, table, rows)
        for change in self.updates:
            await _update_rows(conn, change)

    async def _write_in_one_statement(self, conn: AsyncConnection) -> None:
        parts: list[str] = []
        params: list[Any] = []
        for table, rows in self.inserts:
            parts.append(_insert_sql(table, rows, params))
        for change in self.updates:
            parts.append(_update_sql(change, params))
        ctes = ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(parts))
        statement = f"WITH {ctes} SELECT 1"
        driver = await pg_driver(conn)
        try:
            await driver.execute(statement, *params)
        except DRIVER_ERRORS as exc:
            raise await driver_error(conn, exc, statement) from exc


_PG_DIALECT = cast(Any, postgresql.dialect)()


@cache
def _pg_type(table: Table, column: str) -> str:
    """The column's type without a size: a cast to ``VARCHAR(32)`` would cut a longer
    value silently, where the column itself refuses it."""
    return _SIZE.sub("", str(table.c[column].type.compile(dialect=_PG_DIALECT)))


def _values_sql(table: Table, columns: tuple[str, ...], first: int, count: int) -> str:
    """``($first::type, …), (…)`` for ``count`` rows. The same few small shapes recur on
    every purchase, so their text is kept; the text of large batches is not."""
    if count <= CACHED_ROWS:
        return _cached_values_sql(table, columns, first, count)
    return _build_values_sql(table, columns, first, count)


@lru_cache(maxsize=4096)
def _cached_values_sql(table: Table, columns: tuple[str, ...], first: int, count: int) -> str:
    return _build_values_sql(table, columns, first, count)


def _build_values_sql(table: Table, columns: tuple[str, ...], first: int, count: int) -> str:
    types = [_pg_type(table, name) for name in columns]
    rows = []
    for row in range(count):
        start = first + row * len(columns)
        rows.append("(" + ", ".join(f"${start + i}::{t}" for i, t in enumerate(types)) + ")")
    return ", ".join(rows)


def _values(
    table: Table, rows: list[dict[str, Any]], params: list[Any]
) -> tuple[tuple[str, ...], str]:
    """The columns of ``rows`` and their VALUES list; their values are appended to ``params``."""
    columns = tuple(rows[0])
    _, converters = _plan(table, columns, False)
    records = _records(rows, columns, converters)
    text = _values_sql(table, columns, len(params) + 1, len(records))
    for record in records:
        params.extend(record)
    return columns, text


def _insert_sql(table: Table, rows: list[dict[str, Any]], params: list[Any]) -> str:
    columns, values = _values(table, rows, params)
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values}"


def _update_sql(change: _Update, params: list[Any]) -> str:
    columns, values = _values(change.table, change.rows, params)
    name = change.table.name
    assignments = ", ".join(f"{c} = v.{c}" for c in columns if c not in change.keys)
    matches = " AND ".join(f"{name}.{k} = v.{k}" for k in change.keys)
    return (
        f"UPDATE {name} SET {assignments} FROM (VALUES {values}) "
        f"AS v({', '.join(columns)}) WHERE {matches}"
    )


async def _update_rows(conn: AsyncConnection, change: _Update) -> None:
    if conn.dialect.name == "postgresql":
        await _update_rows_pg(conn, change)
        return
    table = change.table
    columns = tuple(change.rows[0])
    statement = (
        update(table)
        .where(and_(*(table.c[k] == bindparam(f"key_{k}") for k in change.keys)))
        .values({c: bindparam(f"new_{c}") for c in columns if c not in change.keys})
    )
    await conn.execute(
        statement,
        [
            {(f"key_{c}" if c in change.keys else f"new_{c}"): v for c, v in row.items()}
            for row in change.rows
        ],
    )


async def _update_rows_pg(conn: AsyncConnection, change: _Update) -> None:
    """One ``UPDATE … FROM (VALUES …)`` per slice of rows that fits PostgreSQL's limit on
    parameters: per-row statements cost the driver and the server a round of work each."""
    rows = change.rows  # one per key (see ``WriteBatch.update``)
    per_row = len(rows[0])
    step = max(1, MAX_PG_PARAMS // per_row)
    driver = await pg_driver(conn)
    for start in range(0, len(rows), step):
        params: list[Any] = []
        part = _Update(change.table, change.keys, rows[start : start + step])
        statement = _update_sql(part, params)
        try:
            await driver.execute(statement, *params)
        except DRIVER_ERRORS as exc:
            raise await driver_error(conn, exc, statement) from exc
