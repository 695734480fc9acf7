"""Journeys' events: a journey's webhook step told the program's systems."""

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from kopilka.outbox.events import DomainEvent, topic


@topic("journey.webhook")
@dataclass(frozen=True, kw_only=True, slots=True)
class JourneyWebhook(DomainEvent):
    """A member's run reached a journey's webhook step; ``data`` is the step's."""

    journey: str  # the journey's key
    journey_version: int
    step: str
    run_id: UUID
    data: dict[str, Any] = field(default_factory=dict)
