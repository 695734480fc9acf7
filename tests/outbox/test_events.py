"""The catalogue of domain events: each documented, each payload plain JSON, each type
mapped back to its class. No database."""

import dataclasses
import re
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, get_type_hints

import orjson
import pytest

from kopilka.kit.bulk import json_dumps
from kopilka.outbox import events
from kopilka.outbox.events import ENVELOPE, TOPICS, DomainEvent, event_class
from kopilka.outbox.unit import outbox_row

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"
NOW = datetime(2026, 3, 14, 12, 30, tzinfo=UTC)


def _sample(hint: Any) -> Any:
    """A value of the annotated type, for building every event generically."""
    text = str(hint)
    if hint is uuid.UUID or "UUID" in text:
        return uuid.uuid4()
    if hint is datetime or "datetime" in text:
        return NOW
    if hint is date or "date" in text:
        return date(2026, 3, 14)
    if hint is int or text.startswith("int"):
        return 7
    if "dict" in text:
        return {"k": 1}
    if "list" in text:
        return ["a"]
    return "x"


def build(cls: type[DomainEvent]) -> DomainEvent:
    hints = get_type_hints(cls)
    values = {
        f.name: _sample(hints[f.name])
        for f in dataclasses.fields(cls)
        if f.name != "event_id" and f.name != "member_id"
    }
    return cls(member_id=uuid.uuid4(), **values)


def test_every_event_type_is_documented_with_an_example() -> None:
    text = DOCS.read_text()
    documented = set(re.findall(r"^#### `([a-z_.<>]+)` \(v\d+\)$", text, flags=re.M))
    expected = {t for t in TOPICS if t != "rule.event"} | {"rule.<name>"}
    assert documented == expected


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_payloads_are_plain_json_without_the_envelope(topic: str) -> None:
    event = build(TOPICS[topic])
    payload = event.payload()
    assert not set(ENVELOPE) & set(payload)
    # Ids and times become strings: the stored payload reads back equal to what was sent.
    assert orjson.loads(orjson.dumps(payload)) == payload
    row = outbox_row(event, NOW)
    # What the outbox column stores reads back as the plain payload.
    assert orjson.loads(json_dumps(row["payload"])) == payload
    assert row["event_id"] == event.event_id and row["topic"] == event.type
    assert row["version"] == TOPICS[topic].version


def test_types_map_back_to_their_classes() -> None:
    assert event_class("purchase.recorded") is events.PurchaseRecorded
    assert event_class("rule.wine.bought") is events.RuleEvent
    assert event_class("no.such") is None
    rule_event = events.RuleEvent(
        program_id=uuid.uuid4(),
        member_id=None,
        occurred_at=NOW,
        name="wine.bought",
        rule_id="wine",
        data={"badge": "sommelier"},
    )
    assert rule_event.type == "rule.wine.bought"


def test_event_ids_are_unique_and_time_ordered() -> None:
    first, second = build(events.PointsExpired), build(events.PointsExpired)
    assert first.event_id != second.event_id
    assert first.event_id.version == 7
