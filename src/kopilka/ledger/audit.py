"""``kopilka ledger verify``: every ledger invariant, checked with set-based queries.

Each check returns readable violations; an empty list means the ledger is sound:

1. every journal entry sums to zero per currency;
2. cached balances equal the sum of the member's postings per account;
3. pending lots sum to the pending balance, available lots to max(available, 0);
4. no lot's remaining or expired count is negative, nor do they add up to more than its amount;
5. the held balance equals the open holds, and each hold's allocations equal its amount;
6. pending and held balances are never negative;
7. the transfers account (merges) is at zero.
"""

from collections import defaultdict
from uuid import UUID

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.ledger.domain import MEMBER_ACCOUNTS, Account
from kopilka.models import Lot, MemberBalance, Posting, Redemption, RedemptionAllocation
from kopilka.models.base import table

postings_t = table(Posting)
balances_t = table(MemberBalance)
lots_t = table(Lot)
redemptions_t = table(Redemption)
allocations_t = table(RedemptionAllocation)

Key = tuple[UUID, str]
LIMIT = 20  # violations reported per check; one is enough to fail, twenty to diagnose


async def unbalanced_entries(conn: AsyncConnection, program_id: UUID) -> list[str]:
    query = (
        select(postings_t.c.entry_id, postings_t.c.currency, func.sum(postings_t.c.amount))
        .where(postings_t.c.program_id == program_id)
        .group_by(postings_t.c.entry_id, postings_t.c.currency)
        .having(func.sum(postings_t.c.amount) != 0)
        .limit(LIMIT)
    )
    return [
        f"entry {r[0]} does not sum to zero in {r[1]}: {r[2]}"
        for r in (await conn.execute(query)).all()
    ]


async def _cached(conn: AsyncConnection, program_id: UUID) -> dict[Key, tuple[int, int, int]]:
    rows = (
        await conn.execute(
            select(
                balances_t.c.member_id,
                balances_t.c.currency,
                balances_t.c.available,
                balances_t.c.pending,
                balances_t.c.held,
            ).where(balances_t.c.program_id == program_id)
        )
    ).all()
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


async def _posted(conn: AsyncConnection, program_id: UUID) -> dict[Key, dict[str, int]]:
    rows = (
        await conn.execute(
            select(
                postings_t.c.member_id,
                postings_t.c.currency,
                postings_t.c.account,
                func.sum(postings_t.c.amount),
            )
            .where(
                postings_t.c.program_id == program_id,
                postings_t.c.account.in_([a.value for a in MEMBER_ACCOUNTS]),
            )
            .group_by(postings_t.c.member_id, postings_t.c.currency, postings_t.c.account)
        )
    ).all()
    totals: dict[Key, dict[str, int]] = defaultdict(dict)
    for member_id, currency, account, amount in rows:
        totals[(member_id, currency)][account] = int(amount)
    return totals


async def _lot_sums(conn: AsyncConnection, program_id: UUID) -> dict[Key, dict[str, int]]:
    rows = (
        await conn.execute(
            select(
                lots_t.c.member_id, lots_t.c.currency, lots_t.c.status, func.sum(lots_t.c.remaining)
            )
            .where(lots_t.c.program_id == program_id)
            .group_by(lots_t.c.member_id, lots_t.c.currency, lots_t.c.status)
        )
    ).all()
    sums: dict[Key, dict[str, int]] = defaultdict(dict)
    for member_id, currency, status, remaining in rows:
        sums[(member_id, currency)][status] = int(remaining)
    return sums


async def _held(conn: AsyncConnection, program_id: UUID) -> dict[Key, int]:
    rows = (
        await conn.execute(
            select(
                redemptions_t.c.member_id,
                redemptions_t.c.currency,
                func.sum(redemptions_t.c.amount),
            )
            .where(redemptions_t.c.program_id == program_id, redemptions_t.c.status == "held")
            .group_by(redemptions_t.c.member_id, redemptions_t.c.currency)
        )
    ).all()
    return {(r[0], r[1]): int(r[2]) for r in rows}


async def balance_mismatches(conn: AsyncConnection, program_id: UUID) -> list[str]:
    cached = await _cached(conn, program_id)
    posted = await _posted(conn, program_id)
    lots = await _lot_sums(conn, program_id)
    held = await _held(conn, program_id)
    problems: list[str] = []
    for key in sorted(set(cached) | set(posted), key=str):
        available, pending, held_cached = cached.get(key, (0, 0, 0))
        sums = posted.get(key, {})
        member = f"member {key[0]} {key[1]}"
        for account, value in (
            ("available", available),
            ("pending", pending),
            ("held", held_cached),
        ):
            if sums.get(account, 0) != value:
                problems.append(
                    f"{member}: cached {account} {value} != postings {sums.get(account, 0)}"
                )
        lot_sums = lots.get(key, {})
        if lot_sums.get("pending", 0) != pending:
            problems.append(
                f"{member}: pending {pending} != pending lots {lot_sums.get('pending', 0)}"
            )
        if lot_sums.get("available", 0) != max(available, 0):
            problems.append(
                f"{member}: available {available} != available lots {lot_sums.get('available', 0)}"
            )
        if held.get(key, 0) != held_cached:
            problems.append(f"{member}: held {held_cached} != open holds {held.get(key, 0)}")
        if pending < 0 or held_cached < 0:
            problems.append(f"{member}: negative pending or held balance")
        if len(problems) >= LIMIT:
            break
    return problems


async def bad_lots(conn: AsyncConnection, program_id: UUID) -> list[str]:
    query = (
        select(lots_t.c.id, lots_t.c.remaining, lots_t.c.amount, lots_t.c.expired)
        .where(
            lots_t.c.program_id == program_id,
            (lots_t.c.remaining < 0)
            | (lots_t.c.expired < 0)
            | (lots_t.c.remaining + lots_t.c.expired > lots_t.c.amount),
        )
        .limit(LIMIT)
    )
    return [
        f"lot {r[0]} has remaining {r[1]} outside 0..{r[2] - r[3]}"
        + (f" ({r[3]} of its {r[2]} expired)" if r[3] else "")
        for r in (await conn.execute(query)).all()
    ]


async def bad_holds(conn: AsyncConnection, program_id: UUID) -> list[str]:
    allocated = (
        select(allocations_t.c.redemption_id, func.sum(allocations_t.c.amount).label("total"))
        .group_by(allocations_t.c.redemption_id)
        .subquery()
    )
    query = (
        select(redemptions_t.c.id, redemptions_t.c.amount, allocated.c.total)
        .join(allocated, allocated.c.redemption_id == redemptions_t.c.id, isouter=True)
        .where(
            and_(redemptions_t.c.program_id == program_id, redemptions_t.c.status == "held"),
            func.coalesce(allocated.c.total, 0) != redemptions_t.c.amount,
        )
        .limit(LIMIT)
    )
    return [
        f"hold {r[0]} of {r[1]} has allocations summing to {r[2] or 0}"
        for r in (await conn.execute(query)).all()
    ]


async def transfers_in_flight(conn: AsyncConnection, program_id: UUID) -> list[str]:
    """A merge moves points out of one profile and into another in one transaction: the
    transfers account is back at zero after each, so it is zero in every currency."""
    query = (
        select(postings_t.c.currency, func.sum(postings_t.c.amount))
        .where(postings_t.c.program_id == program_id, postings_t.c.account == Account.TRANSFERS)
        .group_by(postings_t.c.currency)
        .having(func.sum(postings_t.c.amount) != 0)
    )
    return [
        f"the transfers account holds {r[1]} {r[0]}: a merge moved points out but not in"
        for r in (await conn.execute(query)).all()
    ]


CHECKS = {
    "entries sum to zero": unbalanced_entries,
    "merges moved every point they took": transfers_in_flight,
    "balances equal postings and lots": balance_mismatches,
    "lots within bounds": bad_lots,
    "holds fully allocated": bad_holds,
}


async def verify(conn: AsyncConnection, program_id: UUID) -> dict[str, list[str]]:
    """Run every check; the result maps a check's name to its violations."""
    return {name: await check(conn, program_id) for name, check in CHECKS.items()}
