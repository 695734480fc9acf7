"""Every query of the rules' member state: history counters, profile, usage of limited
rules, live boosts, experiment arms; and the rows rules write (benefits, usage, arms)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import as_utc
from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import (
    ExperimentAssignment,
    Member,
    MemberBenefit,
    Program,
    Purchase,
    RuleUsage,
)
from kopilka.models.base import table
from kopilka.models.rule_usage import PROGRAM_WIDE
from kopilka.outbox.unit import UnitOfWork

members_t = table(Member)
programs_t = table(Program)
purchases_t = table(Purchase)
usage_t = table(RuleUsage)
benefits_t = table(MemberBenefit)
assignments_t = table(ExperimentAssignment)


@dataclass(frozen=True)
class ProfileRow:
    member_id: UUID
    joined_at: datetime
    birthday: date | None
    tags: frozenset[str]
    attributes: dict[str, Any]


@dataclass(frozen=True)
class HistoryTotals:
    member_id: UUID
    count: int
    spend: int
    last: datetime | None


@dataclass(frozen=True)
class UsageRow:
    rule_id: str
    subject: str
    period: str
    times: int
    amount: int


@dataclass(frozen=True)
class BenefitRow:
    """A benefit a rule gave a member (``models.MemberBenefit``), as the member sees it."""

    id: UUID
    rule_id: str
    kind: str
    payload: dict[str, Any]
    issued_at: datetime
    expires_at: datetime | None


class EarningRepository:
    async def profiles(self, conn: AsyncConnection, ids: Sequence[UUID]) -> list[ProfileRow]:
        query = select(
            members_t.c.id,
            members_t.c.created_at,
            members_t.c.birthday,
            members_t.c.tags,
            members_t.c.attributes,
        ).where(one_of(conn, members_t.c.id, ids))
        return [
            ProfileRow(
                r.id,
                as_utc(r.created_at),
                r.birthday,
                frozenset(r.tags or ()),
                dict(r.attributes or {}),
            )
            for r in (await conn.execute(query)).all()
        ]

    async def history_totals(
        self, conn: AsyncConnection, ids: Sequence[UUID]
    ) -> list[HistoryTotals]:
        net = purchases_t.c.total - purchases_t.c.returned_amount
        query = (
            select(
                purchases_t.c.member_id,
                func.count(),
                func.coalesce(func.sum(net), 0),
                func.max(purchases_t.c.occurred_at),
            )
            .where(one_of(conn, purchases_t.c.member_id, ids))
            .group_by(purchases_t.c.member_id)
        )
        return [
            HistoryTotals(m, int(c), int(s), as_utc(last) if last is not None else None)
            for m, c, s, last in (await conn.execute(query)).all()
        ]

    async def recent_purchases(
        self, conn: AsyncConnection, ids: Sequence[UUID], since: datetime
    ) -> list[tuple[UUID, datetime, int]]:
        """(member, when, net amount) of purchases after ``since``, oldest first."""
        net = purchases_t.c.total - purchases_t.c.returned_amount
        query = (
            select(purchases_t.c.member_id, purchases_t.c.occurred_at, net)
            .where(one_of(conn, purchases_t.c.member_id, ids), purchases_t.c.occurred_at > since)
            .order_by(purchases_t.c.occurred_at)
        )
        return [(m, as_utc(at), int(amount)) for m, at, amount in (await conn.execute(query)).all()]

    async def member_usage(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        rule_ids: Sequence[str],
        member_ids: Sequence[UUID],
    ) -> list[UsageRow]:
        query = select(usage_t).where(
            usage_t.c.program_id == program_id,
            one_of(conn, usage_t.c.rule_id, rule_ids),
            one_of(conn, usage_t.c.subject, [m.hex for m in member_ids]),
        )
        return [_usage(r) for r in (await conn.execute(query)).all()]

    async def program_usage(
        self, conn: AsyncConnection, program_id: UUID, rule_ids: Sequence[str], *, lock: bool
    ) -> list[UsageRow]:
        """Program-wide counters of these rules. With ``lock`` (PostgreSQL), purchases that
        may move one take turns on the program's row first (after their members' locks,
        always in that order): a counter row that does not exist yet is then created by one
        of them only, and nobody spends what another is spending."""
        if lock and is_postgres(conn):
            await conn.execute(
                select(programs_t.c.id)
                .where(programs_t.c.id == program_id)
                .with_for_update(key_share=True)
            )
        query = select(usage_t).where(
            usage_t.c.program_id == program_id,
            one_of(conn, usage_t.c.rule_id, rule_ids),
            usage_t.c.subject == PROGRAM_WIDE,
        )
        return [_usage(r) for r in (await conn.execute(query)).all()]

    async def active_benefits(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        kinds: Sequence[str],
        now: datetime,
    ) -> list[BenefitRow]:
        """The member's benefits of ``kinds`` still to use: active and not expired, those
        ending soonest first (open-ended ones last), newest first among equals."""
        query = (
            select(benefits_t)
            .where(
                benefits_t.c.program_id == program_id,
                benefits_t.c.member_id == member_id,
                benefits_t.c.status == "active",
                benefits_t.c.kind.in_(list(kinds)),
                or_(benefits_t.c.expires_at.is_(None), benefits_t.c.expires_at > now),
            )
            .order_by(
                benefits_t.c.expires_at.is_(None),
                benefits_t.c.expires_at,
                benefits_t.c.issued_at.desc(),
                benefits_t.c.id,
            )
        )
        return [
            BenefitRow(
                r.id,
                r.rule_id,
                r.kind,
                dict(r.payload or {}),
                as_utc(r.issued_at),
                as_utc(r.expires_at) if r.expires_at is not None else None,
            )
            for r in (await conn.execute(query)).all()
        ]

    async def arms(
        self, conn: AsyncConnection, program_id: UUID, ids: Sequence[UUID]
    ) -> dict[tuple[str, UUID], str]:
        """(experiment, member) → the arm recorded for them."""
        query = select(
            assignments_t.c.experiment, assignments_t.c.member_id, assignments_t.c.arm
        ).where(
            assignments_t.c.program_id == program_id, one_of(conn, assignments_t.c.member_id, ids)
        )
        return {(e, m): arm for e, m, arm in (await conn.execute(query)).all()}

    # --- rows the rules write ---------------------------------------------------------------

    def stage_benefit(self, uow: UnitOfWork, row: dict[str, Any]) -> None:
        uow.insert(benefits_t, [row])

    def stage_benefit_used(self, uow: UnitOfWork, change: dict[str, Any]) -> None:
        uow.update(benefits_t, ("id",), [change])

    def stage_arms(self, uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> None:
        uow.insert(assignments_t, rows)

    def stage_usage(
        self, uow: UnitOfWork, inserts: Sequence[dict[str, Any]], updates: Sequence[dict[str, Any]]
    ) -> None:
        uow.insert(usage_t, inserts)
        uow.update(usage_t, ("program_id", "rule_id", "subject", "period"), updates)


def _usage(row: Any) -> UsageRow:
    return UsageRow(row.rule_id, row.subject, row.period, row.times, row.amount)


earning_repository = EarningRepository()
