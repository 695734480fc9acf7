"""API shapes of segments."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.segments.domain import KEY_PATTERN, ListMode, SegmentKind

Definition = dict[str, Any]


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    kind: SegmentKind = SegmentKind.DYNAMIC
    definition: Definition | None = Field(
        default=None, description="Predicates combined with all/any/not (dynamic segments)."
    )


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    definition: Definition | None = None


class SegmentOut(BaseModel):
    id: UUID
    key: str
    name: str
    description: str
    kind: SegmentKind
    definition: Definition | None
    status: str
    version: int
    members: int = Field(description="Members in the segment as last kept (refresh, events).")
    refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SegmentList(BaseModel):
    items: list[SegmentOut]
    next_cursor: str | None = None


class Preview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: Definition


class PreviewResult(BaseModel):
    count: int
    sample: list[UUID]


class CountResult(BaseModel):
    key: str
    count: int


class SegmentMemberOut(BaseModel):
    member_id: UUID
    name: str | None


class MembersPage(BaseModel):
    items: list[SegmentMemberOut]
    next_cursor: str | None = None


class RefreshResult(BaseModel):
    key: str
    entered: int
    left: int
    members: int


class ListUpload(BaseModel):
    """Members by id or identifier (card, phone, e-mail, external id), one per item;
    ``kind`` says which (``auto``: an id if it parses as one, else guessed)."""

    model_config = ConfigDict(extra="forbid")

    members: list[str] = Field(max_length=100_000)
    kind: str = Field(default="auto", pattern=r"^(auto|id|card|phone|email|external_id)$")
    mode: ListMode = ListMode.ADD


class NotFoundLine(BaseModel):
    line: int
    value: str


class ListResult(BaseModel):
    key: str
    added: int
    removed: int
    members: int
    not_found: list[NotFoundLine]


class MemberSegment(BaseModel):
    key: str
    name: str
    kind: SegmentKind


class MemberSegments(BaseModel):
    member_id: UUID
    items: list[MemberSegment]
