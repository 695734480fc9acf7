"""A segment's members as CSV (member id, name): the API's download and the console's are
this one function, a page of members at a time on one snapshot."""

import csv
import io
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.csvcells import safe_cell
from kopilka.programs.service import ProgramContext
from kopilka.segments.service import segment_service

EXPORT_PAGE = 5000
HEADER = ("member_id", "name")


async def members_csv(
    conn: AsyncConnection, program: ProgramContext, key: str, now: datetime
) -> str:
    """Every member of the segment, in id order; names that a spreadsheet would run as a
    formula are written as text."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    after: UUID | None = None
    while True:
        page = await segment_service.members(conn, program, key, after, EXPORT_PAGE, now)
        for item in page.items:
            writer.writerow([str(item.member_id), safe_cell(item.name or "")])
        if page.next_cursor is None:
            return out.getvalue()
        after = page.items[-1].member_id
