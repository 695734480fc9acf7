"""Engine creation and transactions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL mode, a busy timeout, foreign keys on, and every transaction starts with
``BEGIN IMMEDIATE`` so there is exactly one writer and no lock-upgrade deadlocks.
PostgreSQL: row locks taken by the repositories; deadlocks and serialization failures are
retried by :func:`transaction`.
"""

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kopilka.kit.bulk import json_dumps

T = TypeVar("T")

RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
MAX_ATTEMPTS = 8
READ_ONLY = "kopilka_read_only"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for an in-memory database or another backend."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri") or database.startswith("file:"):
        return None  # a URI filename may name a memory database; SQLite resolves it
    return Path(database)


def describe(url: str) -> str:
    """How to name the database to a person: the SQLite file, or the URL without password."""
    parsed = make_url(url)
    if sqlite_file(url) is not None:
        return str(parsed.database)  # as the user wrote it: ./kopilka.db
    return parsed.render_as_string(hide_password=True)


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The Alembic revision the database's schema is at; None if it has none (an empty or
    foreign database). Reads only: it creates no version table."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def make_engine(url: str, *, pool_size: int = 20, echo: bool = False) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": 30}, json_serializer=json_dumps
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        json_serializer=json_dumps,
        # The purchase path's statements are the same every time and their look-ups are by
        # key or by one array parameter: planning them once per connection, not per call,
        # saves PostgreSQL CPU on every purchase.
        connect_args={"server_settings": {"plan_cache_mode": "force_generic_plan"}},
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy so that BEGIN IMMEDIATE below is the only BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers take no write lock, so in WAL mode they never wait for the writer.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _is_retryable(exc: DBAPIError) -> bool:
    # A pooled connection whose server session had ended (a restart, a terminated backend):
    # it is invalidated and the work runs again on a new one. Nothing of it was committed —
    # or, if the commit itself was cut off, the work is idempotent and answers as before.
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is None and orig is not None:
        sqlstate = getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return sqlstate in RETRYABLE_SQLSTATES


async def run_in_transaction(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """Run ``work`` in one transaction and commit; retry on deadlock or serialization failure.

    ``work`` must be safe to run again from the start: it is, because nothing it did survives
    a rollback.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with engine.begin() as conn:
                return await work(conn)
        except DBAPIError as exc:
            if attempt == MAX_ATTEMPTS or not _is_retryable(exc):
                raise
            await asyncio.sleep(random.uniform(0, 0.01 * attempt))
    raise AssertionError("unreachable")


async def read_with_retry(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], *, snapshot: bool = False
) -> T:
    """Run ``work`` on a reading connection; once more on a new one if the first was found
    dead (its server session ended)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with reading(engine, snapshot=snapshot) as conn:
                return await work(conn)
        except DBAPIError as exc:
            if attempt == MAX_ATTEMPTS or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A plain transaction for work that needs no retry (admin edits, CLI commands)."""
    async with engine.begin() as conn:
        yield conn


@asynccontextmanager
async def reading(engine: AsyncEngine, *, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only: on SQLite it does not take the write lock.

    ``snapshot`` makes every statement see the same instant (REPEATABLE READ on PostgreSQL;
    a SQLite read transaction already is one), for checks that compare several queries,
    such as the ledger verifier on a live database.
    """
    async with engine.connect() as conn:
        options: dict[str, Any] = {READ_ONLY: True}
        if snapshot and not is_sqlite(str(engine.url)):
            options["isolation_level"] = "REPEATABLE READ"
        await conn.execution_options(**options)
        async with conn.begin():
            yield conn


class Listener:
    """A connection of its own that receives PostgreSQL notifications on one channel.

    ``lost`` is set when the connection ends (the server restarted, the network failed, a
    ping went unanswered): whoever relies on the notifications must stop doing so then.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.lost = asyncio.Event()
        connection.add_termination_listener(lambda _conn: self.lost.set())

    async def ping(self, *, within: float) -> bool:
        """Whether the server still answers on this connection; a silent one is closed."""
        try:
            await self._connection.execute("SELECT 1", timeout=within)
            return True
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self.lost.set()
            await self.close()
            return False

    async def close(self) -> None:
        self.lost.set()
        if not self._connection.is_closed():
            self._connection.terminate()


async def listen(engine: AsyncEngine, channel: str, on_notice: Callable[[str], None]) -> Listener:
    """Open a connection to ``engine``'s PostgreSQL database, with the engine's own connect
    arguments, and call ``on_notice(payload)`` for every notification on ``channel``; once
    this returns, the LISTEN is in force."""
    _, options = engine.dialect.create_connect_args(engine.url)
    options.pop("async_creator_fn", None)
    options.pop("prepared_statement_cache_size", None)
    options.pop("prepared_statement_name_func", None)
    connection = await asyncpg.connect(**options)
    listener = Listener(connection)
    try:
        await connection.add_listener(
            channel, lambda _conn, _pid, _channel, payload: on_notice(payload)
        )
    except BaseException:
        await listener.close()
        raise
    return listener
