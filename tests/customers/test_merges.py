"""Merging two profiles of one person, on SQLite and PostgreSQL: identifiers, points lot by
lot through the ledger (which verifies after), purchases, the higher tier, the stricter
consent; the merged id points to the survivor; retries and refusals change nothing."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.crm.consumers import CONSUMER as FACTS
from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.ledger.audit import verify
from kopilka.outbox.consumers import registry
from kopilka.programs.service import ProgramContext
from kopilka.worker.runner import Worker
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
LADDER: dict[str, Any] = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "gold", "name": "Gold", "qualify": {"spend": 10_000_000}},
    ],
    "window": {"kind": "rolling", "months": 12},
}


@pytest.fixture
async def tiered(engine: AsyncEngine) -> ProgramContext:
    return await make_program(engine, tiers=LADDER, expiry={"policy": "days", "days": 365})


@pytest.fixture
async def tapi(api: Api, engine: AsyncEngine, tiered: ProgramContext) -> Api:
    return Api(api.client, await make_key(engine, tiered, "admin"))


async def register(api: Api, **extra: Any) -> dict[str, Any]:
    body = member_body(**extra)
    answer = await api.post("/v1/members", body)
    assert answer.status_code == 201, answer.text
    return answer.json() | {"external_id": body["external_id"]}


async def buy(api: Api, member: dict[str, Any], total: int, at: datetime) -> dict[str, Any]:
    sale = purchase_body(member["external_id"], total, occurred_at=at.isoformat())
    answer = await api.post("/v1/purchases", sale)
    assert answer.status_code == 201, answer.text
    return sale


async def balance(api: Api, member_id: str) -> int:
    answer = (await api.get(f"/v1/members/{member_id}/balance")).json()
    return int(next(b["available"] for b in answer["balances"] if b["currency"] == "points"))


async def merge(api: Api, survivor: str, merged: str) -> Any:
    return await api.post(
        f"/v1/members/{survivor}/merge", {"merged": merged, "reason": "same person"}
    )


async def books_balance(engine: AsyncEngine, program: ProgramContext) -> None:
    async with reading(engine) as conn:
        problems = await verify(conn, program.id)
    assert not any(problems.values()), problems


async def test_a_merge_moves_identifiers_points_purchases_and_the_higher_tier(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    anna = await register(tapi, phone="+79161234567", tags=["vip-candidate"])
    twin = await register(
        tapi, phone="+79169876543", email="anna.p@example.com", tags=["newsletter"], city="Kazan"
    )
    with clock.frozen(T0):
        await buy(tapi, anna, 50_000, T0 - timedelta(days=10))
        sale = await buy(tapi, twin, 30_000, T0 - timedelta(days=5))
        gold = await tapi.post(
            f"/v1/members/{twin['id']}/tier/manual", {"tier": "gold", "reason": "invited"}
        )
        assert gold.status_code == 200, gold.text
        merged = await merge(tapi, anna["id"], twin["id"])
    assert merged.status_code == 200, merged.text
    result = merged.json()
    assert result["points_moved"] == {"points": 300} and result["purchases_moved"] == 1
    assert result["tier_taken"] == "gold"
    survivor = result["survivor"]
    kinds = sorted((i["kind"], i["value"]) for i in survivor["identifiers"])
    # Anna keeps her phone; the twin's phone is freed; the e-mail and card move.
    assert ("phone", "+79161234567") in kinds and ("phone", "+79169876543") not in kinds
    assert ("email", "anna.p@example.com") in kinds
    assert [k for k, _ in kinds].count("card") == 2 and [k for k, _ in kinds].count(
        "external_id"
    ) == 2
    assert survivor["city"] == "Kazan" and survivor["tags"] == ["newsletter", "vip-candidate"]
    assert await balance(tapi, anna["id"]) == 800
    assert await balance(tapi, twin["id"]) == 0
    await books_balance(engine, tiered)
    tier = (await tapi.get(f"/v1/members/{anna['id']}/tier")).json()
    assert tier["tier"]["id"] == "gold"
    purchases = (await tapi.get(f"/v1/members/{anna['id']}/purchases")).json()["items"]
    assert {p["external_id"] for p in purchases} >= {sale["external_id"]}
    # The merged id answers with a pointer; its old card finds the survivor.
    gone = (await tapi.get(f"/v1/members/{twin['id']}")).json()
    assert gone["status"] == "merged" and gone["merged_into"] == anna["id"]
    assert gone["identifiers"] == []
    card = next(i["value"] for i in twin["identifiers"] if i["kind"] == "card")
    found = (await tapi.get("/v1/members", identifier=card)).json()
    assert [m["id"] for m in found["items"]] == [anna["id"]]
    # A till holding the merged id still reaches the person.
    with clock.frozen(T0):
        late = purchase_body(twin["external_id"], 10_000, occurred_at=T0.isoformat())
        late["member"] = {"id": twin["id"]}
        answer = await tapi.post("/v1/purchases", late)
    assert answer.status_code == 201 and answer.json()["member_id"] == anna["id"]
    # Money goes to the person's profile: the merged id's wallet takes nothing.
    top_up = await tapi.post(f"/v1/members/{twin['id']}/wallet/top-ups", {"amount": 500})
    assert top_up.status_code == 409 and anna["id"] in top_up.json()["detail"]
    # The timeline shows the merge's points arriving.
    points = (await tapi.get(f"/v1/members/{anna['id']}/timeline", type="points")).json()
    assert any(i["data"]["kind"] == "merge_in" for i in points["items"])


async def test_a_moved_lot_keeps_its_expiry_and_a_return_after_the_merge_balances(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    anna, twin = await register(tapi), await register(tapi)
    with clock.frozen(T0 - timedelta(days=30)):
        sale = await buy(tapi, twin, 20_000, T0 - timedelta(days=30))
        before = (await tapi.get(f"/v1/members/{twin['id']}/balance")).json()["next_expiring"]
    with clock.frozen(T0):
        assert (await merge(tapi, anna["id"], twin["id"])).status_code == 200
        after = (await tapi.get(f"/v1/members/{anna['id']}/balance")).json()["next_expiring"]
        # The lot came over with its own expiry, not a year from the merge.
        assert (
            [(e["amount"], e["expires_at"]) for e in after]
            == [(e["amount"], e["expires_at"]) for e in before]
            == [(200, before[0]["expires_at"])]
        )
        returned = await tapi.post(
            "/v1/returns",
            {
                "external_id": f"r-{uuid.uuid4().hex[:8]}",
                "purchase_external_id": sale["external_id"],
                "occurred_at": T0.isoformat(),
            },
        )
    assert returned.status_code == 201, returned.text
    assert await balance(tapi, anna["id"]) == 0
    await books_balance(engine, tiered)


async def test_the_stricter_consent_stays(tapi: Api) -> None:
    anna, twin = await register(tapi), await register(tapi)
    grant = {"channel": "sms", "purpose": "marketing", "granted": True, "source": "app"}
    withdraw = {"channel": "sms", "purpose": "marketing", "granted": False, "source": "call"}
    assert (
        await tapi.post(f"/v1/members/{anna['id']}/consents", {"changes": [grant]})
    ).status_code == 200
    await tapi.post(f"/v1/members/{twin['id']}/consents", {"changes": [grant]})
    await tapi.post(f"/v1/members/{twin['id']}/consents", {"changes": [withdraw]})
    result = (await merge(tapi, anna["id"], twin["id"])).json()
    assert result["consents_changed"] == ["sms.marketing"]
    consents = (await tapi.get(f"/v1/members/{anna['id']}/consents")).json()
    sms = next(c for c in consents["items"] if (c["channel"], c["purpose"]) == ("sms", "marketing"))
    assert sms["status"] == "withdrawn" and sms["allowed"] is False


async def test_a_retry_changes_nothing_and_refusals_leave_both_profiles(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    anna, twin, third = await register(tapi), await register(tapi), await register(tapi)
    with clock.frozen(T0):
        await buy(tapi, twin, 10_000, T0 - timedelta(days=1))
    first = (await merge(tapi, anna["id"], twin["id"])).json()
    again = (await merge(tapi, anna["id"], twin["id"])).json()
    assert again["already_merged"] is True and again["points_moved"] == {}
    assert await balance(tapi, anna["id"]) == first["points_moved"]["points"] == 100
    self_merge = await merge(tapi, anna["id"], anna["id"])
    assert self_merge.status_code == 422 and self_merge.json()["errors"][0]["field"] == "merged"
    elsewhere = await merge(tapi, third["id"], twin["id"])
    assert elsewhere.status_code == 409
    missing = await merge(tapi, anna["id"], str(uuid.uuid4()))
    assert missing.status_code == 404
    other = Api(tapi.client, await make_key(engine, await make_program(engine), "admin"))
    assert (await merge(other, anna["id"], third["id"])).status_code == 404
    log = (await tapi.get("/v1/audit", action="member.merged")).json()["items"]
    assert len(log) == 1 and log[0]["before"]["merged"]["id"] == twin["id"]
    await books_balance(engine, tiered)


async def test_points_on_hold_must_be_settled_before_a_merge(tapi: Api) -> None:
    anna, twin = await register(tapi), await register(tapi)
    with clock.frozen(T0):
        await buy(tapi, twin, 10_000, T0 - timedelta(days=1))
        hold = await tapi.post(
            "/v1/redemptions",
            {
                "member": {"id": twin["id"]},
                "amount": 50,
                "mode": "hold",
                "external_id": f"h-{uuid.uuid4().hex[:6]}",
            },
            **{"Idempotency-Key": uuid.uuid4().hex},
        )
        assert hold.status_code in (200, 201), hold.text
        refused = await merge(tapi, anna["id"], twin["id"])
    assert refused.status_code == 409 and "on hold" in refused.json()["detail"]
    assert (await tapi.get(f"/v1/members/{twin['id']}")).json()["status"] == "active"


async def test_likely_duplicates_are_found_by_name_and_birthday_and_by_mailbox(api: Api) -> None:
    await register(api, name="Пётр  Иванов", birthday="1990-04-01")
    await register(api, name="иванов петр", birthday="1990-04-01")
    await register(api, name="Пётр Иванов", birthday="1991-04-01")
    await register(api, email="Anna.Petrova+shop@gmail.com")
    await register(api, email="annapetrova@googlemail.com")
    by_name = (await api.get("/v1/members/duplicates")).json()["items"]
    assert [len(g["members"]) for g in by_name] == [2]
    assert by_name[0]["key"] == "1990-04-01|иванов петр"
    by_mail = (await api.get("/v1/members/duplicates", reason="email")).json()["items"]
    assert [g["key"] for g in by_mail] == ["annapetrova@gmail.com"]
    bad = await api.get("/v1/members/duplicates", reason="phone")
    assert bad.status_code == 422


async def test_the_survivor_s_facts_count_the_merged_purchases(
    tapi: Api, engine: AsyncEngine
) -> None:
    anna, twin = await register(tapi), await register(tapi)
    with clock.frozen(T0):
        await buy(tapi, anna, 10_000, T0 - timedelta(days=3))
        await buy(tapi, twin, 30_000, T0 - timedelta(days=2))
        assert (await merge(tapi, anna["id"], twin["id"])).status_code == 200
        consumer = registry.get(FACTS)
        assert consumer is not None
        await Worker(engine, [consumer]).drain()
        facts = (await tapi.get(f"/v1/members/{anna['id']}/facts")).json()
    assert facts["purchases"] == 2 and facts["spend"] == 40_000, facts
