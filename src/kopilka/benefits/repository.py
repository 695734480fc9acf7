"""Every query of members' benefits (``member_benefits``): a member's page by status, the
benefits waiting for a till, grants by their key, and marking benefits used."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.benefits.domain import Status, Waiting, origin, status_at
from kopilka.kit.clock import as_utc
from kopilka.kit.sql import one_of
from kopilka.models import MemberBenefit
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork

benefits_t = table(MemberBenefit)


@dataclass(frozen=True)
class BenefitRecord:
    """A stored benefit, its status worked out at the moment it was read."""

    id: UUID
    member_id: UUID
    kind: str
    title: str | None
    payload: dict[str, Any]
    source: str
    source_key: str
    rule_id: str
    cause_type: str
    cause_id: str
    grant_key: str | None
    issued_at: datetime
    expires_at: datetime | None
    status: Status
    used_at: datetime | None
    used_by: str | None


def _record(row: Any, now: datetime) -> BenefitRecord:
    expires = as_utc(row.expires_at) if row.expires_at is not None else None
    source, key = origin(row.rule_id, row.grant_key)
    return BenefitRecord(
        id=row.id,
        member_id=row.member_id,
        kind=row.kind,
        title=row.title,
        payload=dict(row.payload or {}),
        source=source,
        source_key=key,
        rule_id=row.rule_id,
        cause_type=row.source_type,
        cause_id=row.source_id,
        grant_key=row.grant_key,
        issued_at=as_utc(row.issued_at),
        expires_at=expires,
        status=status_at(row.status, expires, now),
        used_at=as_utc(row.used_at) if row.used_at is not None else None,
        used_by=row.used_by,
    )


def _live(now: datetime) -> Any:
    c = benefits_t.c
    return and_(c.status == "active", or_(c.expires_at.is_(None), c.expires_at > now))


class BenefitRepository:
    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        now: datetime,
        *,
        status: Status | None,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[BenefitRecord]:
        """The member's benefits (of ``status`` at ``now``), newest first, keyset-paginated
        on (issued_at, id)."""
        c = benefits_t.c
        query = select(benefits_t).where(c.program_id == program_id, c.member_id == member_id)
        if status == "active":
            query = query.where(_live(now))
        elif status == "expired":
            query = query.where(c.status == "active", c.expires_at <= now)
        elif status == "used":
            query = query.where(c.status == "used")
        if before is not None:
            query = query.where(tuple_(c.issued_at, c.id) < tuple_(*before))
        query = query.order_by(c.issued_at.desc(), c.id.desc()).limit(limit)
        return [_record(r, now) for r in (await conn.execute(query)).all()]

    async def get(
        self, conn: AsyncConnection, program_id: UUID, benefit_id: UUID, now: datetime
    ) -> BenefitRecord | None:
        c = benefits_t.c
        query = select(benefits_t).where(c.program_id == program_id, c.id == benefit_id)
        row = (await conn.execute(query)).first()
        return _record(row, now) if row is not None else None

    async def by_grant_key(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        grant_key: str,
        now: datetime,
    ) -> BenefitRecord | None:
        c = benefits_t.c
        query = select(benefits_t).where(
            c.program_id == program_id, c.member_id == member_id, c.grant_key == grant_key
        )
        row = (await conn.execute(query)).first()
        return _record(row, now) if row is not None else None

    async def insert(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        """At once, not through the unit of work: the unique grant key decides a race
        between two grants of one key (the loser's transaction is retried and finds the
        winner's row)."""
        await conn.execute(benefits_t.insert().values(**row))

    async def waiting(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_ids: Sequence[UUID],
        kinds: Sequence[str],
        now: datetime,
    ) -> list[tuple[UUID, Waiting]]:
        """(member, benefit) of the members' unused benefits of ``kinds``. Read after the
        members' lock at the till, so a benefit a concurrent purchase used is seen used."""
        c = benefits_t.c
        query = select(
            c.id, c.member_id, c.kind, c.rule_id, c.grant_key, c.payload, c.expires_at, c.issued_at
        ).where(
            c.program_id == program_id,
            one_of(conn, c.member_id, member_ids),
            c.kind.in_(list(kinds)),
            # Not filtered on expiry: a benefit applies if it was live when the purchase
            # happened (``domain.at_till`` and the rules' boost check the purchase's time).
            c.status == "active",
        )
        found = []
        for r in (await conn.execute(query)).all():
            source, key = origin(r.rule_id, r.grant_key)
            expires = as_utc(r.expires_at) if r.expires_at is not None else None
            payload = dict(r.payload or {})
            issued = as_utc(r.issued_at)
            found.append(
                (r.member_id, Waiting(r.id, r.kind, source, key, payload, expires, issued))
            )
        return found

    async def live_of_kind(
        self, conn: AsyncConnection, program_id: UUID, member_id: UUID, kind: str, now: datetime
    ) -> list[BenefitRecord]:
        """The member's live benefits of ``kind``, soonest-ending first."""
        return await self.live_of_kinds(conn, program_id, member_id, [kind], now)

    async def live_of_kinds(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        kinds: Sequence[str],
        now: datetime,
    ) -> list[BenefitRecord]:
        """The member's live benefits of ``kinds``, soonest-ending first (open-ended ones
        last), then oldest first."""
        c = benefits_t.c
        query = (
            select(benefits_t)
            .where(
                c.program_id == program_id,
                c.member_id == member_id,
                c.kind.in_(list(kinds)),
                _live(now),
            )
            .order_by(c.expires_at.is_(None), c.expires_at, c.issued_at, c.id)
        )
        return [_record(r, now) for r in (await conn.execute(query)).all()]

    def stage_used(self, uow: UnitOfWork, changes: Sequence[dict[str, Any]]) -> None:
        """Benefits used by the purchase being recorded (the member is locked)."""
        uow.update(benefits_t, ("id",), changes)

    def stage(self, uow: UnitOfWork, row: dict[str, Any]) -> None:
        uow.insert(benefits_t, [row])

    async def use(
        self, conn: AsyncConnection, benefit_id: UUID, used_at: datetime, used_by: str
    ) -> bool:
        """Mark one benefit used at once, if it is still active: whether this call did."""
        c = benefits_t.c
        result = await conn.execute(
            update(benefits_t)
            .where(c.id == benefit_id, c.status == "active")
            .values(status="used", used_at=used_at, used_by=used_by)
        )
        return bool(result.rowcount)


benefit_repository = BenefitRepository()
