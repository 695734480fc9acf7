"""Stores over HTTP on both databases: the routes and their permissions, CSV and JSON
imports, the nearest, and what purchases, quotes, batches and returns may name."""

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Principal, Role
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.stores.service import store_service
from kopilka.system import guard
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body
from tests.staff.test_endpoints import make_staff, session_of

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)  # Monday, 12:30 in Moscow


def store_body(code: str, **fields: Any) -> dict[str, Any]:
    return {"code": code, "name": f"Store {code}", **fields}


async def new_store(api: Api, code: str, **fields: Any) -> dict[str, Any]:
    response = await api.post("/v1/stores", store_body(code, **fields))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_member(api: Api) -> str:
    body = member_body()
    assert (await api.post("/v1/members", body)).status_code == 201
    return str(body["external_id"])


async def test_stores_are_created_listed_read_and_changed(api: Api) -> None:
    with clock.frozen(T0):
        created = await new_store(
            api,
            "MSK-1",
            latitude=55.765,
            longitude=37.605,
            timezone="Europe/Moscow",
            hours={"mon": ["09:00-21:00"], "tue": ["22:00-02:00"]},
            special_hours={"2026-12-31": ["10:00-16:00"], "2027-01-01": []},
            tags=["coffee"],
            region="moscow",
            phone="+7 495 123-45-67",
        )
    assert created["open_now"] is True and created["hours"]["tue"] == ["22:00-02:00"]
    assert created["hours"]["sun"] == [] and created["special_hours"]["2027-01-01"] == []
    for code in ("SPB-1", "SPB-2", "KZN-1"):
        await new_store(api, code, region="north" if code.startswith("SPB") else None)
    again = await api.post("/v1/stores", store_body("MSK-1"))
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "code"
    page = await api.get("/v1/stores", limit=2)
    assert [s["code"] for s in page.json()["items"]] == ["KZN-1", "MSK-1"]
    rest = await api.get("/v1/stores", limit=2, cursor=page.json()["next_cursor"])
    assert [s["code"] for s in rest.json()["items"]] == ["SPB-1", "SPB-2"]
    north = await api.get("/v1/stores", region="north")
    assert [s["code"] for s in north.json()["items"]] == ["SPB-1", "SPB-2"]
    assert [s["code"] for s in (await api.get("/v1/stores", tag="coffee")).json()["items"]] == [
        "MSK-1"
    ]
    assert (await api.get("/v1/stores/MSK-1")).json()["phone"] == "+7 495 123-45-67"
    changed = await api.patch("/v1/stores/SPB-2", {"status": "closed", "address": "Nevsky 1"})
    assert changed.status_code == 200 and changed.json()["closed_at"] is not None
    closed = await api.get("/v1/stores", status="closed")
    assert [s["code"] for s in closed.json()["items"]] == ["SPB-2"]
    assert (await api.get("/v1/stores/NOPE")).status_code == 404
    assert (await api.patch("/v1/stores/NOPE", {"name": "x"})).status_code == 404
    bad_cursor = await api.get("/v1/stores", cursor="!!")
    assert bad_cursor.status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "a b", "name": "x"}, "code"),
        ({"code": "A", "name": "x", "latitude": 91, "longitude": 0}, "latitude"),
        ({"code": "A", "name": "x", "latitude": 1}, "longitude"),
        ({"code": "A", "name": "x", "latitude": "55.7", "longitude": 1}, "latitude"),
        ({"code": "A", "name": "x", "timezone": "Mars/Olympus"}, "timezone"),
        ({"code": "A", "name": "x", "hours": {"mon": ["09:00-13:00", "12:00-14:00"]}}, "hours.mon"),
        ({"code": "A", "name": "x", "hours": {"monday": []}}, "hours.monday"),
        ({"code": "A", "name": "x", "special_hours": {"31.12.2026": []}}, "special_hours"),
        ({"code": "A", "name": "x", "status": "gone"}, "status"),
        ({"code": "A", "name": "x", "tags": ["no spaces"]}, "tags.0"),
        ({"code": "A", "name": "x", "colour": "red"}, "colour"),
    ],
)
async def test_bad_stores_are_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await api.post("/v1/stores", body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"].startswith(field)
    assert (await api.get("/v1/stores")).json()["items"] == []


async def test_a_patch_cannot_null_what_a_store_must_have(api: Api) -> None:
    await new_store(api, "A")
    for field in ("name", "timezone", "status", "tags"):
        response = await api.patch("/v1/stores/A", {field: None})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == field
    code = await api.patch("/v1/stores/A", {"code": "B"})
    assert code.status_code == 422


async def test_the_nearest_over_http(api: Api) -> None:
    moscow = {"timezone": "Europe/Moscow"}
    await new_store(
        api, "A", latitude=55.75, longitude=37.62, hours={"mon": ["13:00-20:00"]}, **moscow
    )
    await new_store(
        api, "B", latitude=55.76, longitude=37.62, hours={"mon": ["09:00-20:00"]}, **moscow
    )
    await new_store(api, "C", latitude=-33.86, longitude=151.21, tags=["far"])
    with clock.frozen(T0):
        found = await api.get("/v1/stores/nearest", lat=55.75, lon=37.62, limit=2)
        assert found.status_code == 200, found.text
        items = found.json()["items"]
        assert [(s["code"], s["distance_m"], s["open_now"]) for s in items] == [
            ("A", 0, False),
            ("B", 1112, True),
        ]
        open_ = await api.get("/v1/stores/nearest", lat=55.75, lon=37.62, open_now="true")
        assert [s["code"] for s in open_.json()["items"]] == ["B"]
        tagged = await api.get("/v1/stores/nearest", lat=0, lon=0, tag="far")
        assert [s["code"] for s in tagged.json()["items"]] == ["C"]
        close = await api.get("/v1/stores/nearest", lat=0, lon=0, radius_m=1000)
        assert close.json()["items"] == [] and close.json()["searched_m"] == 1000


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lat": 90.5, "lon": 0}, "query.lat"),
        ({"lat": 0, "lon": -180.1}, "query.lon"),
        ({"lat": "nan", "lon": 0}, "query.lat"),
        ({"lon": 0}, "query.lat"),
        ({"lat": 0, "lon": 0, "limit": 0}, "query.limit"),
        ({"lat": 0, "lon": 0, "radius_m": 0}, "query.radius_m"),
    ],
)
async def test_bad_coordinates_are_422_naming_the_parameter(
    api: Api, params: dict[str, Any], field: str
) -> None:
    response = await api.get("/v1/stores/nearest", **params)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == field


async def test_import_by_json_and_by_csv_all_or_nothing(api: Api) -> None:
    rows = [store_body("A", latitude=1.0, longitude=2.0), store_body("B")]
    first = await api.post("/v1/stores/import", {"stores": rows})
    assert first.status_code == 200, first.text
    assert (first.json()["created"], first.json()["unchanged"]) == (2, 0)
    again = await api.post("/v1/stores/import", {"stores": rows})
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 2)
    csv_text = "code,name,lat,lon,tags\nA,Alpha,1,2,x;y\nC,Gamma,,,\n"
    by_csv = await api.post("/v1/stores/import", {"csv": csv_text})
    assert [(r["row"], r["code"], r["outcome"]) for r in by_csv.json()["rows"]] == [
        (2, "A", "updated"),
        (3, "C", "created"),
    ]
    bad = "code,name,lat,lon\nD,Delta,1,1\nE,Epsilon,100,1\n"
    refused = await api.post("/v1/stores/import", {"csv": bad})
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {
            "field": "csv",
            "line": 3,
            "column": "latitude",
            "message": refused.json()["errors"][0]["message"],
        }
    ]
    assert refused.json()["detail"].startswith("line 3: latitude")
    bad_json = await api.post(
        "/v1/stores/import", {"stores": [store_body("F"), {"code": "G", "name": 5}]}
    )
    assert bad_json.status_code == 422 and bad_json.json()["errors"][0]["field"] == "stores.1.name"
    codes = [s["code"] for s in (await api.get("/v1/stores")).json()["items"]]
    assert codes == ["A", "B", "C"]
    both = await api.post("/v1/stores/import", {"stores": [], "csv": ""})
    assert both.status_code == 422


async def test_permissions_and_other_programs(
    http: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_store(api, "A", latitude=1.0, longitude=1.0)
    pos = Api(http, await make_key(engine, program, "pos"))
    analyst = Api(http, await make_key(engine, program, "analyst"))
    for reader in (pos, analyst):
        assert (await reader.get("/v1/stores")).status_code == 200
        assert (await reader.get("/v1/stores/A")).status_code == 200
        assert (await reader.get("/v1/stores/nearest", lat=1, lon=1)).status_code == 200
        assert (await reader.post("/v1/stores", store_body("B"))).status_code == 403
        assert (await reader.patch("/v1/stores/A", {"name": "x"})).status_code == 403
        assert (await reader.post("/v1/stores/import", {"stores": []})).status_code == 403
    other = Api(http, await make_key(engine, await make_program(engine), "admin"))
    assert (await other.get("/v1/stores/A")).status_code == 404
    assert (await other.patch("/v1/stores/A", {"name": "x"})).status_code == 404
    assert (await other.get("/v1/stores")).json()["items"] == []
    assert (await other.get("/v1/stores/nearest", lat=1, lon=1)).json()["items"] == []


# --- purchases at stores -------------------------------------------------------------------


async def test_once_a_program_has_stores_purchases_name_one_of_them(
    http: Any, engine: AsyncEngine
) -> None:
    program = await make_program(engine)
    api = Api(http, await make_key(engine, program, "admin"))
    member = await new_member(api)
    # No stores yet: any store name, and none, are accepted.
    assert (
        await api.post("/v1/purchases", purchase_body(member, store="anything"))
    ).status_code == 201
    await new_store(api, "store-01")
    store_service.known.forget(program.id)  # as if this process's re-check were due
    assert (await api.post("/v1/purchases", purchase_body(member))).status_code == 201
    assert (await api.post("/v1/purchases", purchase_body(member, store=None))).status_code == 201
    refused = await api.post("/v1/purchases", purchase_body(member, store="store-99"))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "store"
    quote = await api.post("/v1/purchases/quote", purchase_body(member, store="store-99"))
    assert quote.status_code == 422 and quote.json()["errors"][0]["field"] == "store"
    batch = await api.post(
        "/v1/purchases/batch",
        {"purchases": [purchase_body(member), purchase_body(member, store="nope")]},
    )
    results = batch.json()["results"]
    assert [r["status"] for r in results] == [201, 422]
    assert results[1]["error"]["errors"][0]["field"] == "store"
    # A store added later is accepted at once.
    await new_store(api, "store-02")
    assert (
        await api.post("/v1/purchases", purchase_body(member, store="store-02"))
    ).status_code == 201


async def test_free_form_stores_keep_any_name(http: Any, engine: AsyncEngine) -> None:
    program = await make_program(engine, free_form_stores=True)
    api = Api(http, await make_key(engine, program, "admin"))
    member = await new_member(api)
    await new_store(api, "store-01")
    store_service.known.forget(program.id)
    response = await api.post("/v1/purchases", purchase_body(member, store="pop-up"))
    assert response.status_code == 201


@pytest.fixture
def limited_to(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Callers limited to the stores in the returned set (as a staff member's role may be):
    every authenticated principal gets ``stores`` set to it."""
    stores: set[str] = set()
    original = guard.principal_of

    async def principal_of(engine: AsyncEngine, authorization: str | None) -> Principal:
        found = await original(engine, authorization)
        return dataclasses.replace(found, stores=frozenset(stores))

    monkeypatch.setattr(guard, "principal_of", principal_of)
    yield stores


async def test_a_store_limited_caller_sells_and_reads_at_their_stores_only(
    http: Any, engine: AsyncEngine, program: ProgramContext, limited_to: set[str]
) -> None:
    api = Api(http, await make_key(engine, program, "admin"))
    limited_to.update({"store-01", "A", "B"})
    member = await new_member(api)
    await new_store(api, "A", latitude=1.0, longitude=1.0)
    await new_store(api, "B", latitude=1.0, longitude=1.001)
    refused_store = await api.post("/v1/stores", store_body("Z"))
    assert refused_store.status_code == 403
    limited_to.add("Z")
    await new_store(api, "Z", latitude=1.0, longitude=1.002)
    await new_store(api, "store-01")
    limited_to.discard("Z")
    assert [s["code"] for s in (await api.get("/v1/stores")).json()["items"]] == [
        "A",
        "B",
        "store-01",
    ]
    assert (await api.get("/v1/stores/Z")).status_code == 404
    near = await api.get("/v1/stores/nearest", lat=1, lon=1)
    assert [s["code"] for s in near.json()["items"]] == ["A", "B"]
    bought = await api.post("/v1/purchases", purchase_body(member, external_id="p-at-01"))
    assert bought.status_code == 201, bought.text
    elsewhere = await api.post("/v1/purchases", purchase_body(member, store="Z"))
    assert elsewhere.status_code == 403 and elsewhere.json()["errors"][0]["field"] == "store"
    online = await api.post("/v1/purchases", purchase_body(member, store=None))
    assert online.status_code == 403
    quote = await api.post("/v1/purchases/quote", purchase_body(member, store="Z"))
    assert quote.status_code == 403
    batch = await api.post(
        "/v1/purchases/batch",
        {"purchases": [purchase_body(member), purchase_body(member, store="Z")]},
    )
    assert [r["status"] for r in batch.json()["results"]] == [201, 403]
    # A purchase at store Z, recorded by someone who may act there; its return is refused here.
    limited_to.add("Z")
    at_z = purchase_body(member, store="Z", external_id="p-at-z")
    assert (await api.post("/v1/purchases", at_z)).status_code == 201
    limited_to.discard("Z")
    occurred = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    ret = {"external_id": "r-1", "purchase_external_id": "p-at-z", "occurred_at": occurred}
    refused = await api.post("/v1/returns", ret)
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "store"
    ok = {"external_id": "r-2", "purchase_external_id": "p-at-01", "occurred_at": occurred}
    assert (await api.post("/v1/returns", ok)).status_code == 201


async def test_openapi_lists_the_store_routes(http: Any) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert {"/v1/stores", "/v1/stores/{code}", "/v1/stores/nearest", "/v1/stores/import"} <= set(
        paths
    )
    assert set(paths["/v1/stores/{code}"]) == {"get", "patch"}


async def test_a_cashier_of_one_store_sells_there_only(
    http: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    """The same, with a real staff session: a cashier whose account names one store."""
    await new_store(api, "store-01", latitude=1.0, longitude=1.0)
    await new_store(api, "store-02", latitude=1.0, longitude=1.001)
    member = await new_member(api)
    email, _ = await make_staff(engine, program, Role.CASHIER, stores=["store-01"])
    headers = await session_of(http, email)
    here = await http.post("/v1/purchases", json=purchase_body(member), headers=headers)
    assert here.status_code == 201, here.text
    there = await http.post(
        "/v1/purchases", json=purchase_body(member, store="store-02"), headers=headers
    )
    assert there.status_code == 403 and there.json()["errors"][0]["field"] == "store"
    listed = await http.get("/v1/stores", headers=headers)
    assert [s["code"] for s in listed.json()["items"]] == ["store-01"]
    near = await http.get("/v1/stores/nearest", params={"lat": 1, "lon": 1}, headers=headers)
    assert [s["code"] for s in near.json()["items"]] == ["store-01"]
    changed = await http.patch("/v1/stores/store-01", json={"name": "x"}, headers=headers)
    assert changed.status_code == 403  # a cashier reads stores, never changes them
