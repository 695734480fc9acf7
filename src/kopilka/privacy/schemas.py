"""API shapes of members' privacy requests."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1,
        max_length=500,
        description="Why (the member's request, its reference): kept in the audit log.",
    )


class ErasureOut(BaseModel):
    member_id: UUID
    already_erased: bool
    messages_blanked: int
    support_rows_blanked: int
