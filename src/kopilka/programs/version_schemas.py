"""API shapes around a program's versions.

``schemas.py`` is the settings document itself; these are the envelopes it travels in.
Documents are plain JSON objects here, not ``ProgramSettings``: a version published long ago
is shown as it was published, even if today's schema would read it differently.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.kit.types import Instant, Int
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
    member_notice: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="What changes for members, in their words: every active member is told "
        "(the program_changed message). Without it members are not told.",
    )


class SimulateRequest(BaseModel):
    """Replay the last ``days`` (or since ``since``) under ``document`` — the stored draft
    when omitted — next to the version in force."""

    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] | None = None
    since: Instant | None = None
    days: Int = Field(default=90, ge=1, le=3660)


class SimulatedRule(BaseModel):
    rule_id: str
    published: dict[str, int] = Field(description="Issued per currency by the version in force.")
    draft: dict[str, int] = Field(description="Issued per currency by the draft.")
    fired_published: int
    fired_draft: int
    members_published: int
    members_draft: int


class SimulatedTotal(BaseModel):
    currency: str
    kind: str
    published: int
    draft: int
    liability_change: int = Field(description="draft − published: what the program would owe more.")


class SimulationReport(BaseModel):
    since: datetime
    until: datetime
    purchases: int
    version_in_force: int
    rules: list[SimulatedRule]
    totals: list[SimulatedTotal]
    members_affected: int = Field(description="Members whose points would differ.")
    tiers: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Per program with a ladder: members on each tier above the entry one at "
        "the end of the replay.",
    )
    seconds: float
