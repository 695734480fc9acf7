"""Every change of value or state writes its domain event in the same transaction, on
SQLite and PostgreSQL: what each operation emits, in order, with the data a consumer needs."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.ledger import tasks
from kopilka.members.repository import member_repository
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import member_service
from kopilka.models import OutboxEvent
from kopilka.models.base import table
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body, unique

outbox_t = table(OutboxEvent)
T0 = datetime(2026, 3, 10, 12, tzinfo=UTC)


async def emitted(engine: AsyncEngine, program: ProgramContext, after: int = 0) -> list[Any]:
    """The program's outbox rows after id ``after``, in the order they were written."""
    async with reading(engine) as conn:
        rows = await conn.execute(
            select(outbox_t)
            .where(outbox_t.c.program_id == program.id, outbox_t.c.id > after)
            .order_by(outbox_t.c.id)
        )
        return list(rows.all())


async def last_id(engine: AsyncEngine, program: ProgramContext) -> int:
    rows = await emitted(engine, program)
    return rows[-1].id if rows else 0


async def test_members_and_purchases_emit_their_events(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    created = await api.post("/v1/members", member_body())
    member_id = created.json()["id"]
    rows = await emitted(engine, program)
    assert [r.topic for r in rows] == ["program.published", "member.registered"]
    assert rows[0].member_id is None and rows[0].payload["version_number"] == 1
    assert rows[1].payload["channel"] == "api" and str(rows[1].member_id) == member_id
    mark = rows[-1].id
    with clock.frozen(T0 + timedelta(hours=1)):
        body = purchase_body(created.json()["identifiers"][-1]["value"], 1_250)
        body["member"] = {"id": member_id}
        body["occurred_at"] = T0.isoformat()
        bought = await api.post("/v1/purchases", body)
    assert bought.status_code == 201, bought.text
    rows = await emitted(engine, program, mark)
    assert [r.topic for r in rows] == ["points.earned", "purchase.recorded"]
    earned, recorded = rows[0].payload, rows[1].payload
    assert (earned["currency"], earned["amount"], earned["rules"]) == ("points", 12, {"base": 12})
    assert earned["balance"] == {"available": 12, "pending": 0, "held": 0}
    assert recorded["purchase_id"] == bought.json()["id"]
    assert (recorded["total"], recorded["earned"], recorded["categories"]) == (
        1_250,
        {"points": 12},
        ["coffee"],
    )
    assert all(r.occurred_at.replace(tzinfo=UTC) == T0 for r in rows)
    assert len({r.event_id for r in rows}) == 2
    mark = rows[-1].id
    await api.patch(f"/v1/members/{member_id}", {"tags": ["vip"], "language": "en"})
    await api.patch(f"/v1/members/{member_id}", {"tags": ["vip"]})  # the same: no event
    await api.patch(f"/v1/members/{member_id}", {})  # nothing: no event
    await api.post(f"/v1/members/{member_id}/block", {"reason": "review"})
    await api.post(f"/v1/members/{member_id}/block", {"reason": "review"})  # the same: none
    await api.post(f"/v1/members/{member_id}/block", {"reason": "fraud"})  # a new reason
    await api.post(f"/v1/members/{member_id}/unblock", {"reason": "cleared"})
    rows = await emitted(engine, program, mark)
    assert [r.topic for r in rows] == [
        "member.updated",
        "member.blocked",
        "member.blocked",
        "member.unblocked",
    ]
    assert rows[0].payload["changed"] == ["language", "tags"]
    assert rows[0].payload["values"] == {"language": "en", "tags": ["vip"]}


async def test_points_movements_emit_their_events(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    body = member_body()
    member_id = (await api.post("/v1/members", body)).json()["id"]
    ref = {"external_id": body["external_id"]}
    mark = await last_id(engine, program)
    credit = {"member": ref, "amount": 1_000, "reason": "goodwill"}
    assert (await api.post("/v1/adjustments", credit)).status_code == 201
    debit = {"member": ref, "amount": -100, "reason": "correction"}
    assert (await api.post("/v1/adjustments", debit)).status_code == 201
    spent = await api.post("/v1/redemptions", {"member": ref, "amount": 200})
    assert spent.status_code == 201, spent.text
    hold = (
        await api.post("/v1/redemptions", {"member": ref, "amount": 300, "mode": "hold"})
    ).json()
    captured = await api.post(f"/v1/redemptions/{hold['id']}/capture", {"amount": 100})
    assert captured.status_code == 200, captured.text
    other = (
        await api.post("/v1/redemptions", {"member": ref, "amount": 50, "mode": "hold"})
    ).json()
    assert (await api.post(f"/v1/redemptions/{other['id']}/void", {})).status_code == 200
    rows = await emitted(engine, program, mark)
    assert [(r.topic, r.payload["amount"]) for r in rows] == [
        ("points.adjusted", 1_000),
        ("points.adjusted", -100),
        ("points.redeemed", 200),
        ("points.held", 300),
        ("points.captured", 100),
        ("points.held", 50),
        ("points.voided", 50),
    ]
    assert rows[4].payload["released"] == 200
    assert rows[-1].payload["balance"] == {"available": 600, "pending": 0, "held": 0}
    assert {str(r.member_id) for r in rows} == {member_id}


async def test_jobs_and_returns_emit_their_events(engine: AsyncEngine, http: Any) -> None:
    program = await make_program(engine, expiry={"policy": "days", "days": 30}, pending_days=14)
    api = Api(http, await make_key(engine, program, "admin"))
    body = member_body()
    await api.post("/v1/members", body)
    with clock.frozen(T0):
        bought = await api.post(
            "/v1/purchases",
            purchase_body(body["external_id"], 10_000, occurred_at=T0.isoformat()),
        )
        assert bought.json()["earned"][0]["status"] == "pending"
    mark = await last_id(engine, program)
    with clock.frozen(T0 + timedelta(days=1)):
        back = await api.post(
            "/v1/returns",
            {
                "external_id": unique("r"),
                "purchase_external_id": bought.json()["external_id"],
                "occurred_at": (T0 + timedelta(days=1)).isoformat(),
                "amount": 4_000,
            },
        )
        assert back.status_code == 201, back.text
    await tasks.release_pending(engine, program.id, T0 + timedelta(days=15))
    await tasks.expire_points(engine, program.id, T0 + timedelta(days=31))
    rows = await emitted(engine, program, mark)
    assert [(r.topic, r.payload.get("amount")) for r in rows] == [
        ("points.reversed", 40),
        ("return.recorded", 4_000),
        ("points.released", 60),
        ("points.expired", 60),
    ]
    assert rows[1].payload["reversed"] == {"points": 40}
    assert rows[-1].payload["balance"] == {"available": 0, "pending": 0, "held": 0}


async def test_a_unit_of_work_writes_parents_first_and_nothing_before_its_flush(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    """Rows go out parents first whatever order they were added in (SQLite checks each
    foreign key as the statement runs), with the events, and only at the flush."""
    now = clock.now()
    row, identifiers = member_service.build(program, MemberCreate(name="Ada"), now)
    event = events.MemberBlocked(
        program_id=program.id, member_id=row["id"], occurred_at=now, reason="test"
    )
    uow = UnitOfWork(now)
    member_repository.stage(uow, [], identifiers)  # children first …
    uow.emit(event)
    member_repository.stage(uow, [row], [])  # … then their parent
    async with transaction(engine) as conn:
        assert await member_service.statuses(conn, program, [row["id"]]) == {}
        await uow.flush(conn)
        assert uow.events == []
    async with reading(engine) as conn:
        found = await member_service.get(conn, program, row["id"])
    assert found.name == "Ada" and [i.kind for i in found.identifiers] == ["card"]
    rows = await emitted(engine, program)
    assert [(r.topic, r.event_id) for r in rows][-1] == ("member.blocked", event.event_id)


async def test_a_refused_purchase_registers_nobody_and_emits_nothing(
    engine: AsyncEngine, http: Any
) -> None:
    """Auto-enrolment happens only for a purchase that is recorded: one refused at the till
    (points it cannot pay with, a code that does not exist) leaves no member and no event."""
    program = await make_program(
        engine,
        auto_enrol=True,
        points_payment={"currency": "points", "points": 1, "money": 100},
    )
    api = Api(http, await make_key(engine, program, "admin"))
    mark = await last_id(engine, program)
    for extra in ({"points_to_spend": 5}, {"coupon_codes": ["NO-SUCH-CODE"]}):
        refused = await api.post("/v1/purchases", purchase_body("walk-in", 1_000, **extra))
        assert refused.status_code == 422, refused.text
    assert await emitted(engine, program, mark) == []
    nobody = await api.get("/v1/members", external_id="walk-in")
    assert nobody.json()["items"] == []


async def test_points_already_expired_when_recorded_expire_at_once(
    engine: AsyncEngine, http: Any
) -> None:
    """A back-filled purchase whose points' expiry has passed: they are earned and expired
    in the same transaction, never spendable."""
    program = await make_program(engine, expiry={"policy": "days", "days": 30})
    api = Api(http, await make_key(engine, program, "admin"))
    body = member_body()
    await api.post("/v1/members", body)
    with clock.frozen(T0 + timedelta(days=60)):
        old = purchase_body(body["external_id"], 5_000, occurred_at=T0.isoformat())
        assert (await api.post("/v1/purchases", old)).status_code == 201
        spend = await api.post(
            "/v1/redemptions", {"member": {"external_id": body["external_id"]}, "amount": 1}
        )
    assert spend.status_code == 422
    rows = await emitted(engine, program, 0)
    assert [r.topic for r in rows][-3:] == ["points.earned", "points.expired", "purchase.recorded"]
    assert rows[-2].payload["balance"] == {"available": 0, "pending": 0, "held": 0}


async def test_gift_card_and_code_status_changes_emit_their_events(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    from tests.coupons.test_endpoints import new_campaign, new_codes
    from tests.giftcards.test_endpoints import new_card

    card = await new_card(api)
    campaign = await new_campaign(api)
    (code,) = await new_codes(api, campaign["key"])
    mark = await last_id(engine, program)
    await api.patch(f"/v1/gift-cards/{card['code']}", {"status": "disabled"})
    await api.patch(f"/v1/gift-cards/{card['code']}", {"status": "disabled"})  # no change
    await api.patch(f"/v1/gift-cards/{card['code']}", {"status": "active"})
    disabled = await api.patch(f"/v1/coupons/{code}", {"status": "disabled"})
    assert disabled.status_code == 200, disabled.text
    rows = await emitted(engine, program, mark)
    assert [(r.topic, r.payload["status"], r.payload["previous_status"]) for r in rows] == [
        ("giftcard.changed", "disabled", "active"),
        ("giftcard.changed", "active", "disabled"),
        ("coupon.code_changed", "disabled", "active"),
    ]
    assert rows[-1].payload["code"] == code and rows[-1].payload["campaign"] == campaign["key"]
