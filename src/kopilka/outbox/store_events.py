"""Events of stores: a store was created, a store changed (closing it for good included)."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from kopilka.outbox.events import DomainEvent, topic


@topic("store.created")
@dataclass(frozen=True, kw_only=True, slots=True)
class StoreCreated(DomainEvent):
    store_id: UUID
    code: str
    values: dict[str, Any]  # every field of the new store, as the API shows it
    source: str  # api, import


@topic("store.updated")
@dataclass(frozen=True, kw_only=True, slots=True)
class StoreUpdated(DomainEvent):
    store_id: UUID
    code: str
    changed: list[str]  # the fields that changed
    values: dict[str, Any]  # their new values
    previous: dict[str, Any]  # their values before
    source: str  # api, import
