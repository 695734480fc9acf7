"""The audit log: every change a person or a machine makes, and every read of a member's
personal data by staff. Never commits: an entry is written in the transaction of the change
it records, so there is never a change without its entry, nor an entry without its change."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.domain import Actor, AuditEntry, acting, redacted
from kopilka.audit.repository import AuditRepository, audit_repository
from kopilka.kit.ids import new_id

PERSONAL_READ = "personal_data.read"


class AuditService:
    def __init__(self, repository: AuditRepository = audit_repository) -> None:
        self.repository = repository

    async def record(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        action: str,
        *,
        subject_type: str,
        subject_id: object | None,
        now: datetime,
        before: Any = None,
        after: Any = None,
        actor: Actor | None = None,
    ) -> None:
        """One entry by the current actor (``acting``), or ``actor``. Secret fields of
        ``before`` and ``after`` are masked."""
        who = actor or acting.get()
        if who.audited:
            who.recorded.append(True)  # the request needs no generic entry
        await self.repository.insert(
            conn,
            {
                "id": new_id(),
                "program_id": program_id,
                "at": now,
                "actor_kind": str(who.kind),
                "actor_id": who.id,
                "actor_name": who.name[:320],
                "action": action[:120],
                "subject_type": subject_type[:40],
                "subject_id": None if subject_id is None else str(subject_id)[:200],
                "before": redacted(before),
                "after": redacted(after),
            },
        )

    @staticmethod
    def nothing_changed() -> None:
        """This request changed nothing (a retry, a dry run): no entry for it."""
        who = acting.get()
        if who.audited:
            who.recorded.append(False)

    async def erase_subject(
        self, conn: AsyncConnection, program_id: UUID, subject_type: str, subject_id: object
    ) -> int:
        """A person's data erased: the entries about them keep who did what and when, but
        no longer what their data was (the log is otherwise never changed)."""
        return await self.repository.blank_subject(conn, program_id, subject_type, str(subject_id))

    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None = None,
        action: str | None = None,
        actor_id: UUID | None = None,
        subject_type: str | None = None,
        subject_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditEntry]:
        rows = await self.repository.page(
            conn,
            program_id,
            limit=limit,
            before=before,
            action=action,
            actor_id=actor_id,
            subject_type=subject_type,
            subject_id=subject_id,
            since=since,
            until=until,
        )
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                actor_kind=r.actor_kind,
                actor_id=r.actor_id,
                actor_name=r.actor_name,
                action=r.action,
                subject_type=r.subject_type,
                subject_id=r.subject_id,
                before=r.before,
                after=r.after,
            )
            for r in rows
        ]


audit_service = AuditService()
