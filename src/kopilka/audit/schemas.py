"""API shapes of the audit log."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    id: UUID
    at: datetime
    actor_kind: str
    actor_id: UUID | None
    actor_name: str
    action: str
    subject_type: str
    subject_id: str | None
    before: Any
    after: Any


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None
