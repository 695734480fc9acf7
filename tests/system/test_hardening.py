"""What an attack on the running API server found, each kept fixed: time zones, request size
and the order of authentication, bounds, strict types, errors naming their field, API keys
that can be revoked, an OpenAPI document that says what the server does. SQLite and
PostgreSQL."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.apikeys.service import ApiKeyService, api_key_service
from kopilka.app import create_app
from kopilka.config import Settings
from kopilka.db import reading
from kopilka.programs.service import ProgramContext
from kopilka.system.guard import PUBLIC_PATHS
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body, unique

EARLY = "0001-01-01T00:00:00+14:00"


async def new_member(api: Api, **overrides: Any) -> dict[str, Any]:
    body = member_body(**overrides)
    response = await api.post("/v1/members", body)
    assert response.status_code == 201, response.text
    return response.json() | {"external_id": body["external_id"]}


def fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return [error["field"] for error in response.json().get("errors", [])]


async def balance(api: Api, member_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/members/{member_id}/balance")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = next(
        b for b in response.json()["balances"] if b["currency"] == "points"
    )
    return found


# --- 1. time zones -----------------------------------------------------------------------------


async def test_an_unknown_program_time_zone_is_refused_naming_the_field(api: Api) -> None:
    document = {
        "money_currency": "RUB",
        "timezone": "Mars/Olympus_Mons",
        "currencies": [{"code": "points"}],
        "expiry": {"policy": "end_of_month", "months": 1},
    }
    refused = await api.put("/v1/program/draft", document)
    assert refused.status_code == 422 and "timezone" in fields(refused)
    accepted = await api.put("/v1/program/draft", document | {"timezone": "Europe/Moscow"})
    assert accepted.status_code == 200, accepted.text


async def test_an_unknown_member_time_zone_is_refused_naming_attributes_timezone(
    api: Api,
) -> None:
    refused = await api.post("/v1/members", member_body(attributes={"timezone": "Nowhere/Town"}))
    assert refused.status_code == 422 and fields(refused) == ["attributes.timezone"]
    not_text = await api.post("/v1/members", member_body(attributes={"timezone": 3}))
    assert not_text.status_code == 422 and fields(not_text) == ["attributes.timezone"]
    member = await new_member(api, attributes={"timezone": "Asia/Vladivostok"})
    patched = await api.patch(f"/v1/members/{member['id']}", {"attributes": {"timezone": "X"}})
    assert patched.status_code == 422 and fields(patched) == ["attributes.timezone"]


# --- 2. request size and the order of authentication -------------------------------------------


class Untouchable:
    """An ASGI ``receive`` that fails the test if anything reads the body."""

    async def __call__(self) -> dict[str, Any]:
        raise AssertionError("the body was read before the API key was checked")


async def call(app: Any, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("kopilka.test", 80),
    }
    await app(scope, Untouchable(), send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body


async def test_every_route_checks_the_key_before_reading_the_body(engine: AsyncEngine) -> None:
    app = create_app(engine=engine)
    routes = [
        (method, path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in ("post", "put", "patch", "delete")
        and path.startswith("/v1/")
        and path not in PUBLIC_PATHS  # signing in is how one gets a key
    ]
    assert len(routes) > 30
    for method, path in routes:
        concrete = path.replace("{", "").replace("}", "")
        headers = {"content-type": "application/json", "content-length": str(50 * 1024 * 1024)}
        status, body = await call(app, method.upper(), concrete, headers)
        assert status == 401, (method, path, body)
        bad_key = headers | {"authorization": "Bearer kp_not-a-key"}
        status, _ = await call(app, method.upper(), concrete, bad_key)
        assert status == 401, (method, path)


async def test_a_body_over_the_limit_is_refused_with_413(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    key = await make_key(engine, program, "admin")
    app = create_app(Settings(max_body_bytes=4096), engine=engine)
    transport = httpx.ASGITransport(app=app)
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    big = json.dumps({"name": "x" * 5000}).encode()
    async with httpx.AsyncClient(transport=transport, base_url="http://k.test") as client:
        declared = await client.post("/v1/members", content=big, headers=auth)
        assert declared.status_code == 413 and fields(declared) == []
        assert declared.headers["content-type"] == "application/problem+json"

        async def stream() -> AsyncIterator[bytes]:
            for start in range(0, len(big), 1000):
                yield big[start : start + 1000]

        # No Content-Length: the streamed bytes are counted.
        streamed = await client.post("/v1/members", content=stream(), headers=auth)
        assert streamed.status_code == 413
        small = await client.post("/v1/members", json=member_body(), headers=auth)
        assert small.status_code == 201


def test_the_default_limit_admits_a_full_batch_of_purchases() -> None:
    lines = [
        {
            "sku": f"SKU-{n:06d}",
            "name": "Coffee beans, dark roast, 1 kg",
            "category": "coffee",
            "brand": "Roaster",
            "tags": ["organic", "promo"],
            "quantity": 2,
            "unit_price": 125_000,
            "discount": 5_000,
        }
        for n in range(3)
    ]
    purchases = [
        purchase_body(f"member-{n:08d}", total=735_000) | {"lines": lines} for n in range(1000)
    ]
    size = len(json.dumps({"purchases": purchases}).encode())
    assert size < Settings().max_body_bytes


async def test_only_json_bodies_are_taken(api: Api, http: httpx.AsyncClient) -> None:
    member = await new_member(api)
    body = json.dumps(purchase_body(member["external_id"]))
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        refused = await http.post(
            "/v1/purchases",
            content=body,
            headers={**api.headers, "Content-Type": content_type},
        )
        assert refused.status_code == 415, content_type
        assert refused.headers["content-type"] == "application/problem+json"
    untyped = await http.post("/v1/purchases", content=body.encode(), headers=api.headers)
    assert untyped.status_code == 415
    typed = await http.post(
        "/v1/purchases",
        content=body,
        headers={**api.headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert typed.status_code == 201, typed.text


# --- 3. bounds ---------------------------------------------------------------------------------


async def test_integers_beyond_their_columns_are_refused(api: Api) -> None:
    version = await api.get("/v1/program/versions/2147483648")
    assert version.status_code == 422 and fields(version) == ["path.version"]
    cursor = await api.get("/v1/program/versions", cursor="99999999999")
    assert cursor.status_code == 422 and fields(cursor) == ["cursor"]
    campaign = {
        "key": unique("c").lower(),
        "name": "Too many",
        "discount": {"kind": "fixed", "value": 100},
        "total_limit": 2_147_483_648,
    }
    refused = await api.post("/v1/coupon-campaigns", campaign)
    assert refused.status_code == 422 and fields(refused) == ["total_limit"]
    assert (
        await api.post("/v1/coupon-campaigns", campaign | {"total_limit": 2**31 - 1})
    ).status_code == 201


async def test_instants_out_of_range_are_refused_naming_the_field(api: Api) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"]) | {"occurred_at": EARLY}
    for path in ("/v1/purchases", "/v1/purchases/quote"):
        refused = await api.post(path, body)
        assert refused.status_code == 422 and fields(refused) == ["occurred_at"], path
    good = purchase_body(member["external_id"])
    batch = await api.post("/v1/purchases/batch", {"purchases": [body, good]})
    assert batch.status_code == 200
    results = batch.json()["results"]
    assert results[0]["status"] == 422
    assert results[0]["error"]["errors"][0]["field"] == "occurred_at"
    assert results[1]["status"] == 201
    event = {
        "member": {"external_id": member["external_id"]},
        "external_id": unique("e"),
        "type": "review",
        "occurred_at": EARLY,
    }
    refused = await api.post("/v1/events", event)
    assert refused.status_code == 422 and fields(refused) == ["occurred_at"]
    returned = {
        "external_id": unique("r"),
        "purchase_external_id": good["external_id"],
        "occurred_at": EARLY,
    }
    refused = await api.post("/v1/returns", returned)
    assert refused.status_code == 422 and fields(refused) == ["occurred_at"]
    refused = await api.post("/v1/program/simulate", {"since": EARLY})
    assert refused.status_code == 422 and fields(refused) == ["since"]
    late = await api.post(
        "/v1/purchases",
        purchase_body(member["external_id"]) | {"occurred_at": "3000-01-01T00:00:00Z"},
    )
    assert late.status_code == 422 and fields(late) == ["occurred_at"]


# --- 4. strict types ---------------------------------------------------------------------------


async def test_a_boolean_is_not_an_amount_of_a_hold_capture(api: Api) -> None:
    member = await new_member(api)
    bought = await api.post("/v1/purchases", purchase_body(member["external_id"], total=100_000))
    assert bought.status_code == 201
    hold = await api.post(
        "/v1/redemptions", {"member": {"id": member["id"]}, "amount": 300, "mode": "hold"}
    )
    assert hold.status_code == 201, hold.text
    before = await balance(api, member["id"])
    capture = f"/v1/redemptions/{hold.json()['id']}/capture"
    for amount in (True, "30", 30.0, 1e2):
        refused = await api.post(capture, {"amount": amount})
        assert refused.status_code == 422 and fields(refused) == ["amount"], amount
    assert await balance(api, member["id"]) == before
    captured = await api.post(capture, {"amount": 300})
    assert captured.status_code == 200 and captured.json()["captured_amount"] == 300


async def test_numbers_and_dates_are_strict_everywhere(api: Api) -> None:
    member = await new_member(api)
    adjust = {"member": {"id": member["id"]}, "reason": "goodwill"}
    for amount in (True, "30", 1000.0, 1e3):
        refused = await api.post("/v1/adjustments", adjust | {"amount": amount})
        assert refused.status_code == 422 and fields(refused) == ["amount"], amount
    base = purchase_body(member["external_id"])
    for when in (1_700_000_000, "1700000000", True, "2026-01-01"):
        refused = await api.post("/v1/purchases", base | {"occurred_at": when})
        assert refused.status_code == 422 and fields(refused) == ["occurred_at"], when
    for total in (True, "10000", 10000.0):
        refused = await api.post("/v1/purchases/quote", base | {"total": total})
        assert refused.status_code == 422 and "total" in fields(refused), total
    line = base["lines"][0]
    refused = await api.post("/v1/purchases", base | {"lines": [line | {"quantity": True}]})
    assert refused.status_code == 422 and fields(refused) == ["lines.0.quantity"]
    birthday = await api.post("/v1/members", member_body(birthday=19_000))
    assert birthday.status_code == 422 and fields(birthday) == ["birthday"]
    document = {"currencies": [{"code": "points"}], "pending_days": "3"}
    assert (await api.put("/v1/program/draft", document)).status_code == 422
    assert (await api.post("/v1/adjustments", adjust | {"amount": 30})).status_code == 201


# --- 5. errors naming their field --------------------------------------------------------------


async def test_the_nul_character_is_refused_naming_the_field(api: Api) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"])
    refused = await api.post("/v1/purchases", body | {"store": "till\u00001"})
    assert refused.status_code == 422 and fields(refused) == ["store"]
    line = body["lines"][0] | {"name": "Cof\u0000fee"}
    refused = await api.post("/v1/purchases/batch", {"purchases": [body | {"lines": [line]}]})
    assert refused.status_code == 422 and fields(refused) == ["purchases.0.lines.0.name"]
    refused = await api.post("/v1/members", member_body(name="A\u0000"))
    assert refused.status_code == 422 and fields(refused) == ["name"]
    refused = await api.get("/v1/members", external_id="x\u0000y")
    assert refused.status_code == 422 and fields(refused) == ["query.external_id"]


async def test_cross_field_checks_name_their_field(api: Api) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"], total=10_000) | {"total": 9_999}
    refused = await api.post("/v1/purchases", body)
    assert refused.status_code == 422 and fields(refused) == ["total"]
    refused = await api.post("/v1/purchases/quote", body)
    assert refused.status_code == 422 and fields(refused) == ["total"]


async def test_a_return_cannot_precede_its_purchase(api: Api) -> None:
    member = await new_member(api)
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    body = purchase_body(member["external_id"]) | {"occurred_at": at.isoformat()}
    assert (await api.post("/v1/purchases", body)).status_code == 201
    early = {
        "external_id": unique("r"),
        "purchase_external_id": body["external_id"],
        "occurred_at": (at - timedelta(minutes=1)).isoformat(),
    }
    refused = await api.post("/v1/returns", early)
    assert refused.status_code == 422 and fields(refused) == ["occurred_at"]
    later = early | {"occurred_at": (at + timedelta(days=1)).isoformat()}
    assert (await api.post("/v1/returns", later)).status_code == 201


async def test_instants_are_answered_in_utc(api: Api) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"]) | {"occurred_at": "2026-03-01T15:00:00+03:00"}
    for path in ("/v1/purchases", "/v1/purchases/quote"):
        answered = await api.post(path, body | {"external_id": unique("p")})
        assert answered.json()["occurred_at"] == "2026-03-01T12:00:00Z", path


# --- 6. API keys -------------------------------------------------------------------------------


async def test_keys_are_listed_without_secrets_and_revoked_at_once(
    http: httpx.AsyncClient, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    till = await make_key(engine, program, "pos")
    till_api = Api(http, till)
    assert (await till_api.get("/v1/program")).status_code == 200
    listed = await api.get("/v1/api-keys")
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert {tuple(item["scopes"]) for item in items} == {("admin",), ("pos",)}
    text = listed.text
    assert till not in text and "key_hash" not in text
    assert set(items[0]) == {"id", "name", "prefix", "scopes", "created_at", "revoked_at"}
    pos_id = next(item["id"] for item in items if item["scopes"] == ["pos"])
    assert (await till_api.get("/v1/api-keys")).status_code == 403

    # Another process, which checked the key a moment ago and caches it.
    other_process = ApiKeyService(cache_seconds=3600)
    async with reading(engine) as conn:
        principal = await other_process.authenticate(conn, till)
    assert other_process.cached(till) == principal

    revoked = await api.post(f"/v1/api-keys/{pos_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await till_api.get("/v1/program")).status_code == 401
    assert api_key_service.cached(till) is None
    with pytest.raises(Exception, match="revoked"):
        async with reading(engine) as conn:
            await other_process.ensure_active(conn, principal)
    again = await api.client.delete(f"/v1/api-keys/{pos_id}", headers=api.headers)
    assert again.status_code == 200
    active = await api.get("/v1/api-keys")
    assert [item["scopes"] for item in active.json()["items"]] == [["admin"]]
    everything = await api.get("/v1/api-keys", include_revoked="true")
    assert len(everything.json()["items"]) == 2
    other = await make_program(engine)
    foreign = await make_key(engine, other, "pos")
    foreign_id = next(
        item["id"]
        for item in (
            await Api(http, await make_key(engine, other, "admin")).get("/v1/api-keys")
        ).json()["items"]
        if item["scopes"] == ["pos"]
    )
    assert (await api.post(f"/v1/api-keys/{foreign_id}/revoke")).status_code == 404
    assert (await Api(http, foreign).get("/v1/program")).status_code == 200


# --- 7. the OpenAPI document -------------------------------------------------------------------


async def test_a_wrong_method_answers_405_with_allow(api: Api) -> None:
    response = await api.client.delete("/v1/purchases/quote", headers=api.headers)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_document_declares_errors_and_the_bearer_scheme(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the program: `Authorization: Bearer kp_…`.",
    }
    purchase = document["paths"]["/v1/purchases"]["post"]
    assert purchase["security"] == [{"ApiKey": []}]
    for code in ("401", "403", "404", "409", "413", "415", "422"):
        assert "application/problem+json" in purchase["responses"][code]["content"], code
    assert "HTTPValidationError" not in document["components"]["schemas"]
    version = document["paths"]["/v1/program/versions/{version}"]["get"]["parameters"][0]
    assert version["schema"]["maximum"] == 2_147_483_647


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"null",
        b'"x"',
        b"{",
        b'{"a": 1} trailing',
        b'{"store": "\\ud800"}',
        b'{"total": -1}',
    ],
)
async def test_the_tills_route_names_errors_as_the_quote_does(api: Api, raw: bytes) -> None:
    """``POST /v1/purchases`` reads its body its own, faster way; for bad input it answers
    exactly what a declared body (the quote's) answers."""
    member = await new_member(api)
    if raw == b'{"store": "\\ud800"}':
        body = purchase_body(member["external_id"])
        raw = json.dumps(body).encode()[:-1] + b', "store": "\\ud800"}'
    answers = []
    for path in ("/v1/purchases", "/v1/purchases/quote"):
        answer = await api.client.post(
            path, content=raw, headers={**api.headers, "Content-Type": "application/json"}
        )
        answers.append(
            (answer.status_code, [(e["field"], e["code"]) for e in answer.json()["errors"]])
        )
    assert answers[0] == answers[1]
    assert answers[0][0] == 422
