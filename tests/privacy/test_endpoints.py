"""Members' privacy requests on SQLite and PostgreSQL: everything held about a member is
exported; erasure removes the person and frees their identifiers while the books still
balance; retention deletes old messages and interactions."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.ledger.audit import verify
from kopilka.privacy.tasks import purge_expired
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body

T0 = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
SCHEMA = {
    "member_attributes": {
        "company": {"type": "string", "personal": True},
        "segment_hint": {"type": "choice", "values": ["a", "b"]},
    },
    "retention": {"messages_days": 30, "interactions_days": 30},
}


@pytest.fixture
async def papi(api: Api, engine: AsyncEngine) -> tuple[Api, ProgramContext]:
    program = await make_program(engine, **SCHEMA)
    return Api(api.client, await make_key(engine, program, "admin")), program


async def person(api: Api) -> dict[str, Any]:
    body = member_body(
        name="Вера Смирнова",
        phone=f"+7916{uuid.uuid4().int % 10_000_000:07d}",
        email=f"vera-{uuid.uuid4().hex[:6]}@example.com",
        birthday="1985-07-12",
        city="Тверь",
        address="ул. Советская, 1",
        gender="female",
        attributes={"company": "ООО Ромашка", "segment_hint": "a"},
    )
    answer = await api.post("/v1/members", body)
    assert answer.status_code == 201, answer.text
    return answer.json() | {"external_id": body["external_id"], "body": body}


async def history(api: Api, member: dict[str, Any]) -> None:
    with clock.frozen(T0):
        sale = purchase_body(member["external_id"], 12_000, occurred_at=T0.isoformat())
        assert (await api.post("/v1/purchases", sale)).status_code == 201
        note = {"kind": "call", "summary": "Asked about Vera's card", "body": "She lives in Tver"}
        assert (await api.post(f"/v1/members/{member['id']}/interactions", note)).status_code == 201
        ticket = {"member_id": member["id"], "subject": "Vera's points", "body": "Missing"}
        assert (await api.post("/v1/tickets", ticket)).status_code == 201
        sent = await api.post(
            "/v1/messages",
            {
                "member_id": member["id"],
                "kind": "points_spent",
                "variables": {"amount": 300},
                "dedupe_key": "privacy-1",
            },
        )
        assert sent.status_code == 202, sent.text
        assert (
            await api.patch(f"/v1/members/{member['id']}", {"city": "Москва"})
        ).status_code == 200


async def test_the_export_holds_everything_about_the_member(
    papi: tuple[Api, ProgramContext],
) -> None:
    api, _ = papi
    vera = await person(api)
    await history(api, vera)
    answer = await api.get(f"/v1/members/{vera['id']}/export")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["profile"]["name"] == "Вера Смирнова"
    assert document["profile"]["attributes"]["company"] == "ООО Ромашка"
    assert [p["total"] for p in document["purchases"]] == [12_000]
    assert document["purchases"][0]["lines"][0]["sku"] == "SKU-1"
    assert document["points"]["balances"]["points"]["available"] == 120
    assert [m["kind"] for m in document["points"]["movements"]] == ["earn"]
    assert [i["summary"] for i in document["interactions"]] == ["Asked about Vera's card"]
    assert [t["subject"] for t in document["tickets"]] == ["Vera's points"]
    assert {m["kind"] for m in document["messages"]} == {"points_spent"}
    assert any(m["to_address"] == vera["body"]["email"] for m in document["messages"])
    assert {"consents", "tier_history", "coupons", "gift_cards", "wallet", "facts"} <= set(document)
    log = (await api.get("/v1/audit", action="member.exported")).json()["items"]
    assert [e["subject_id"] for e in log] == [vera["id"]]


async def test_erasure_removes_the_person_frees_identifiers_and_keeps_the_books(
    papi: tuple[Api, ProgramContext], engine: AsyncEngine
) -> None:
    api, program = papi
    vera = await person(api)
    await history(api, vera)
    erased = await api.post(f"/v1/members/{vera['id']}/erase", {"reason": "request 2026-17"})
    assert erased.status_code == 200, erased.text
    assert erased.json()["already_erased"] is False and erased.json()["messages_blanked"] >= 1
    profile = (await api.get(f"/v1/members/{vera['id']}")).json()
    assert profile["status"] == "erased" and profile["identifiers"] == []
    for field in ("name", "phone", "email", "birthday", "city", "address", "gender"):
        assert profile[field] is None, field
    assert profile["attributes"] == {"segment_hint": "a"}  # only the non-personal one
    for kind in ("phone", "email"):
        found = (await api.get("/v1/members", identifier=vera["body"][kind])).json()["items"]
        assert found == []
    # The phone is free for someone else now.
    again = await api.post("/v1/members", member_body(phone=vera["body"]["phone"]))
    assert again.status_code == 201
    # Points and purchases stay; the books balance.
    balance = (await api.get(f"/v1/members/{vera['id']}/balance")).json()
    assert next(b["available"] for b in balance["balances"] if b["currency"] == "points") == 120
    assert len((await api.get(f"/v1/members/{vera['id']}/purchases")).json()["items"]) == 1
    async with reading(engine) as conn:
        problems = await verify(conn, program.id)
    assert not any(problems.values())
    # What support and messages held of her is blank; the audit log keeps only who and when.
    timeline = (await api.get(f"/v1/members/{vera['id']}/timeline", limit=200)).json()["items"]
    assert {i["summary"] for i in timeline if i["type"] == "interaction"} == {"call: [erased]"}
    for message in (i for i in timeline if i["type"] == "message"):
        detail = (await api.get(f"/v1/messages/{message['id']}")).json()
        assert detail["body"] == "" and detail["subject"] is None
        assert detail["channel"] == "push" or detail["to"] is None
    log = (await api.get("/v1/audit", subject_id=vera["id"])).json()["items"]
    updated = next(e for e in log if e["action"] == "member.updated")
    assert updated["before"] is None and updated["after"] == {"erased": True}
    assert "Тверь" not in str(log) and "Смирнова" not in str(log)
    assert any(e["action"] == "member.erased" for e in log)
    repeat = await api.post(f"/v1/members/{vera['id']}/erase", {"reason": "again"})
    assert repeat.json()["already_erased"] is True


async def test_retention_deletes_what_is_older_than_the_program_keeps(
    papi: tuple[Api, ProgramContext], engine: AsyncEngine
) -> None:
    api, program = papi
    vera = await person(api)
    for days in (40, 10):
        note = {
            "kind": "note",
            "summary": f"{days} days ago",
            "occurred_at": (T0 - timedelta(days=days)).isoformat(),
        }
        assert (await api.post(f"/v1/members/{vera['id']}/interactions", note)).status_code == 201
    for days in (40, 10):
        with clock.frozen(T0 - timedelta(days=days)):
            sent = await api.post(
                "/v1/messages",
                {
                    "member_id": vera["id"],
                    "kind": "points_spent",
                    "variables": {"amount": days},
                    "dedupe_key": f"retention-{days}",
                },
            )
            assert sent.status_code == 202
    purged = await purge_expired(engine, program.id, T0)
    assert purged.interactions == 1 and purged.messages >= 1
    left = (await api.get(f"/v1/members/{vera['id']}/interactions")).json()["items"]
    assert [i["summary"] for i in left] == ["10 days ago"]
    messages = (await api.get("/v1/messages", member_id=vera["id"])).json()["items"]
    assert messages and all(m["created_at"].startswith("2026-08-22") for m in messages)


async def test_another_program_cannot_export_or_erase(
    papi: tuple[Api, ProgramContext], engine: AsyncEngine
) -> None:
    api, _ = papi
    vera = await person(api)
    other = Api(api.client, await make_key(engine, await make_program(engine), "admin"))
    assert (await other.get(f"/v1/members/{vera['id']}/export")).status_code == 404
    refused = await other.post(f"/v1/members/{vera['id']}/erase", {"reason": "x"})
    assert refused.status_code == 404
    assert (await api.get(f"/v1/members/{vera['id']}")).json()["status"] == "active"
    blank = await api.post(f"/v1/members/{vera['id']}/erase", {"reason": ""})
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "reason"


async def test_an_erased_member_takes_no_more_changes_and_names_no_one(
    papi: tuple[Api, ProgramContext],
) -> None:
    api, _ = papi
    vera = await person(api)
    assert (await api.post(f"/v1/members/{vera['id']}/erase", {"reason": "r"})).status_code == 200
    for method, path, body in (
        ("PATCH", "", {"name": "Zombie", "phone": "+79995550000"}),
        ("POST", "/block", {"reason": "x"}),
        ("POST", "/unblock", {"reason": "x"}),
        (
            "POST",
            "/consents",
            {"changes": [{"channel": "sms", "purpose": "marketing", "granted": True}]},
        ),
        ("POST", "/interactions", {"kind": "note", "summary": "back?"}),
        ("POST", "/tickets", {"subject": "hi", "body": "again"}),
    ):
        answer = await api.client.request(
            method, f"/v1/members/{vera['id']}{path}", json=body, headers=api.headers
        )
        assert answer.status_code == 409, (path, answer.text)
    sale = purchase_body(vera["external_id"], 1_000)
    sale["member"] = {"id": vera["id"]}
    assert (await api.post("/v1/purchases", sale)).status_code == 404
    assert (await api.get(f"/v1/members/{vera['id']}")).json()["status"] == "erased"


async def test_erasing_a_person_reaches_the_profiles_merged_into_theirs(
    papi: tuple[Api, ProgramContext],
) -> None:
    api, _ = papi
    first, second = await person(api), await person(api)
    merged = await api.post(
        f"/v1/members/{second['id']}/merge", {"merged": first["id"], "reason": "same"}
    )
    assert merged.status_code == 200
    shell = (await api.get(f"/v1/members/{first['id']}")).json()
    assert shell["status"] == "merged" and shell["name"] is None and shell["birthday"] is None
    # The merged profile takes no changes and is not erased on its own.
    assert (await api.patch(f"/v1/members/{first['id']}", {"city": "X"})).status_code == 409
    assert (await api.post(f"/v1/members/{first['id']}/erase", {"reason": "r"})).status_code == 409
    assert (await api.post(f"/v1/members/{second['id']}/erase", {"reason": "r"})).status_code == 200
    log = (await api.get("/v1/audit")).json()["items"]
    assert "Смирнова" not in str(log) and first["body"]["phone"] not in str(log)
