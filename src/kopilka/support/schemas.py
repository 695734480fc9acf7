"""API shapes of support: interactions, tickets and their messages, support settings,
surveys and their answers and scores."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from kopilka.kit.types import ExternalId, Flag, Instant, Int, field_error
from kopilka.support.domain import (
    DEFAULT_CATEGORIES,
    DEFAULT_SLA_HOURS,
    DIRECTED_KINDS,
    Direction,
    InteractionKind,
    Outcome,
    Priority,
    QuestionType,
    SurveyTrigger,
    TicketStatus,
)

Store = Annotated[str, Field(min_length=1, max_length=100)]
Category = Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")]
MAX_BODY = 20_000
_HOURS = 24 * 366  # at most a year to any deadline


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- interactions ---------------------------------------------------------------------------


class InteractionCreate(_In):
    """A contact with the member: ``direction`` for calls, e-mails and chats; an
    ``outcome`` from the list, with ``outcome_note`` for anything it does not say."""

    kind: InteractionKind
    direction: Direction | None = None
    summary: str = Field(min_length=1, max_length=300)
    body: str | None = Field(default=None, max_length=MAX_BODY)
    outcome: Outcome | None = None
    outcome_note: str | None = Field(default=None, max_length=300)
    store: Store | None = None
    purchase_id: UUID | None = None
    ticket_id: UUID | None = None
    occurred_at: Instant | None = Field(default=None, description="Default: now.")

    @model_validator(mode="after")
    def _direction_fits(self) -> "InteractionCreate":
        if self.direction is not None and self.kind not in DIRECTED_KINDS:
            raise field_error("direction", f"a {self.kind} has no direction")
        return self


class Interaction(BaseModel):
    id: UUID
    member_id: UUID
    kind: str
    direction: str | None
    summary: str
    body: str | None
    outcome: str | None
    outcome_note: str | None
    store: str | None
    purchase_id: UUID | None
    ticket_id: UUID | None
    logged_by: "Author"
    occurred_at: datetime
    created_at: datetime


class Author(BaseModel):
    """Who wrote or logged something: the member, or a principal (an API key or a staff
    session ``key_id``, the staff member ``staff_id``, the name shown)."""

    kind: Literal["member", "staff"]
    name: str
    key_id: UUID | None = None
    staff_id: UUID | None = None


class InteractionPage(BaseModel):
    items: list[Interaction]
    next_cursor: str | None


# --- settings -------------------------------------------------------------------------------


class SlaTarget(_In):
    first_response_hours: Int = Field(ge=1, le=_HOURS)
    resolution_hours: Int = Field(ge=1, le=_HOURS)

    @model_validator(mode="after")
    def _ordered(self) -> "SlaTarget":
        if self.resolution_hours < self.first_response_hours:
            raise field_error("resolution_hours", "must not be before the first response")
        return self


def _default_sla() -> dict[Priority, SlaTarget]:
    return {
        p: SlaTarget(first_response_hours=first, resolution_hours=resolution)
        for p, (first, resolution) in DEFAULT_SLA_HOURS.items()
    }


class SupportSettings(_In):
    """A program's support settings; every field has a default (``PUT`` replaces the
    document, a field left out takes its default)."""

    categories: list[Category] = Field(
        default_factory=lambda: list(DEFAULT_CATEGORIES), min_length=1, max_length=100
    )
    sla: dict[Priority, SlaTarget] = Field(default_factory=_default_sla)
    reply_address: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,20}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$",
        description="The mailbox whose mail comes back to the inbound route "
        "(``support@reply.example.com``): a reply's address is ``support+<token>@…``.",
    )

    @model_validator(mode="after")
    def _complete(self) -> "SupportSettings":
        if len(set(self.categories)) != len(self.categories):
            raise field_error("categories", "a category is listed twice")
        # A priority the document leaves out keeps its default target.
        self.sla = {**_default_sla(), **self.sla}
        return self


# --- tickets --------------------------------------------------------------------------------


class _TicketFields(_In):
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=MAX_BODY, description="The member's words.")
    category: Category = "other"
    store: Store | None = None
    purchase_id: UUID | None = None
    purchase_external_id: ExternalId | None = None


class TicketCreate(_TicketFields):
    """A ticket opened by staff or an integration for a member."""

    member_id: UUID
    priority: Priority = Priority.NORMAL
    assignee_id: UUID | None = None
    channel: Literal["staff", "api", "email", "phone", "chat"] = "api"


class MemberTicketCreate(_TicketFields):
    """The member's own ticket, from the member app or the till."""

    channel: Literal["app", "pos", "web"] = "app"


class TicketUpdate(_In):
    status: TicketStatus | None = None
    assignee_id: UUID | None = None
    priority: Priority | None = None
    category: Category | None = None
    unassign: Flag = Field(default=False, description="Remove the assignee.")

    @model_validator(mode="after")
    def _something(self) -> "TicketUpdate":
        if self.unassign and self.assignee_id is not None:
            raise field_error("unassign", "give assignee_id or unassign, not both")
        return self


class ReplyCreate(_In):
    body: str = Field(min_length=1, max_length=MAX_BODY)
    status: TicketStatus | None = Field(
        default=None, description="Move the ticket with the reply (e.g. ``waiting``)."
    )


class NoteCreate(_In):
    body: str = Field(min_length=1, max_length=MAX_BODY)


class MemberReplyCreate(_In):
    body: str = Field(min_length=1, max_length=MAX_BODY)


class TicketMessage(BaseModel):
    id: UUID
    public: bool
    author: Author
    body: str
    via: str
    created_at: datetime


class Sla(BaseModel):
    first_response_due_at: datetime
    resolution_due_at: datetime
    first_responded_at: datetime | None
    paused: bool
    first_response_breached: bool
    resolution_breached: bool


class Ticket(BaseModel):
    id: UUID
    member_id: UUID
    subject: str
    category: str
    priority: str
    status: str
    channel: str
    assignee_id: UUID | None
    store: str | None
    purchase_id: UUID | None
    purchase_external_id: str | None
    opened_by: Author
    sla: Sla
    breached: bool
    due_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    messages: list[TicketMessage] | None = None


class TicketPage(BaseModel):
    items: list[Ticket]
    next_cursor: str | None


class MemberTicket(BaseModel):
    """A ticket as the member sees it: public replies only, no SLA or assignee."""

    id: UUID
    subject: str
    category: str
    status: str
    created_at: datetime
    updated_at: datetime
    messages: list[TicketMessage]


class MemberTicketPage(BaseModel):
    items: list[MemberTicket]
    next_cursor: str | None


# --- surveys --------------------------------------------------------------------------------


class QuestionIn(_In):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    type: QuestionType
    text: str = Field(min_length=1, max_length=500)
    required: Flag = True
    options: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=50
    )
    scale: Int | None = Field(default=None, ge=2, le=10, description="rating: 1..scale")
    max_choices: Int | None = Field(default=None, ge=1, le=50)

    @model_validator(mode="after")
    def _fits_type(self) -> "QuestionIn":
        choice = self.type in (QuestionType.CHOICE, QuestionType.MULTI_CHOICE)
        if choice and not self.options:
            raise field_error("options", f"a {self.type} question lists its options")
        if not choice and self.options is not None:
            raise field_error("options", f"a {self.type} question has no options")
        if self.options is not None and len(set(self.options)) != len(self.options):
            raise field_error("options", "an option is listed twice")
        if self.scale is not None and self.type is not QuestionType.RATING:
            raise field_error("scale", "only a rating question has a scale")
        if self.max_choices is not None and self.type is not QuestionType.MULTI_CHOICE:
            raise field_error("max_choices", "only a multi_choice question has max_choices")
        return self


Questions = Annotated[list[QuestionIn], Field(min_length=1, max_length=50)]


def _distinct(questions: list[QuestionIn] | None) -> None:
    if questions is None:
        return
    seen: set[str] = set()
    for i, q in enumerate(questions):
        if q.id in seen:
            raise field_error(f"questions.{i}.id", f"question id {q.id!r} is used twice")
        seen.add(q.id)


class SurveyCreate(_In):
    key: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    questions: Questions
    trigger: SurveyTrigger = SurveyTrigger.MANUAL
    sample_percent: Int = Field(default=100, ge=0, le=100)
    cooldown_days: Int = Field(default=30, ge=0, le=3650)
    expires_days: Int = Field(default=14, ge=1, le=365)

    @model_validator(mode="after")
    def _ids(self) -> "SurveyCreate":
        _distinct(self.questions)
        return self


class SurveyUpdate(_In):
    """Questions given make the next version when the survey's version has answers (an
    answered version never changes); the rest changes in place."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    questions: Questions | None = None
    trigger: SurveyTrigger | None = None
    sample_percent: Int | None = Field(default=None, ge=0, le=100)
    cooldown_days: Int | None = Field(default=None, ge=0, le=3650)
    expires_days: Int | None = Field(default=None, ge=1, le=365)
    status: Literal["active", "archived"] | None = None

    @model_validator(mode="after")
    def _ids(self) -> "SurveyUpdate":
        _distinct(self.questions)
        return self


class Question(BaseModel):
    id: str
    type: str
    text: str
    required: bool
    options: list[str] | None = None
    scale: int | None = None
    max_choices: int | None = None


class Survey(BaseModel):
    key: str
    name: str
    description: str | None
    kind: str
    version: int
    questions: list[Question]
    trigger: str
    sample_percent: int
    cooldown_days: int
    expires_days: int
    status: str
    responses: int
    created_at: datetime
    updated_at: datetime


class SurveyPage(BaseModel):
    items: list[Survey]
    next_cursor: str | None


class AnswerIn(_In):
    question: str = Field(min_length=1, max_length=40)
    # Checked against its question by the service (the error names ``answers.N.value``).
    value: Annotated[
        Any,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "integer"},
                    {"type": "string", "maxLength": 2000},
                    {"type": "array", "items": {"type": "string"}, "maxItems": 50},
                ]
            }
        ),
    ] = Field(
        description="nps 0–10, csat 1–5, rating 1–scale (integers); choice: an option; "
        "multi_choice: a list of options; text."
    )


class ResponseCreate(_In):
    """A member's answers. With ``invitation_id`` the invitation gives the occasion (store,
    purchase or ticket, staff member) and is answered once; without one, ``purchase_id`` or
    ``ticket_id`` may name the occasion."""

    member_id: UUID
    answers: list[AnswerIn] = Field(min_length=1, max_length=50)
    invitation_id: UUID | None = None
    purchase_id: UUID | None = None
    ticket_id: UUID | None = None
    store: Store | None = None
    channel: Literal["app", "email", "pos", "web", "api"] = "app"

    @model_validator(mode="after")
    def _one_occasion(self) -> "ResponseCreate":
        if self.invitation_id is not None and (self.purchase_id or self.ticket_id):
            raise field_error("invitation_id", "the invitation names the occasion already")
        if self.purchase_id is not None and self.ticket_id is not None:
            raise field_error("ticket_id", "name a purchase or a ticket, not both")
        return self


class Answer(BaseModel):
    question: str
    value: Any


class SurveyResponse(BaseModel):
    id: UUID
    survey: str
    version: int
    member_id: UUID
    invitation_id: UUID | None
    purchase_id: UUID | None
    ticket_id: UUID | None
    store: str | None
    staff_id: UUID | None
    score: int | None
    answers: list[Answer]
    channel: str
    answered_at: datetime


class ResponsePage(BaseModel):
    items: list[SurveyResponse]
    next_cursor: str | None


class ScoreCount(BaseModel):
    score: int
    responses: int


class ScoreOut(BaseModel):
    group: str | None = Field(description="The store, month (YYYY-MM) or staff id.")
    responses: int
    average: float | None
    nps: int | None = Field(description="% promoters (9–10) − % detractors (0–6).")
    csat: int | None = Field(description="% satisfied (4–5).")
    promoters: int
    passives: int
    detractors: int
    satisfied: int
    distribution: list[ScoreCount] = Field(
        description="How many answers gave each score, lowest first (every score the "
        "question allows, 0 where no one gave it)."
    )


class Scores(BaseModel):
    survey: str
    kind: str
    by: str
    since: datetime | None
    until: datetime | None
    overall: ScoreOut
    groups: list[ScoreOut]


# --- a member's timeline --------------------------------------------------------------------


class SupportItem(BaseModel):
    """One entry of a member's timeline from support: an interaction, a ticket or a survey
    answer, at the time it happened."""

    type: Literal["interaction", "ticket", "survey_response"]
    id: UUID
    at: datetime
    title: str
    detail: str | None
    store: str | None


Interaction.model_rebuild()
