"""Purchases and returns over HTTP, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.ledger.audit import verify
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body, unique


async def new_member(api: Api) -> dict[str, Any]:
    body = member_body()
    response = await api.post("/v1/members", body)
    assert response.status_code == 201, response.text
    return response.json() | {"external_id": body["external_id"]}


async def assert_ledger_sound(engine: AsyncEngine, program: ProgramContext) -> None:
    async with reading(engine, snapshot=True) as conn:
        problems = await verify(conn, program.id)
    assert problems == {name: [] for name in problems}


async def test_purchase_earns_by_the_base_rule_with_floor(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"], total=12_399)  # 123.99 ₽ → 123 points
    response = await api.post("/v1/purchases?explain=true", body)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["points_earned"] == 123
    assert result["earned"] == [
        {"rule_id": "base", "currency": "points", "amount": 123, "status": "available"}
    ]
    assert result["trace"][0]["fired"] is True
    points = next(b for b in result["balances"] if b["currency"] == "points")
    assert points["available"] == 123
    await assert_ledger_sound(engine, program)


async def test_lines_must_add_up_to_the_total(api: Api) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"], total=10_000)
    body["total"] = 9_999
    response = await api.post("/v1/purchases", body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "total" in response.json()["detail"]


async def test_same_purchase_twice_moves_nothing_twice(api: Api) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"], total=50_000)
    first = await api.post("/v1/purchases", body)
    second = await api.post("/v1/purchases", body)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"
    changed = dict(body, total=60_000)
    changed["lines"] = [dict(body["lines"][0], unit_price=60_000)]
    conflict = await api.post("/v1/purchases", changed)
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["field"] == "external_id"
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    assert balance["balances"][0]["available"] == 500


async def test_quote_writes_nothing(api: Api) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"], total=25_000)
    quote = await api.post("/v1/purchases/quote", body)
    assert quote.status_code == 200, quote.text
    assert quote.json()["points_earned"] == 250 and quote.json()["id"] is None
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    assert balance["balances"][0]["available"] == 0
    history = (await api.get(f"/v1/members/{member['id']}/history")).json()
    assert history["items"] == []


async def test_batch_reports_each_purchase(api: Api) -> None:
    member = await new_member(api)
    good = [purchase_body(member["external_id"], total=1_000 * (i + 1)) for i in range(5)]
    unknown = purchase_body("nobody-" + unique("x"), total=1_000)
    malformed = {"external_id": "x"}
    response = await api.post(
        "/v1/purchases/batch", {"purchases": [*good, unknown, malformed, good[0]]}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 6 and result["failed"] == 2
    statuses = [r["status"] for r in result["results"]]
    assert statuses == [201, 201, 201, 201, 201, 404, 422, 201]  # the repeat: same answer
    assert result["results"][5]["error"]["errors"][0]["field"] == "member.external_id"
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    assert balance["balances"][0]["available"] == 10 + 20 + 30 + 40 + 50


async def test_unknown_member_is_404_unless_auto_enrol(api: Api) -> None:
    response = await api.post("/v1/purchases", purchase_body("ghost-" + unique("g")))
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "member.external_id"


async def test_partial_and_full_returns_reverse_points_proportionally(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"], total=30_000)
    body["lines"] = [
        {
            "sku": "A",
            "name": "A",
            "category": "x",
            "quantity": 3,
            "unit_price": 7_000,
            "discount": 0,
        },
        {
            "sku": "B",
            "name": "B",
            "category": "y",
            "quantity": 1,
            "unit_price": 9_000,
            "discount": 0,
        },
    ]
    assert (await api.post("/v1/purchases", body)).json()["points_earned"] == 300
    one_a = await api.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": body["external_id"],
            "occurred_at": body["occurred_at"],
            "lines": [{"sku": "A", "quantity": 1}],
        },
    )
    assert one_a.status_code == 201, one_a.text
    assert one_a.json()["amount"] == 7_000
    assert one_a.json()["reversed"] == [
        {"currency": "points", "reversed": 70, "not_clawed_back": 0}
    ]
    too_many = await api.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": body["external_id"],
            "occurred_at": body["occurred_at"],
            "lines": [{"sku": "A", "quantity": 3}],
        },
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "lines.0.quantity"
    rest = await api.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": body["external_id"],
            "occurred_at": body["occurred_at"],
        },
    )
    assert rest.status_code == 201
    assert rest.json()["amount"] == 23_000 and rest.json()["reversed"][0]["reversed"] == 230
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    assert balance["balances"][0]["available"] == 0
    again = await api.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": body["external_id"],
            "occurred_at": body["occurred_at"],
        },
    )
    assert again.status_code == 422
    await assert_ledger_sound(engine, program)


async def test_return_after_spending_follows_the_clawback_policy(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"], total=10_000)
    await api.post("/v1/purchases", body)
    spent = await api.post("/v1/redemptions", {"member": {"id": member["id"]}, "amount": 80})
    assert spent.status_code == 201
    ret = await api.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": body["external_id"],
            "occurred_at": body["occurred_at"],
        },
    )
    # Default policy allow_negative: the 80 spent points become a debt.
    assert ret.json()["reversed"][0] == {
        "currency": "points",
        "reversed": 100,
        "not_clawed_back": 0,
    }
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    assert balance["balances"][0]["available"] == -80
    # The next purchase pays the debt off first.
    await api.post("/v1/purchases", purchase_body(member["external_id"], total=20_000))
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    assert balance["balances"][0]["available"] == 120
    await assert_ledger_sound(engine, program)


async def test_scopes_are_enforced(http: Any, engine: AsyncEngine, program: ProgramContext) -> None:
    analyst = Api(http, await make_key(engine, program, "analyst"))
    pos = Api(http, await make_key(engine, program, "pos"))
    member = await new_member(pos)
    assert (await analyst.get(f"/v1/members/{member['id']}/balance")).status_code == 200
    denied = await analyst.post("/v1/purchases", purchase_body(member["external_id"]))
    assert denied.status_code == 403
    adjust = await pos.post(
        "/v1/adjustments", {"member": {"id": member["id"]}, "amount": 5, "reason": "goodwill"}
    )
    assert adjust.status_code == 403
    anonymous = await http.get(f"/v1/members/{member['id']}")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="kopilka"'
    wrong = await http.get(
        f"/v1/members/{member['id']}", headers={"Authorization": "Bearer kp_nope"}
    )
    assert wrong.status_code == 401


async def test_health_and_metrics(http: Any, api: Api) -> None:
    health = await http.get("/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    member = await new_member(api)
    assert (
        await api.post("/v1/purchases", purchase_body(member["external_id"]))
    ).status_code == 201
    assert (await api.client.get("/v1/purchases", headers=api.headers)).status_code == 405
    metrics = await http.get("/metrics")
    # The till's route, served directly, is labelled by its path like every other.
    assert 'method="POST",route="/v1/purchases",status="201"' in metrics.text
    assert 'method="GET",route="/v1/health",status="200"' in metrics.text


async def test_a_local_time_is_stored_as_the_same_instant(api: Api) -> None:
    member = await new_member(api)
    local = "2026-03-10T23:30:00+03:00"
    response = await api.post(
        "/v1/purchases", purchase_body(member["external_id"], 10_000, occurred_at=local)
    )
    assert response.status_code == 201
    history = (await api.get(f"/v1/members/{member['id']}/history")).json()["items"]
    stored = datetime.fromisoformat(history[0]["occurred_at"])
    assert stored == datetime(2026, 3, 10, 20, 30, tzinfo=UTC)


async def test_two_spellings_of_a_new_member_enrol_one_member(
    engine: AsyncEngine, http: Any
) -> None:
    program = await make_program(engine, auto_enrol=True)
    api = Api(http, await make_key(engine, program))
    email = f"{unique('walkin')}@example.com"
    batch = [
        purchase_body("x", 10_000, member={"email": email.upper()}),
        purchase_body("x", 20_000, member={"email": email}),
    ]
    result = (await api.post("/v1/purchases/batch", {"purchases": batch})).json()
    assert [r["status"] for r in result["results"]] == [201, 201]
    assert len({r["purchase"]["member_id"] for r in result["results"]}) == 1
    await assert_ledger_sound(engine, program)


async def test_reusing_an_external_id_for_an_unknown_member_registers_nobody(
    engine: AsyncEngine, http: Any
) -> None:
    program = await make_program(engine, auto_enrol=True)
    api = Api(http, await make_key(engine, program))
    first = purchase_body("walk-in-a", 10_000)
    assert (await api.post("/v1/purchases", first)).status_code == 201
    reuse = dict(first, member={"external_id": "walk-in-b"})
    assert (await api.post("/v1/purchases", reuse)).status_code == 409
    nobody = await api.get("/v1/members", external_id="walk-in-b")
    assert nobody.json()["items"] == []


async def test_a_line_return_cannot_exceed_what_amount_returns_left(api: Api) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"], total=10_000)
    await api.post("/v1/purchases", body)
    whole = await api.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": body["external_id"],
            "occurred_at": body["occurred_at"],
            "amount": 10_000,
        },
    )
    assert whole.status_code == 201
    line = await api.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": body["external_id"],
            "occurred_at": body["occurred_at"],
            "lines": [{"sku": "SKU-1", "quantity": 1}],
        },
    )
    assert line.status_code == 422 and line.json()["errors"][0]["field"] == "lines"


async def test_quote_of_a_future_purchase_without_a_return_window_is_available(
    api: Api,
) -> None:
    member = await new_member(api)
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    quote = await api.post(
        "/v1/purchases/quote", purchase_body(member["external_id"], 10_000, occurred_at=soon)
    )
    assert quote.json()["earned"][0]["status"] == "available"


async def test_openapi_documents_the_v1_contract(http: Any) -> None:
    spec = (await http.get("/openapi.json")).json()
    for path in (
        "/v1/members",
        "/v1/members/{member_id}/balance",
        "/v1/purchases",
        "/v1/purchases/quote",
        "/v1/purchases/batch",
        "/v1/returns",
        "/v1/redemptions",
        "/v1/redemptions/{redemption_id}/capture",
        "/v1/adjustments",
        "/v1/health",
    ):
        assert path in spec["paths"], path
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # Everything the page loads comes from this server: no CDN.
    assert "http" not in docs.text.split("<body>")[1].replace("http-equiv", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert (await http.get(f"/docs/assets/{asset}")).status_code == 200


async def test_the_purchase_route_checks_its_caller_and_input_like_every_route(
    http: Any, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await new_member(api)
    body = purchase_body(member["external_id"], total=10_000)
    anonymous = await http.post("/v1/purchases", json=body)
    assert anonymous.status_code == 401
    analyst = await make_key(engine, program, "analyst")
    refused = await http.post(
        "/v1/purchases", json=body, headers={"Authorization": f"Bearer {analyst}"}
    )
    assert refused.status_code == 403
    broken = await api.post("/v1/purchases", None, **{"Content-Type": "application/json"})
    assert broken.status_code == 422
    no_sku = purchase_body(member["external_id"], total=10_000)
    del no_sku["lines"][0]["sku"]
    missing = await api.post("/v1/purchases", no_sku)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "lines.0.sku"
    flag = await api.post("/v1/purchases?explain=perhaps", body)
    assert flag.status_code == 422 and flag.json()["errors"][0]["field"] == "query.explain"
    assert (await api.post("/v1/purchases?explain=0", body)).json().get("trace") is None


async def test_openapi_describes_the_purchase_body_and_its_explain_flag(http: Any) -> None:
    spec = (await http.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/purchases"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/PurchaseCreate"}
    assert "PurchaseCreate" in spec["components"]["schemas"]
    assert "explain" in [p["name"] for p in operation["parameters"]]
    assert "201" in operation["responses"]
