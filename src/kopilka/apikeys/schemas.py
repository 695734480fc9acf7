"""API shapes of API keys: what may be shown of a key (never its secret or its hash)."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field


class ApiKeyOut(BaseModel):
    id: UUID
    name: str
    prefix: str = Field(description="The first characters of the secret, to recognise it.")
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = Field(description="None while the key works.")


class ApiKeyPage(BaseModel):
    items: list[ApiKeyOut]
    next_cursor: str | None = None
