"""POST /v1/members/import: per-record answers, the Idempotency-Key, permissions, and no
welcome for imported members."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import unique
from tests.messaging.test_consents import worker
from tests.messaging.test_flow import mailbox, member, settle

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)


async def available(api: Api, member_id: str) -> int:
    balance = (await api.get(f"/v1/members/{member_id}/balance")).json()
    found = next(b for b in balance["balances"] if b["currency"] == "points")
    return int(found["available"])


def record(**fields: Any) -> dict[str, Any]:
    return {"external_id": unique("api"), **fields}


async def test_a_batch_answers_per_record(api: Api) -> None:
    good = record(
        name="Anna",
        phone="+79165550001",
        consents=[
            {
                "channel": "email",
                "purpose": "marketing",
                "granted": True,
                "at": "2030-05-01T10:00:00+03:00",
                "text_version": "v2",
            }
        ],
        points=[
            {"amount": 300, "expires_on": "2031-12-31"},
            {"amount": 5, "expires_on": "2030-01-01"},
        ],
        tags=["moved"],
    )
    bad = record(points=[{"amount": 10, "currency": "miles"}])
    invalid = record(gender="robot")
    with clock.frozen(T0):
        response = await api.post(
            "/v1/members/import", {"members": [good, bad, invalid, {"name": "nobody"}]}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["already_imported"], body["failed"]) == (1, 0, 3)
    first, second, third, fourth = body["results"]
    assert first["status"] == "created" and first["member_id"]
    assert first["notes"] == ["5 points had expired (last day 2030-01-01): not imported"]
    assert second["error"]["field"] == "points.0.currency"
    assert third["error"]["field"] == "gender"
    assert fourth["error"]["field"] == "external_id"
    assert await available(api, first["member_id"]) == 300

    with clock.frozen(T0):
        again = await api.post("/v1/members/import", {"members": [good]})
    assert again.json()["results"][0]["status"] == "already_imported"
    assert again.json()["results"][0]["member_id"] == first["member_id"]


async def test_the_idempotency_key_replays_the_first_answer(api: Api) -> None:
    batch = {"members": [record(points=[{"amount": 100}])]}
    key = unique("key")
    with clock.frozen(T0):
        first = await api.post("/v1/members/import", batch, **{"Idempotency-Key": key})
        retry = await api.post("/v1/members/import", batch, **{"Idempotency-Key": key})
        other = await api.post(
            "/v1/members/import", {"members": [record()]}, **{"Idempotency-Key": key}
        )
    assert first.status_code == retry.status_code == 200
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.json() == first.json() and first.json()["created"] == 1
    assert other.status_code == 409
    member_id = first.json()["results"][0]["member_id"]
    assert await available(api, member_id) == 100


async def test_import_needs_its_permission_and_stays_in_the_program(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    batch = {"members": [record(phone="+79165550077")]}
    till = Api(api.client, await make_key(engine, program, "pos"))
    refused = await till.post("/v1/members/import", batch)
    assert refused.status_code == 403
    assert "members.import" in refused.json()["detail"]

    with clock.frozen(T0):
        mine = (await api.post("/v1/members/import", batch)).json()["results"][0]
        other_program = await make_program(engine)
        theirs = Api(api.client, await make_key(engine, other_program, "admin"))
        # The same person in another program is another member of that program.
        elsewhere = (await theirs.post("/v1/members/import", batch)).json()["results"][0]
    assert mine["status"] == elsewhere["status"] == "created"
    assert mine["member_id"] != elsewhere["member_id"]
    assert (await theirs.get(f"/v1/members/{mine['member_id']}")).status_code == 404


async def test_imported_members_get_no_welcome_or_confirmation(
    api: Api, engine: AsyncEngine
) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None, double_opt_in=True)
        # What a member registering today with marketing e-mail gets: a confirmation.
        fresh = await member(api, email=mailbox("fresh"), consents={"email": True})
        granted = {
            "channel": "email",
            "purpose": "marketing",
            "granted": True,
            "at": "2031-03-03T11:00:00+00:00",
        }
        batch = [
            record(email=mailbox(f"imp{n}"), consents=[granted], points=[{"amount": 50}])
            for n in range(3)
        ]
        answer = (await api.post("/v1/members/import", {"members": batch})).json()
        await worker(engine).drain()
        await worker(engine).drain()
    sent = (await api.get("/v1/messages", member_id=fresh)).json()["items"]
    assert [m["kind"] for m in sent] == ["consent_confirm"]
    for result in answer["results"]:
        assert result["status"] == "created"
        messages = (await api.get("/v1/messages", member_id=result["member_id"])).json()
        assert messages["items"] == []
        consents = (await api.get(f"/v1/members/{result['member_id']}/consents")).json()
        assert {h["source"] for h in consents["history"]} == {"import"}


async def test_a_member_brings_no_more_points_than_a_balance_holds(api: Api) -> None:
    lots = [{"amount": 10**12}, {"amount": 10**12, "expires_on": "2099-01-01"}]
    answer = await api.post(
        "/v1/members/import", {"members": [{"external_id": "too-rich", "points": lots}]}
    )
    assert answer.status_code in (200, 201), answer.text
    (result,) = answer.json()["results"]
    assert result["status"] == "error" and result["error"]["field"] == "points", result
