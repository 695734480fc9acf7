"""Support's events: interactions, tickets and their replies, survey answers."""

from dataclasses import dataclass  # noqa: F401
from uuid import UUID  # noqa: F401

from kopilka.outbox.events import DomainEvent, topic  # noqa: F401
