"""Multi-row inserts at driver speed.

SQLAlchemy Core spends tens of microseconds per row turning each parameter dict into driver
values; a purchase writes about eight rows, so that overhead alone would cap ingestion at a
few thousand purchases a second. Here each column gets one converter, computed once per
table and dialect, rows become tuples, and they go to the driver in one call: ``COPY`` on
PostgreSQL for large batches, ``executemany`` otherwise. Values are stored exactly as the
SQLAlchemy types would store them, so Core and ORM reads see no difference.
"""

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from sqlalchemy import JSON, Date, Table, Uuid
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.models.base import Timestamp

Converter = Callable[[Any], Any]
COPY_THRESHOLD = 64  # below this, COPY's set-up costs more than it saves


def json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


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
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    try:
        if len(records) >= COPY_THRESHOLD:
            await driver.copy_records_to_table(table.name, records=records, columns=list(columns))
        else:
            await driver.executemany(statement, records)
    except asyncpg.PostgresError as exc:
        # Surface driver errors as SQLAlchemy's, so callers retry conflicts and deadlocks the
        # same way whichever path wrote the rows.
        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            raise IntegrityError(statement, None, exc) from exc
        raise DBAPIError(statement, None, exc) from exc
