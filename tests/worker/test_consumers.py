"""The typed view of a delivered event and the consumer registry (no database)."""

from datetime import UTC, date, datetime
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.outbox.consumers import (
    PARTITIONS,
    ConsumerRegistry,
    StoredEvent,
    UnknownEvent,
    from_row,
    matches,
    partition_of,
)
from kopilka.outbox.events import (
    DomainEvent,
    MemberRegistered,
    PointsEarned,
    PurchaseRecorded,
    RuleEvent,
    TierGraceStarted,
)

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def stored(event: DomainEvent, seq: int = 1) -> StoredEvent:
    """The row the unit of work writes for ``event``, as the worker reads it back."""
    return StoredEvent(
        seq=seq,
        partition=0,
        event_id=event.event_id,
        program_id=event.program_id,
        member_id=event.member_id,
        topic=event.type,
        version=event.version,
        payload=event.payload(),
        occurred_at=event.occurred_at,
    )


@pytest.mark.parametrize(
    "event",
    [
        PurchaseRecorded(
            program_id=uuid4(),
            member_id=uuid4(),
            occurred_at=NOW,
            purchase_id=uuid4(),
            external_id="r-1",
            total=12_345,
            currency="RUB",
            store=None,
            channel="pos",
            lines=2,
            categories=["food"],
            earned={"points": 123},
            coupons=["SPRING"],
        ),
        PointsEarned(
            program_id=uuid4(),
            member_id=uuid4(),
            occurred_at=NOW,
            currency="points",
            amount=10,
            balance={"available": 10, "pending": 0, "held": 0},
            entry_id=uuid4(),
            status="available",
            rules={"base": 10},
            expires_at=None,
            available_at=NOW,
        ),
        MemberRegistered(
            program_id=uuid4(),
            member_id=uuid4(),
            occurred_at=NOW,
            card="123",
            phone=None,
            email=None,
            external_id=None,
            language="ru",
            birthday=date(1990, 5, 17),
            channel="api",
        ),
        TierGraceStarted(
            program_id=uuid4(),
            member_id=uuid4(),
            occurred_at=NOW,
            tier="gold",
            grace_until=date(2030, 6, 1),
        ),
        RuleEvent(
            program_id=uuid4(),
            member_id=None,
            occurred_at=NOW,
            name="vip_visit",
            rule_id="r7",
            data={"x": 1},
        ),
    ],
)
def test_an_event_comes_back_as_its_class(event: DomainEvent) -> None:
    back = from_row(stored(event))
    assert type(back) is type(event)
    assert back == event
    assert back.type == event.type


def test_unknown_types_and_misfits_are_delivered_as_stored() -> None:
    program = uuid4()
    row = StoredEvent(1, 0, uuid4(), program, None, "coffee.brewed", 1, {"cups": 2}, NOW)
    back = from_row(row)
    assert isinstance(back, UnknownEvent)
    assert back.type == "coffee.brewed" and back.payload() == {"cups": 2}
    # An older writer's payload that lacks required fields of the class.
    old = StoredEvent(2, 0, uuid4(), program, uuid4(), "purchase.recorded", 1, {"total": 5}, NOW)
    assert isinstance(from_row(old), UnknownEvent)


def test_patterns() -> None:
    assert matches(["*"], "points.earned")
    assert matches(["points.*"], "points.earned")
    assert not matches(["points.*"], "pointsx.earned")
    assert matches(["tier.upgraded"], "tier.upgraded")
    assert not matches(["tier.upgraded"], "tier.downgraded")
    assert matches(["rule.*"], "rule.vip_visit")


def test_partitions_are_stable_and_spread() -> None:
    keys = [uuid4() for _ in range(2000)]
    assert all(partition_of(k) == partition_of(k) for k in keys)
    used = {partition_of(k) for k in keys}
    assert used == set(range(PARTITIONS))


def test_registry_takes_topics_and_refuses_bad_ones() -> None:
    registry = ConsumerRegistry()

    @registry.consumer("tier.upgraded", "points.*", name="mail")
    async def mail(event: DomainEvent, conn: AsyncConnection) -> None:
        pass

    found = registry.get("mail")
    assert found is not None and found.wants("points.expired") and not found.wants("member.x")
    with pytest.raises(ValueError, match="registered twice"):

        @registry.consumer("*", name="mail")
        async def again(event: DomainEvent, conn: AsyncConnection) -> None:
            pass

    with pytest.raises(ValueError, match="topic"):
        registry.consumer(name="none")
    with pytest.raises(ValueError, match="prefix"):
        registry.consumer("po*nts", name="bad")
