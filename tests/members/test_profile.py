"""The customer 360's profile on SQLite and PostgreSQL: the new fields, custom attributes
checked against the program's schema, and a preferred store that must be one of its stores."""

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body

SCHEMA = {
    "member_attributes": {
        "children": {"type": "integer"},
        "pet": {"type": "choice", "values": ["cat", "dog"]},
        "wedding_day": {"type": "date", "personal": True},
        "vegan": {"type": "boolean"},
    }
}


@pytest.fixture
async def typed(api: Api, engine: AsyncEngine) -> Api:
    program = await make_program(engine, **SCHEMA)
    return Api(api.client, await make_key(engine, program, "admin"))


async def test_the_profile_keeps_its_new_fields(api: Api) -> None:
    body = member_body(
        gender="female", city="Казань", address="ул. Баумана, 1", preferred_channel="sms"
    )
    created = (await api.post("/v1/members", body)).json()
    assert (created["gender"], created["city"], created["preferred_channel"]) == (
        "female",
        "Казань",
        "sms",
    )
    changed = await api.patch(f"/v1/members/{created['id']}", {"city": None, "gender": "other"})
    assert changed.json()["city"] is None and changed.json()["gender"] == "other"
    bad = await api.post("/v1/members", member_body(gender="unknown"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "gender"


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"children": "two"}, "attributes.children"),
        ({"children": True}, "attributes.children"),
        ({"pet": "parrot"}, "attributes.pet"),
        ({"wedding_day": "12.06.2015"}, "attributes.wedding_day"),
        ({"vegan": 1}, "attributes.vegan"),
        ({"shoe_size": 42}, "attributes.shoe_size"),
    ],
)
async def test_attributes_are_checked_against_the_program_s_schema(
    typed: Api, attributes: dict[str, Any], field: str
) -> None:
    refused = await typed.post("/v1/members", member_body(attributes=attributes))
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == field


async def test_declared_attributes_of_their_type_are_kept(typed: Api, api: Api) -> None:
    good = {"children": 2, "pet": "dog", "wedding_day": "2015-06-12", "vegan": False}
    created = await typed.post(
        "/v1/members", member_body(attributes={**good, "timezone": "Asia/Omsk"})
    )
    assert created.status_code == 201, created.text
    assert created.json()["attributes"] == {**good, "timezone": "Asia/Omsk"}
    member = created.json()["id"]
    refused = await typed.patch(f"/v1/members/{member}", {"attributes": {"children": -1.5}})
    assert refused.status_code == 422
    assert (await typed.get(f"/v1/members/{member}")).json()["attributes"]["children"] == 2
    # A program that declares none takes any attribute, as before.
    free = await api.post("/v1/members", member_body(attributes={"shoe_size": 42}))
    assert free.status_code == 201


async def test_a_preferred_store_is_one_of_the_program_s_stores_once_it_has_some(
    api: Api, program: ProgramContext
) -> None:
    anywhere = await api.post("/v1/members", member_body(preferred_store="kiosk-7"))
    assert anywhere.status_code == 201  # no stores yet: any code
    store = {"code": "msk-01", "name": "Тверская", "timezone": "Europe/Moscow"}
    assert (await api.post("/v1/stores", store)).status_code == 201, "store"
    unknown = await api.post("/v1/members", member_body(preferred_store="kiosk-7"))
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "preferred_store"
    known = await api.post("/v1/members", member_body(preferred_store="msk-01"))
    assert known.status_code == 201 and known.json()["preferred_store"] == "msk-01"
    moved = await api.patch(f"/v1/members/{known.json()['id']}", {"preferred_store": "nope"})
    assert moved.status_code == 422


@pytest.mark.parametrize("number", [10**30, -(2**64), 2**63])
async def test_numbers_no_column_can_hold_are_a_422_not_a_failure(api: Api, number: int) -> None:
    created = await api.post("/v1/members", member_body(attributes={"n": number}))
    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["field"].startswith("attributes.n")
    member = (await api.post("/v1/members", member_body())).json()
    patched = await api.patch(f"/v1/members/{member['id']}", {"attributes": {"n": number}})
    assert patched.status_code == 422
    event = {
        "member": {"id": member["id"]},
        "external_id": f"big-{number}",
        "type": "event",
        "name": "visit",
        "occurred_at": "2026-01-01T10:00:00+00:00",
        "attributes": {"deep": [{"n": number}]},
    }
    answer = await api.post("/v1/events", event)
    assert answer.status_code == 422 and "attributes" in answer.json()["errors"][0]["field"]
    preview = await api.post(
        "/v1/segments/preview",
        {"definition": {"type": "attribute", "name": "n", "equals": number}},
    )
    assert preview.status_code == 422
