"""HTTP route of the audit log (read only: nothing changes or removes an entry)."""

from dataclasses import asdict
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.audit.schemas import AuditEntryOut, AuditPage
from kopilka.audit.service import audit_service
from kopilka.http import EngineDep, read_only, requires
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.kit.types import Instant
from kopilka.programs.service import ProgramContext

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
async def audit_log(
    principal: Annotated[Principal, requires(P.AUDIT_READ)],
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
    action: Annotated[
        str | None,
        Query(max_length=120, description="An action, or a prefix ending in `.` (`staff.`)."),
    ] = None,
    actor_id: UUID | None = None,
    subject_type: Annotated[str | None, Query(max_length=40)] = None,
    subject_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> AuditPage:
    """Who changed what and when, newest first: staff and administrators' keys, the command
    line and the system's jobs; and which staff read whose personal data."""
    before: tuple[datetime, UUID] | None = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> AuditPage:
        entries = await audit_service.page(
            conn,
            program.id,
            limit=limit,
            before=before,
            action=action,
            actor_id=actor_id,
            subject_type=subject_type,
            subject_id=subject_id,
            since=since,
            until=until,
        )
        last = entries[-1] if len(entries) == limit else None
        return AuditPage(
            items=[AuditEntryOut.model_validate(asdict(e)) for e in entries],
            next_cursor=encode_cursor(last.at, last.id) if last else None,
        )

    return await read_only(engine, principal, work)
