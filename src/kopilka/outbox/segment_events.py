"""Segments' events: a member entered or left a segment."""

from dataclasses import dataclass  # noqa: F401
from uuid import UUID  # noqa: F401

from kopilka.outbox.events import DomainEvent, topic  # noqa: F401
