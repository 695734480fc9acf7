"""The customer 360's events: members merged and erased, staff actions."""

from dataclasses import dataclass  # noqa: F401
from uuid import UUID  # noqa: F401

from kopilka.outbox.events import DomainEvent, topic  # noqa: F401
