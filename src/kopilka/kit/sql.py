"""Small query-building helpers shared by the repositories."""

from collections.abc import Collection
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, bindparam, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection


def one_of(conn: AsyncConnection, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values`` that stays one parameter on PostgreSQL.

    An IN list of thousands of parameters is a different prepared statement for every length
    and, once PostgreSQL settles on a generic plan for it, can turn an index look-up into a
    scan of the whole table; ``= ANY($1)`` keeps one statement and the index. A single value
    is a plain equality, which every plan serves from the index (see ``pg_fetch_keyed``).
    """
    if len(values) == 1:
        return column == next(iter(values))  # type: ignore[no-any-return]
    if conn.dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=ARRAY(column.type))
        return column == func.any(array)  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def pg_driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, inside ``conn``'s transaction.

    SQLAlchemy sends BEGIN lazily, with its first statement. A statement sent straight to
    the driver before that would run in autocommit: a ``FOR UPDATE`` lock would be released
    at once and a write committed on its own. So the transaction is started here exactly as
    SQLAlchemy would start it (tests check both the lock and the rollback).
    """
    raw = await conn.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if conn.in_transaction() and getattr(adapted, "_transaction", False) is None:
        try:
            await adapted._start_transaction()
        except Exception as exc:  # whatever the adapter raised: the connection is unusable
            raise await driver_error(conn, exc, "BEGIN", broken=True) from exc
    return raw.driver_connection


# What a statement sent straight to the driver may raise: the server's errors, and the
# driver's own when the connection is gone or left mid-operation.
DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
# Server errors that end the session: a terminated backend, a server shutting down or
# crashing, a broken connection (class 08). A cancelled query (57014) is not one of them.
_SESSION_ENDED = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def as_sqlalchemy_error(exc: Exception, statement: str) -> DBAPIError:
    """A driver error as SQLAlchemy would have raised it, so callers retry conflicts,
    deadlocks and serialization failures the same way whichever path ran the statement."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(statement, None, exc)
    return DBAPIError(statement, None, exc)


async def driver_error(
    conn: AsyncConnection, exc: Exception, statement: str, *, broken: bool = False
) -> DBAPIError:
    """The SQLAlchemy error for a driver error on ``conn``. When the connection is gone (the
    backend was terminated, the server restarted, the socket broke) or left mid-operation,
    it is invalidated, so the pool opens a new one instead of lending this one again, and the
    error says so (``connection_invalidated``): the transaction may run again on a new one."""
    ended = isinstance(exc, _SESSION_ENDED) or not isinstance(exc, asyncpg.PostgresError)
    if not broken and not ended:
        return as_sqlalchemy_error(exc, statement)
    await conn.invalidate()
    return DBAPIError(statement, None, exc, connection_invalidated=True)


async def pg_fetch(conn: AsyncConnection, statement: str, *args: Any) -> list[Any]:
    """Run a hand-written query on the asyncpg connection under ``conn``'s transaction.

    For the few reads on the purchase path only: building, caching and executing a Core
    statement costs several times what the query itself costs the database.
    """
    driver = await pg_driver(conn)
    try:
        return list(await driver.fetch(statement, *args))
    except DRIVER_ERRORS as exc:
        raise await driver_error(conn, exc, statement) from exc


async def pg_fetch_keyed(
    conn: AsyncConnection, template: str, key_type: str, *args: Any, keys: Collection[Any]
) -> list[Any]:
    """``pg_fetch`` of a look-up by one or more keys, the key match at ``{keys}`` in
    ``template`` and the keys as its last parameter.

    Connections keep one generic plan per statement, made with the statistics of the moment.
    Made while a table was still small, the plan for ``key = ANY($n)`` can match only the
    index's leading columns and filter the rest, reading every row of a program on each call
    (seen: 7,000 rows read per purchase look-up). ``key = $n`` has no such plan, so the common
    case of one key uses it; several keys run under ``plan_for_batch``.
    """
    distinct = list(dict.fromkeys(keys))
    position = len(args) + 1
    if len(distinct) == 1:
        return await pg_fetch(conn, template.format(keys=f"= ${position}"), *args, distinct[0])
    match = f"= ANY(${position}::{key_type}[])"
    return await pg_fetch(conn, template.format(keys=match), *args, distinct)


BATCH_PLANNING_THRESHOLD = 2


async def plan_for_batch(conn: AsyncConnection, size: int) -> None:
    """Let PostgreSQL plan each statement of a batch for its actual arguments.

    Connections plan their statements once (generic plans) because the single-purchase path
    repeats the same small look-ups; a batch passes arrays of keys, often into tables whose
    statistics are still empty, where a generic plan can mean a scan per batch.
    """
    if size >= BATCH_PLANNING_THRESHOLD and is_postgres(conn):
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
