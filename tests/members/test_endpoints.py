"""Members over HTTP, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body, unique


async def test_register_and_look_up_by_every_identifier(api: Api) -> None:
    phone_tail = unique("")[-4:].replace("-", "0").zfill(4)
    body = member_body(
        phone=f"+7 916 555 {phone_tail[:2]} {phone_tail[2:]}",
        email=f"{unique('u')}@Example.com",
        birthday="1990-05-17",
        language="ru",
        referral_code="FRIEND-42",
    )
    created = await api.post("/v1/members", body)
    assert created.status_code == 201, created.text
    member = created.json()
    kinds = {i["kind"]: i["value"] for i in member["identifiers"]}
    assert set(kinds) == {"card", "phone", "email", "external_id"}
    assert kinds["phone"] == f"+7916555{phone_tail}"
    assert kinds["email"] == body["email"].lower()
    for value in kinds.values():
        found = await api.get("/v1/members", identifier=value)
        assert found.status_code == 200
        assert [m["id"] for m in found.json()["items"]] == [member["id"]]
    profile = (await api.get(f"/v1/members/{member['id']}")).json()
    assert profile["birthday"] == "1990-05-17" and profile["referral_code"] == "FRIEND-42"


async def test_duplicate_identifier_is_a_conflict(api: Api) -> None:
    body = member_body()
    assert (await api.post("/v1/members", body)).status_code == 201
    again = await api.post("/v1/members", member_body(external_id=body["external_id"]))
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["errors"][0]["field"] == "external_id"


async def test_invalid_phone_and_email_are_422_naming_the_field(api: Api) -> None:
    bad_phone = await api.post("/v1/members", member_body(phone="12345"))
    assert bad_phone.status_code == 422
    assert bad_phone.json()["errors"][0]["field"] == "phone"
    bad_email = await api.post("/v1/members", member_body(email="not-an-email"))
    assert bad_email.status_code == 422
    assert bad_email.json()["errors"][0]["field"] == "email"
    nothing = await api.get("/v1/members", external_id="never-registered")
    assert nothing.json()["items"] == []


async def test_profile_update_replaces_the_phone_identifier(api: Api) -> None:
    member = (await api.post("/v1/members", member_body(phone="+79160000001"))).json()
    updated = await api.patch(
        f"/v1/members/{member['id']}", {"phone": "+79160000002", "name": "New Name"}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "New Name"
    assert (await api.get("/v1/members", phone="+79160000002")).json()["items"]
    assert not (await api.get("/v1/members", phone="+79160000001")).json()["items"]


async def test_blocked_member_earns_and_spends_nothing(api: Api) -> None:
    body = member_body()
    member = (await api.post("/v1/members", body)).json()
    await api.post("/v1/purchases", purchase_body(body["external_id"], 50_000))
    blocked = await api.post(f"/v1/members/{member['id']}/block", {"reason": "fraud check"})
    assert blocked.json()["status"] == "blocked"
    purchase = await api.post("/v1/purchases", purchase_body(body["external_id"], 90_000))
    assert purchase.status_code == 201
    assert purchase.json()["earned"] == []
    spend = await api.post("/v1/redemptions", {"member": {"id": member["id"]}, "amount": 10})
    assert spend.status_code == 403
    await api.post(f"/v1/members/{member['id']}/unblock", {"reason": "cleared"})
    spend = await api.post("/v1/redemptions", {"member": {"id": member["id"]}, "amount": 10})
    assert spend.status_code == 201
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    assert balance["balances"][0] == {
        "currency": "points",
        "available": 490,
        "pending": 0,
        "held": 0,
    }


async def test_members_are_listed_newest_first_in_pages(api: Api) -> None:
    created = [(await api.post("/v1/members", member_body())).json()["id"] for _ in range(5)]
    first = (await api.get("/v1/members", limit=3)).json()
    second = (await api.get("/v1/members", limit=3, cursor=first["next_cursor"])).json()
    listed = [m["id"] for m in first["items"] + second["items"]]
    assert listed == list(reversed(created))
    assert second["next_cursor"] is None
    bad = await api.get("/v1/members", cursor="garbage")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


WELCOME = {"id": "welcome", "trigger": "signup", "effects": [{"type": "points", "amount": 250}]}
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def welcome_api(http: httpx.AsyncClient, engine: AsyncEngine) -> Api:
    program = await make_program(
        engine, rules=[WELCOME], expiry={"policy": "days", "days": 365}, pending_days=0
    )
    return Api(http, await make_key(engine, program, "admin"))


async def test_a_back_filled_member_is_registered_and_signed_up_as_of_then(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    api = await welcome_api(http, engine)
    with clock.frozen(NOW):
        created = await api.post(
            "/v1/members", member_body(registered_at="2026-01-10T10:00:00+03:00")
        )
        assert created.status_code == 201, created.text
        member = created.json()
        registered = datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
        assert datetime.fromisoformat(member["created_at"]) == registered
        history = (await api.get(f"/v1/members/{member['id']}/history")).json()["items"]
        assert [(e["reference_type"], e["changes"][0]["amount"]) for e in history] == [
            ("signup", 250)
        ]
        assert datetime.fromisoformat(history[0]["occurred_at"]) == registered
        balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
        assert balance["balances"][0]["available"] == 250
        [expiring] = balance["next_expiring"]
        assert datetime.fromisoformat(expiring["expires_at"]) == registered + timedelta(days=365)
        # Without registered_at the member registers, and signs up, now.
        today = (await api.post("/v1/members", member_body())).json()
        assert datetime.fromisoformat(today["created_at"]) == NOW
        history = (await api.get(f"/v1/members/{today['id']}/history")).json()["items"]
        assert datetime.fromisoformat(history[0]["occurred_at"]) == NOW


async def test_registered_at_must_be_aware_not_in_the_future_and_not_absurdly_old(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    api = await welcome_api(http, engine)
    with clock.frozen(NOW):
        for bad in (
            "2026-01-10T10:00:00",  # no time zone
            (NOW + timedelta(hours=25)).isoformat(),
            "1969-12-31T23:59:59Z",
            "0202-01-01T00:00:00Z",
            "not a time",
        ):
            refused = await api.post("/v1/members", member_body(registered_at=bad))
            assert refused.status_code == 422, bad
            assert refused.json()["errors"][0]["field"] == "registered_at", bad
        # A till whose clock runs a little fast is still believed.
        ahead = (NOW + timedelta(hours=23)).isoformat()
        assert (await api.post("/v1/members", member_body(registered_at=ahead))).status_code == 201
        listed = (await api.get("/v1/members")).json()["items"]
        assert len(listed) == 1  # nothing else was registered
