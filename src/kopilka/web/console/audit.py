"""Console page: the audit log — who changed what and when, newest first, filtered as
``GET /v1/audit`` is (action or a prefix of actions, actor, subject, days), each entry's
before and after as readable JSON."""

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.audit.domain import AuditEntry
from kopilka.audit.service import audit_service
from kopilka.http import EngineDep, read_only
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.web.console.access import console_page
from kopilka.web.rendering import render

router = APIRouter(prefix="/console", include_in_schema=False)
Auditor = Annotated[Principal, console_page(P.AUDIT_READ)]
PAGE_SIZE = 50


@dataclass(frozen=True)
class Shown:
    """An entry as the page shows it: its before and after as indented JSON."""

    entry: AuditEntry
    before: str | None
    after: str | None


def readable(value: Any) -> str | None:
    """``value`` as indented JSON in its own letters (Cyrillic stays Cyrillic)."""
    if value is None:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _midnight(day: dt.date | None, zone: str) -> dt.datetime | None:
    return dt.datetime.combine(day, dt.time(0), ZoneInfo(zone)) if day else None


@router.get("/audit")
async def audit_log(
    request: Request,
    engine: EngineDep,
    principal: Auditor,
    action: Annotated[str | None, Query(max_length=120)] = None,
    actor_id: UUID | None = None,
    subject_type: Annotated[str | None, Query(max_length=40)] = None,
    subject_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[dt.date | None, Query(alias="from")] = None,
    until: Annotated[dt.date | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The audit log, newest first, a page at a time: by action (``staff.`` for every
    staff action), actor, subject and days (in the program's time zone, both included)."""
    before = decode_cursor(cursor) if cursor else None
    asked = {
        "action": action or "",
        "actor_id": str(actor_id) if actor_id else "",
        "subject_type": subject_type or "",
        "subject_id": subject_id or "",
        "from": since.isoformat() if since else "",
        "to": until.isoformat() if until else "",
    }

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[list[AuditEntry], str]:
        zone = program.settings.timezone
        entries = await audit_service.page(
            conn,
            program.id,
            limit=PAGE_SIZE,
            before=before,
            action=action or None,
            actor_id=actor_id,
            subject_type=subject_type or None,
            subject_id=subject_id or None,
            since=_midnight(since, zone),
            until=_midnight(until + dt.timedelta(days=1), zone) if until else None,
        )
        return entries, zone

    entries, zone = await read_only(engine, principal, work)
    shown = [Shown(e, readable(e.before), readable(e.after)) for e in entries]
    return render(
        request,
        "console/audit/index.html",
        {"entries": shown, "asked": asked, "next_url": _next_url(request, entries)},
        zone=zone,
    )


def _next_url(request: Request, entries: list[AuditEntry]) -> str | None:
    if len(entries) < PAGE_SIZE:
        return None
    last = entries[-1]
    url = request.url.include_query_params(cursor=encode_cursor(last.at, last.id))
    return f"{url.path}?{url.query}"
