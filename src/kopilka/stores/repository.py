"""Every query of stores."""

from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    cast,
    column,
    exists,
    false,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import Store
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork
from kopilka.stores.geo import Box

stores_t = table(Store)
# What the nearest search reads of each store in a box: enough to measure it (and, for
# ``open_only``, to tell whether it is open), not the whole row.
NEAR_COLUMNS = (stores_t.c.code, stores_t.c.latitude, stores_t.c.longitude)
HOURS_COLUMNS = (stores_t.c.timezone, stores_t.c.hours, stores_t.c.special_hours, stores_t.c.status)


def _has_tag(conn: AsyncConnection, tag: str) -> ColumnElement[bool]:
    if is_postgres(conn):
        # JSONB containment: the list holds this tag.
        return stores_t.c.tags.op("@>")(cast([tag], JSONB))
    each = func.json_each(stores_t.c.tags).table_valued("value")
    return exists(select(1).select_from(each).where(column("value") == tag))


# Stores by place: by region (stores without one last), then name, then code.
_PLACE_ORDER = (
    stores_t.c.region.is_(None),
    func.coalesce(stores_t.c.region, ""),
    stores_t.c.name,
    stores_t.c.code,
)


def _among(conn: AsyncConnection, codes: frozenset[str]) -> ColumnElement[bool]:
    """Stores with one of these codes (a caller limited to some stores sees only those)."""
    return one_of(conn, stores_t.c.code, codes) if codes else false()


class StoreRepository:
    def stage_new(self, uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
        uow.insert(stores_t, rows)

    def stage_changes(self, uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
        """Changed stores, each row every column but ``program_id``, ``code`` and
        ``created_at`` (one statement for all of them)."""
        uow.update(stores_t, ("id",), rows)

    async def get(self, conn: AsyncConnection, program_id: UUID, code: str) -> Any:
        query = select(stores_t).where(stores_t.c.program_id == program_id, stores_t.c.code == code)
        return (await conn.execute(query)).one_or_none()

    async def by_codes(
        self, conn: AsyncConnection, program_id: UUID, codes: Collection[str]
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        ordered = sorted(set(codes))
        # In slices: SQLite takes at most 32,766 parameters a statement.
        for start in range(0, len(ordered), 5000):
            chunk = ordered[start : start + 5000]
            query = self._with_codes(conn, select(stores_t), program_id, chunk)
            found.update({r.code: r for r in (await conn.execute(query)).all()})
        return found

    def _with_codes(
        self, conn: AsyncConnection, query: Select[Any], program_id: UUID, codes: Collection[str]
    ) -> Select[Any]:
        """``query`` narrowed to the program's stores with these codes. On PostgreSQL the
        codes are a join with ``unnest`` of one array parameter: one index probe per code
        whatever the table's statistics (a generic plan of ``code = ANY(…)`` made while
        the table was still empty filters every store of the program against the whole
        array: seconds for an import of thousands)."""
        ordered = sorted(set(codes))
        query = query.where(stores_t.c.program_id == program_id)
        if is_postgres(conn):
            array = bindparam("codes", ordered, type_=ARRAY(String()))
            wanted = func.unnest(array).table_valued("code").render_derived(name="wanted")
            return query.join(wanted, stores_t.c.code == wanted.c.code)
        return query.where(stores_t.c.code.in_(ordered))

    async def by_ids(self, conn: AsyncConnection, ids: Collection[UUID]) -> list[Any]:
        if not ids:
            return []
        query = select(stores_t).where(one_of(conn, stores_t.c.id, set(ids)))
        return list((await conn.execute(query)).all())

    async def codes(self, conn: AsyncConnection, program_id: UUID) -> set[str]:
        query = select(stores_t.c.code).where(stores_t.c.program_id == program_id)
        return set((await conn.execute(query)).scalars().all())

    async def known_codes(
        self, conn: AsyncConnection, program_id: UUID, codes: Collection[str]
    ) -> set[str]:
        """Those of ``codes`` that are stores of the program (index probes by the unique
        key)."""
        query = self._with_codes(conn, select(stores_t.c.code), program_id, codes)
        return set((await conn.execute(query)).scalars().all())

    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        limit: int,
        after: str | None,
        region: str | None,
        tag: str | None,
        status: str | None,
        only: frozenset[str] | None,
    ) -> list[Any]:
        """Stores in code order, after the code ``after``."""
        query = select(stores_t).where(stores_t.c.program_id == program_id)
        if after is not None:
            query = query.where(stores_t.c.code > after)
        if region is not None:
            query = query.where(stores_t.c.region == region)
        if status is not None:
            query = query.where(stores_t.c.status == status)
        if tag is not None:
            query = query.where(_has_tag(conn, tag))
        if only is not None:
            query = query.where(_among(conn, only))
        query = query.order_by(stores_t.c.code).limit(limit)
        return list((await conn.execute(query)).all())

    async def in_boxes(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        boxes: Sequence[Box],
        *,
        tag: str | None,
        open_only: bool,
        only: frozenset[str] | None,
        trading_only: bool = False,
    ) -> list[Any]:
        """Stores with coordinates in any of ``boxes`` (a range of ``ix_stores_location``
        per box): their code and coordinates; with ``open_only``, open stores only, with their
        time zone, hours and status; with ``trading_only``, none whose status is closed."""
        within = or_(
            *[
                and_(
                    stores_t.c.latitude.between(b.south, b.north),
                    stores_t.c.longitude.between(b.west, b.east),
                )
                for b in boxes
            ]
        )
        columns = NEAR_COLUMNS + HOURS_COLUMNS if open_only else NEAR_COLUMNS
        query = select(*columns).where(stores_t.c.program_id == program_id, within)
        if open_only or trading_only:
            query = query.where(stores_t.c.status == "open")
        if tag is not None:
            query = query.where(_has_tag(conn, tag))
        if only is not None:
            query = query.where(_among(conn, only))
        return list((await conn.execute(query)).all())

    # --- the members' app: stores by place, and their texts to search --------------------

    async def trading_texts(self, conn: AsyncConnection, program_id: UUID) -> list[Any]:
        """(code, name, address, region) of every trading store, in place order: what a
        search by words looks through (narrow rows; the matching is done by the service)."""
        c = stores_t.c
        query = (
            select(c.code, c.name, c.address, c.region)
            .where(c.program_id == program_id, c.status == "open")
            .order_by(*_PLACE_ORDER)
        )
        return list((await conn.execute(query)).all())

    async def trading_by_place(
        self, conn: AsyncConnection, program_id: UUID, *, limit: int, after: str | None
    ) -> list[Any]:
        """Trading stores in place order (region, stores without one last; then name and
        code), after the store whose code is ``after``."""
        c = stores_t.c
        query = select(stores_t).where(c.program_id == program_id, c.status == "open")
        if after is not None:
            last = await self.get(conn, program_id, after)
            if last is not None:
                key = (last.region is None, last.region or "", last.name, last.code)
                query = query.where(tuple_(*_PLACE_ORDER) > tuple_(*key))
        query = query.order_by(*_PLACE_ORDER).limit(limit)
        return list((await conn.execute(query)).all())


store_repository = StoreRepository()
