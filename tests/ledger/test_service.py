"""Redemptions, holds, adjustments, scheduled jobs and the verifier, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.ledger import tasks
from kopilka.ledger.audit import verify
from kopilka.models import MemberBalance
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import purchase_body
from tests.purchases.test_endpoints import assert_ledger_sound, new_member

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def points(api: Api, member_id: str) -> dict[str, Any]:
    balance = (await api.get(f"/v1/members/{member_id}/balance")).json()
    return next(b for b in balance["balances"] if b["currency"] == "points")


async def funded_member(api: Api, total: int = 100_000) -> dict[str, Any]:
    member = await new_member(api)
    response = await api.post("/v1/purchases", purchase_body(member["external_id"], total))
    assert response.status_code == 201, response.text
    return member


async def test_one_step_redemption_never_goes_negative(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await funded_member(api)  # 1,000 points
    ok = await api.post("/v1/redemptions", {"member": {"id": member["id"]}, "amount": 600})
    assert ok.status_code == 201 and ok.json()["status"] == "completed"
    too_much = await api.post("/v1/redemptions", {"member": {"id": member["id"]}, "amount": 401})
    assert too_much.status_code == 422
    assert too_much.json()["errors"][0]["field"] == "amount"
    assert (await points(api, member["id"]))["available"] == 400
    await assert_ledger_sound(engine, program)


async def test_redemption_is_idempotent_by_key(api: Api) -> None:
    member = await funded_member(api)
    body = {"member": {"id": member["id"]}, "amount": 100}
    first = await api.post("/v1/redemptions", body, **{"Idempotency-Key": "k-1"})
    again = await api.post("/v1/redemptions", body, **{"Idempotency-Key": "k-1"})
    assert first.json() == again.json()
    other = await api.post("/v1/redemptions", dict(body, amount=50), **{"Idempotency-Key": "k-1"})
    assert other.status_code == 409
    assert (await points(api, member["id"]))["available"] == 900


async def test_hold_then_partial_capture_and_void(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await funded_member(api)
    hold = (
        await api.post(
            "/v1/redemptions", {"member": {"id": member["id"]}, "amount": 300, "mode": "hold"}
        )
    ).json()
    assert hold["status"] == "held"
    assert await points(api, member["id"]) | {"currency": "points"} == {
        "currency": "points",
        "available": 700,
        "pending": 0,
        "held": 300,
    }
    captured = await api.post(f"/v1/redemptions/{hold['id']}/capture", {"amount": 200})
    assert captured.status_code == 200, captured.text
    assert captured.json()["status"] == "captured" and captured.json()["captured_amount"] == 200
    assert (await points(api, member["id"]))["available"] == 800
    twice = await api.post(f"/v1/redemptions/{hold['id']}/void")
    assert twice.status_code == 409
    second = (
        await api.post(
            "/v1/redemptions", {"member": {"id": member["id"]}, "amount": 500, "mode": "hold"}
        )
    ).json()
    voided = await api.post(f"/v1/redemptions/{second['id']}/void")
    assert voided.json()["status"] == "voided"
    assert (await points(api, member["id"]))["available"] == 800
    await assert_ledger_sound(engine, program)


async def test_stale_holds_are_released_by_the_job(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await funded_member(api)
    hold = (
        await api.post(
            "/v1/redemptions", {"member": {"id": member["id"]}, "amount": 250, "mode": "hold"}
        )
    ).json()
    report = await tasks.release_holds(engine, program.id, clock.now() + timedelta(minutes=31))
    assert report.members == 1 and report.amount == 250
    late = await api.post(f"/v1/redemptions/{hold['id']}/capture")
    assert late.status_code == 409 and late.json()["redemption_status"] == "expired"
    assert (await points(api, member["id"]))["available"] == 1000
    await assert_ledger_sound(engine, program)


async def test_pending_points_wait_for_the_return_window(engine: AsyncEngine, http: Any) -> None:
    program = await make_program(engine, pending_days=14)
    api = Api(http, await make_key(engine, program))
    member = await new_member(api)
    with clock.frozen(T0):
        body = purchase_body(member["external_id"], 50_000, occurred_at=T0.isoformat())
        assert (await api.post("/v1/purchases", body)).json()["earned"][0]["status"] == "pending"
    assert await points(api, member["id"]) == {
        "currency": "points",
        "available": 0,
        "pending": 500,
        "held": 0,
    }
    early = await tasks.release_pending(engine, program.id, T0 + timedelta(days=13))
    assert early.amount == 0
    # A partial return inside the window cancels pending points, not available ones.
    with clock.frozen(T0 + timedelta(days=2)):
        ret = await api.post(
            "/v1/returns",
            {
                "external_id": "r-" + body["external_id"],
                "purchase_external_id": body["external_id"],
                "occurred_at": T0.isoformat(),
                "amount": 10_000,
            },
        )
        assert ret.json()["reversed"][0]["reversed"] == 100
    released = await tasks.release_pending(engine, program.id, T0 + timedelta(days=14))
    assert released.members == 1
    assert await points(api, member["id"]) == {
        "currency": "points",
        "available": 400,
        "pending": 0,
        "held": 0,
    }
    await assert_ledger_sound(engine, program)


async def test_expiry_moves_overdue_points_soonest_first(engine: AsyncEngine, http: Any) -> None:
    program = await make_program(engine, expiry={"policy": "days", "days": 30})
    api = Api(http, await make_key(engine, program))
    member = await new_member(api)
    for day, total in ((0, 10_000), (10, 20_000)):
        when = T0 + timedelta(days=day)
        with clock.frozen(when):
            await api.post(
                "/v1/purchases",
                purchase_body(member["external_id"], total, occurred_at=when.isoformat()),
            )
    with clock.frozen(T0 + timedelta(days=12)):
        # 150 spent: all 100 of the first lot (expires first) and 50 of the second.
        await api.post("/v1/redemptions", {"member": {"id": member["id"]}, "amount": 150})
    report = await tasks.expire_points(engine, program.id, T0 + timedelta(days=35))
    assert report.amount == 0  # the first lot expired empty
    report = await tasks.expire_points(engine, program.id, T0 + timedelta(days=41))
    assert report.amount == 150
    again = await tasks.expire_points(engine, program.id, T0 + timedelta(days=41))
    assert again.members == 0
    assert (await points(api, member["id"]))["available"] == 0
    history = (await api.get(f"/v1/members/{member['id']}/history")).json()["items"]
    assert history[0]["kind"] == "expire"
    await assert_ledger_sound(engine, program)


async def test_cap_policy_takes_back_only_what_is_there(engine: AsyncEngine, http: Any) -> None:
    program = await make_program(engine, clawback="cap_at_available")
    api = Api(http, await make_key(engine, program))
    member = await new_member(api)
    body = purchase_body(member["external_id"], 10_000)
    await api.post("/v1/purchases", body)
    await api.post("/v1/redemptions", {"member": {"id": member["id"]}, "amount": 70})
    ret = await api.post(
        "/v1/returns",
        {
            "external_id": "r-" + body["external_id"],
            "purchase_external_id": body["external_id"],
            "occurred_at": body["occurred_at"],
        },
    )
    assert ret.json()["reversed"][0] == {
        "currency": "points",
        "reversed": 30,
        "not_clawed_back": 70,
    }
    assert (await points(api, member["id"]))["available"] == 0
    await assert_ledger_sound(engine, program)


async def test_adjustments_credit_and_debit(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await new_member(api)
    credit = await api.post(
        "/v1/adjustments",
        {"member": {"id": member["id"]}, "amount": 250, "reason": "apology for a late order"},
    )
    assert credit.status_code == 201 and credit.json()["balance"]["available"] == 250
    debit = await api.post(
        "/v1/adjustments", {"member": {"id": member["id"]}, "amount": -300, "reason": "correction"}
    )
    assert debit.status_code == 422
    cashback = await api.post(
        "/v1/adjustments",
        {"member": {"id": member["id"]}, "amount": 990, "currency": "cashback", "reason": "promo"},
    )
    assert cashback.json()["balance"] == {
        "currency": "cashback",
        "available": 990,
        "pending": 0,
        "held": 0,
    }
    bad = await api.post(
        "/v1/adjustments",
        {"member": {"id": member["id"]}, "amount": 1, "currency": "miles", "reason": "x"},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "currency"
    await assert_ledger_sound(engine, program)


async def test_history_pages_through_entries(api: Api) -> None:
    member = await new_member(api)
    for _ in range(5):
        await api.post("/v1/purchases", purchase_body(member["external_id"], 1_000))
    first = (await api.get(f"/v1/members/{member['id']}/history", limit=3)).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    second = (
        await api.get(f"/v1/members/{member['id']}/history", limit=3, cursor=first["next_cursor"])
    ).json()
    assert len(second["items"]) == 2 and second["next_cursor"] is None
    ids = {e["id"] for e in first["items"]} | {e["id"] for e in second["items"]}
    assert len(ids) == 5
    assert first["items"][0]["changes"] == [
        {"currency": "points", "account": "available", "amount": 10, "rule_id": "base"}
    ]


async def test_verify_names_a_tampered_balance(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await funded_member(api)
    await assert_ledger_sound(engine, program)
    balances = table(MemberBalance)
    async with transaction(engine) as conn:
        await conn.execute(
            update(balances)
            .where(balances.c.member_id == UUID(member["id"]), balances.c.currency == "points")
            .values(available=balances.c.available + 1)
        )
    async with reading(engine, snapshot=True) as conn:
        problems = await verify(conn, program.id)
    assert any(
        "cached available 1001 != postings 1000" in p
        for p in problems["balances equal postings and lots"]
    )


@pytest.mark.parametrize(
    "policy,expected",
    [
        ({"policy": "end_of_month", "months": 0}, datetime(2026, 3, 31, 21, 0, tzinfo=UTC)),
        ({"policy": "end_of_year", "years": 1}, datetime(2027, 12, 31, 21, 0, tzinfo=UTC)),
    ],
)
async def test_expiry_dates_follow_the_program_time_zone(
    engine: AsyncEngine, http: Any, policy: dict[str, Any], expected: datetime
) -> None:
    program = await make_program(engine, expiry=policy, timezone="Europe/Moscow")
    api = Api(http, await make_key(engine, program))
    member = await new_member(api)
    with clock.frozen(T0):
        await api.post(
            "/v1/purchases",
            purchase_body(member["external_id"], 10_000, occurred_at=T0.isoformat()),
        )
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    expiring = balance["next_expiring"][0]
    assert expiring["amount"] == 100
    assert datetime.fromisoformat(expiring["expires_at"]) == expected


async def test_release_job_settles_a_pending_lot_emptied_by_a_return(
    engine: AsyncEngine, http: Any
) -> None:
    program = await make_program(engine, pending_days=14)
    api = Api(http, await make_key(engine, program))
    member = await new_member(api)
    with clock.frozen(T0):
        body = purchase_body(member["external_id"], 20_000, occurred_at=T0.isoformat())
        await api.post("/v1/purchases", body)
        await api.post(
            "/v1/returns",
            {
                "external_id": "r-" + body["external_id"],
                "purchase_external_id": body["external_id"],
                "occurred_at": T0.isoformat(),
            },
        )
    first = await tasks.release_pending(engine, program.id, T0 + timedelta(days=15))
    assert (first.members, first.amount) == (1, 0)
    again = await tasks.release_pending(engine, program.id, T0 + timedelta(days=15))
    assert again.members == 0
    await assert_ledger_sound(engine, program)


async def test_a_redemption_external_id_is_its_idempotency_key(api: Api) -> None:
    member = await funded_member(api)
    body = {"member": {"id": member["id"]}, "amount": 100, "external_id": "till-7/0042"}
    first = await api.post("/v1/redemptions", body, **{"Idempotency-Key": "a"})
    again = await api.post("/v1/redemptions", body, **{"Idempotency-Key": "b"})
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert (await points(api, member["id"]))["available"] == 900


async def test_capture_is_refused_for_a_blocked_member_and_an_expired_hold(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await funded_member(api)
    hold = (
        await api.post(
            "/v1/redemptions", {"member": {"id": member["id"]}, "amount": 100, "mode": "hold"}
        )
    ).json()
    await api.post(f"/v1/members/{member['id']}/block", {"reason": "fraud check"})
    refused = await api.post(f"/v1/redemptions/{hold['id']}/capture")
    assert refused.status_code == 403
    voided = await api.post(f"/v1/redemptions/{hold['id']}/void")
    assert voided.status_code == 200  # giving points back is always allowed
    await api.post(f"/v1/members/{member['id']}/unblock", {"reason": "cleared"})
    late = (
        await api.post(
            "/v1/redemptions", {"member": {"id": member["id"]}, "amount": 100, "mode": "hold"}
        )
    ).json()
    with clock.frozen(clock.now() + timedelta(minutes=31)):
        expired = await api.post(f"/v1/redemptions/{late['id']}/capture")
    assert expired.status_code == 409 and "expired" in expired.json()["detail"]
    assert (await points(api, member["id"]))["available"] == 900
    await assert_ledger_sound(engine, program)
