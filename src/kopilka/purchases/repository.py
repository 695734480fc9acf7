"""Every query of purchases, returns and their lines."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.idempotency.service import StoredAnswer
from kopilka.kit.bulk import insert_rows
from kopilka.kit.clock import as_utc
from kopilka.kit.sql import is_postgres, one_of, pg_fetch, pg_fetch_keyed
from kopilka.ledger.domain import Balance
from kopilka.models import Purchase, PurchaseLine, PurchaseReturn
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork
from kopilka.rules.context import BasketLine
from kopilka.tiers.domain import TierWindow

purchases_t = table(Purchase)
lines_t = table(PurchaseLine)
returns_t = table(PurchaseReturn)
REPLAY_CHUNK = 5_000


# A till's single purchase on PostgreSQL, in one round trip: the member by identifier,
# locked (the member lock: see ``MemberService.lock``), their balance rows and the stored
# answer of a purchase with this external id. The balance rows are locked too, although
# every writer of a balance holds the member lock: rows locked by the statement are read
# again at their newest version after a lock wait, where the others would be read as they
# were when the statement started. The answer is read with that older snapshot: a retry
# racing its own first attempt may miss it, insert, and hit the unique key; the
# transaction is then run again and finds it. A member without balance rows is not found
# here (the general path opens them).
LOCK_MEMBER_WITH_ANSWER_PG = (
    "SELECT m.id, m.status, b.currency, b.available, b.pending, b.held,"
    " p.request_hash, p.answer"
    " FROM member_identifiers i JOIN members m ON m.id = i.member_id"
    " JOIN member_balances b ON b.member_id = m.id"
    " LEFT JOIN purchases p ON p.program_id = $1 AND p.external_id = $4"
    " WHERE i.program_id = $1 AND i.kind = $2 AND i.value = $3"
    " ORDER BY b.currency FOR NO KEY UPDATE OF m, b"
)


# The same read for a program with tiers, with the member's tier and tier window, read
# after the locks (migration 0010_till_member_read): $5–$7 the window's start, its end
# and the points currency.
TILL_MEMBER_PG = "SELECT * FROM kopilka_till_member($1, $2, $3, $4, $5, $6, $7)"
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LockedMember:
    """A member found by identifier and locked, their balances by currency, and the stored
    answer of the purchase being recorded if it was recorded before; with a tier window
    asked for, the record holding their tier and window (for the tiers' service)."""

    member_id: UUID
    status: str
    balances: dict[str, Balance]
    request_hash: str | None
    answer: dict[str, Any] | None
    tier_record: Any = None


FIND_ANSWERS_PG = (
    "SELECT external_id, request_hash, answer FROM purchases"
    " WHERE program_id = $1 AND external_id {keys}"
)


@dataclass(frozen=True)
class StoredPurchase:
    """A recorded purchase as a replay reads it back."""

    id: UUID
    member_id: UUID | None  # None: a purchase without a member (see ``stored_purchase``)
    occurred_at: datetime
    total: int
    store: str | None
    channel: str
    context: dict[str, Any] | None
    lines: list[BasketLine]
    # What coupons and points took off each line (None: paid in money only).
    reductions: list[int] | None = None


def _stored(row: Any, lines: dict[UUID, Any]) -> StoredPurchase:
    """A purchase row with its basket (``lines`` by purchase id), as a replay reads it."""
    return StoredPurchase(
        id=row.id,
        member_id=row.member_id,
        occurred_at=as_utc(row.occurred_at),
        total=int(row.total),
        store=row.store,
        channel=row.channel,
        context=row.context,
        lines=lines.get(row.id, []),
        reductions=(row.payments or {}).get("reductions"),
    )


class PurchaseRepository:
    async def purchase_answers(
        self, conn: AsyncConnection, program_id: UUID, external_ids: Sequence[str]
    ) -> dict[str, StoredAnswer]:
        """The stored answer of each purchase already recorded under these external ids."""
        if not external_ids:
            return {}
        if is_postgres(conn):
            rows = await pg_fetch_keyed(
                conn, FIND_ANSWERS_PG, "varchar", program_id, keys=external_ids
            )
        else:
            query = select(
                purchases_t.c.external_id, purchases_t.c.request_hash, purchases_t.c.answer
            ).where(
                purchases_t.c.program_id == program_id,
                one_of(conn, purchases_t.c.external_id, set(external_ids)),
            )
            rows = list((await conn.execute(query)).all())
        return {r[0]: StoredAnswer(r[1], 201, r[2]) for r in rows}

    async def lock_member_with_answer(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        kind: str,
        value: str,
        external_id: str,
        window: TierWindow | None = None,
    ) -> LockedMember | None:
        """PostgreSQL only: see ``LOCK_MEMBER_WITH_ANSWER_PG`` (and ``TILL_MEMBER_PG`` with
        a ``window``). None: no such member, or one without a balance row yet."""
        if window is None:
            rows = await pg_fetch(
                conn, LOCK_MEMBER_WITH_ANSWER_PG, program_id, kind, value, external_id
            )
        else:
            rows = await pg_fetch(
                conn,
                TILL_MEMBER_PG,
                program_id,
                kind,
                value,
                external_id,
                window.start or EARLIEST,
                window.end,
                window.points_currency,
            )
        if not rows:
            return None
        first = rows[0]
        return LockedMember(
            member_id=first["id"],
            status=first["status"],
            balances={
                r["currency"]: Balance(r["available"], r["pending"], r["held"]) for r in rows
            },
            request_hash=first["request_hash"],
            answer=first["answer"],
            tier_record=first if window is not None else None,
        )

    def stage_purchase(
        self, uow: UnitOfWork, purchase: dict[str, Any], lines: list[dict[str, Any]]
    ) -> None:
        uow.insert(purchases_t, [purchase])
        uow.insert(lines_t, lines)

    async def purchase_by_external_id(
        self, conn: AsyncConnection, program_id: UUID, external_id: str
    ) -> Any:
        query = select(purchases_t).where(
            purchases_t.c.program_id == program_id, purchases_t.c.external_id == external_id
        )
        return (await conn.execute(query)).one_or_none()

    async def lock_purchase(self, conn: AsyncConnection, purchase_id: UUID) -> Any:
        """The purchase's row, locked (``FOR UPDATE``) and read at its newest version: a
        purchase without a member has no member lock to order its claim and its returns.
        SQLite's single writer needs no row lock."""
        query = select(purchases_t).where(purchases_t.c.id == purchase_id)
        if is_postgres(conn):
            query = query.with_for_update()
        return (await conn.execute(query)).one()

    async def purchase_lines(self, conn: AsyncConnection, purchase_id: UUID) -> list[Any]:
        query = (
            select(lines_t).where(lines_t.c.purchase_id == purchase_id).order_by(lines_t.c.line_no)
        )
        return list((await conn.execute(query)).all())

    async def record_return(
        self,
        conn: AsyncConnection,
        purchase_id: UUID,
        values: dict[str, Any],
        line_returns: dict[int, int],
        row: dict[str, Any],
    ) -> None:
        await conn.execute(
            update(purchases_t).where(purchases_t.c.id == purchase_id).values(**values)
        )
        if line_returns:
            await conn.execute(
                update(lines_t)
                .where(lines_t.c.id == bindparam("line_id"))
                .values(returned_quantity=bindparam("new_returned")),
                [{"line_id": k, "new_returned": v} for k, v in line_returns.items()],
            )
        await insert_rows(conn, returns_t, [row])

    # --- claims --------------------------------------------------------------------------

    async def stored_purchase(self, conn: AsyncConnection, row: Any) -> StoredPurchase:
        """A purchase row with its basket, as a replay reads it back."""
        lines = await self._basket_lines(conn, [row.id])
        return _stored(row, lines)

    async def last_return_id(self, conn: AsyncConnection, purchase_id: UUID) -> UUID | None:
        query = (
            select(returns_t.c.id)
            .where(returns_t.c.purchase_id == purchase_id)
            .order_by(returns_t.c.occurred_at.desc(), returns_t.c.id.desc())
            .limit(1)
        )
        found: UUID | None = (await conn.execute(query)).scalar_one_or_none()
        return found

    async def record_claim(
        self,
        conn: AsyncConnection,
        purchase_id: UUID,
        member_id: UUID,
        values: dict[str, Any],
    ) -> bool:
        """Give a purchase without a member (and its lines and returns) to ``member_id``,
        with ``values`` (what it earned, when it was claimed). False if it has a member
        already: the condition repeats what the caller checked under the row's lock."""
        result = await conn.execute(
            update(purchases_t)
            .where(purchases_t.c.id == purchase_id, purchases_t.c.member_id.is_(None))
            .values(member_id=member_id, **values)
        )
        if result.rowcount != 1:
            return False
        for child in (lines_t, returns_t):
            await conn.execute(
                update(child)
                .where(child.c.purchase_id == purchase_id, child.c.member_id.is_(None))
                .values(member_id=member_id)
            )
        return True

    async def set_answer(
        self, conn: AsyncConnection, purchase_id: UUID, answer: dict[str, Any]
    ) -> None:
        await conn.execute(
            update(purchases_t).where(purchases_t.c.id == purchase_id).values(answer=answer)
        )

    # --- replays -------------------------------------------------------------------------

    async def history_before(
        self, conn: AsyncConnection, program_id: UUID, since: datetime
    ) -> dict[UUID, tuple[int, int, datetime]]:
        """Per member: purchases before ``since``, their net spend, the last one's time
        (purchases without a member are no one's history)."""
        net = purchases_t.c.total - purchases_t.c.returned_amount
        query = (
            select(
                purchases_t.c.member_id,
                func.count(),
                func.coalesce(func.sum(net), 0),
                func.max(purchases_t.c.occurred_at),
            )
            .where(
                purchases_t.c.program_id == program_id,
                purchases_t.c.occurred_at < since,
                purchases_t.c.member_id.is_not(None),
            )
            .group_by(purchases_t.c.member_id)
        )
        return {
            member_id: (int(count), int(spend), as_utc(last))
            for member_id, count, spend, last in (await conn.execute(query)).all()
        }

    async def stored_purchases(
        self, conn: AsyncConnection, program_id: UUID, since: datetime, until: datetime
    ) -> AsyncIterator[StoredPurchase]:
        """Members' purchases of ``[since, until)`` in time order, with lines, a chunk at a
        time (purchases without a member earned nothing and are not replayed)."""
        after: tuple[datetime, UUID] | None = None
        while True:
            query = (
                select(
                    purchases_t.c.id,
                    purchases_t.c.member_id,
                    purchases_t.c.occurred_at,
                    purchases_t.c.total,
                    purchases_t.c.store,
                    purchases_t.c.channel,
                    purchases_t.c.context,
                    purchases_t.c.payments,
                )
                .where(
                    purchases_t.c.program_id == program_id,
                    purchases_t.c.occurred_at >= since,
                    purchases_t.c.occurred_at < until,
                    purchases_t.c.member_id.is_not(None),
                )
                .order_by(purchases_t.c.occurred_at, purchases_t.c.id)
                .limit(REPLAY_CHUNK)
            )
            if after is not None:
                moment, last_id = after
                query = query.where(
                    or_(
                        purchases_t.c.occurred_at > moment,
                        and_(purchases_t.c.occurred_at == moment, purchases_t.c.id > last_id),
                    )
                )
            rows = (await conn.execute(query)).all()
            if not rows:
                return
            lines = await self._basket_lines(conn, [r.id for r in rows])
            for row in rows:
                yield _stored(row, lines)
            after = (as_utc(rows[-1].occurred_at), rows[-1].id)

    async def _basket_lines(
        self, conn: AsyncConnection, ids: list[UUID]
    ) -> dict[UUID, list[BasketLine]]:
        query = (
            select(
                lines_t.c.purchase_id,
                lines_t.c.sku,
                lines_t.c.category,
                lines_t.c.quantity,
                lines_t.c.amount,
                lines_t.c.brand,
                lines_t.c.tags,
            )
            .where(one_of(conn, lines_t.c.purchase_id, ids))
            .order_by(lines_t.c.purchase_id, lines_t.c.line_no)
        )
        found: dict[UUID, list[BasketLine]] = {}
        for row in (await conn.execute(query)).all():
            found.setdefault(row.purchase_id, []).append(
                BasketLine(
                    row.sku,
                    row.category,
                    row.quantity,
                    row.amount,
                    row.brand,
                    frozenset(row.tags or ()),
                )
            )
        return found


purchase_repository = PurchaseRepository()
