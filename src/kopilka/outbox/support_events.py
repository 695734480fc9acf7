"""Support's events: interactions, tickets and their replies, survey answers."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from kopilka.outbox.events import DomainEvent, topic


@topic("interaction.logged")
@dataclass(frozen=True, kw_only=True, slots=True)
class InteractionLogged(DomainEvent):
    """Staff or an integration logged a contact with the member (``occurred_at``: when it
    happened)."""

    interaction_id: UUID
    kind: str  # call, email, chat, visit, note
    direction: str | None  # inbound, outbound
    summary: str
    outcome: str | None
    store: str | None
    logged_by_staff: UUID | None
    logged_by_name: str


@topic("ticket.opened")
@dataclass(frozen=True, kw_only=True, slots=True)
class TicketOpened(DomainEvent):
    ticket_id: UUID
    subject: str
    category: str
    priority: str
    channel: str  # staff, api, app, email
    store: str | None
    assignee_id: UUID | None
    first_response_due_at: datetime
    resolution_due_at: datetime


@topic("ticket.replied")
@dataclass(frozen=True, kw_only=True, slots=True)
class TicketReplied(DomainEvent):
    """A public reply of staff on a ticket: what a message to the member needs.
    ``message_id`` is the reply's id on the ticket (an e-mail answer to it finds the
    ticket); ``language`` the member's, if known."""

    ticket_id: UUID
    message_id: UUID
    subject: str
    body: str
    author_name: str
    language: str | None
    status: str


@topic("ticket.status_changed")
@dataclass(frozen=True, kw_only=True, slots=True)
class TicketStatusChanged(DomainEvent):
    ticket_id: UUID
    from_status: str
    to_status: str
    by: str  # the principal's name, or ``member`` when the member's reply reopened it
    by_staff: UUID | None


@topic("ticket.sla_breached")
@dataclass(frozen=True, kw_only=True, slots=True)
class TicketSlaBreached(DomainEvent):
    """A ticket's deadline passed unmet (``target``: ``first_response`` or
    ``resolution``); emitted once per ticket and target, by the breach job."""

    ticket_id: UUID
    target: str
    due_at: datetime
    priority: str
    status: str
    assignee_id: UUID | None
    store: str | None


@topic("survey.invited")
@dataclass(frozen=True, kw_only=True, slots=True)
class SurveyInvited(DomainEvent):
    """A member is asked to answer a survey about a purchase or a resolved ticket."""

    invitation_id: UUID
    survey_key: str
    survey_name: str
    occasion: str  # purchase, ticket
    purchase_id: UUID | None
    ticket_id: UUID | None
    store: str | None
    expires_at: datetime


@topic("survey.answered")
@dataclass(frozen=True, kw_only=True, slots=True)
class SurveyAnswered(DomainEvent):
    """A member answered a survey; ``score`` is the answer to its NPS or CSAT question
    (``kind``), None for a survey without one."""

    response_id: UUID
    survey_key: str
    survey_version: int
    kind: str  # nps, csat, custom
    score: int | None
    invitation_id: UUID | None
    store: str | None
    staff_id: UUID | None
    purchase_id: UUID | None
    ticket_id: UUID | None
    answers: list[dict[str, Any]]
