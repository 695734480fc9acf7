"""API shapes around a program's versions.

``schemas.py`` is the settings document itself; these are the envelopes it travels in.
Documents are plain JSON objects here, not ``ProgramSettings``: a version published long ago
is shown as it was published, even if today's schema would read it differently.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.models.program_version import NOTE_LENGTH

Document = dict[str, Any]


class ProgramInForce(BaseModel):
    """The program and the document of the version in force."""

    id: UUID
    slug: str
    name: str
    version: int
    document: Document


class Draft(BaseModel):
    """The document being edited.

    ``stored`` is false when nobody has saved a draft since the last publication: the
    document is then a copy of the version in force and there is nothing to publish yet.
    """

    stored: bool
    version_in_force: int
    created_at: datetime | None
    document: Document


class VersionSummary(BaseModel):
    version: int
    status: str
    note: str | None
    created_at: datetime
    published_at: datetime


class Version(VersionSummary):
    document: Document


class VersionPage(BaseModel):
    items: list[VersionSummary]
    next_cursor: str | None = None


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=NOTE_LENGTH)
