"""Gift cards and wallets over HTTP, on SQLite and PostgreSQL."""

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key
from tests.giftcards.test_service import assert_cards_sound
from tests.purchases.test_endpoints import new_member

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def new_card(api: Api, amount: int = 10_000, **options: Any) -> dict[str, Any]:
    response = await api.post("/v1/gift-cards", {"amount": amount, **options})
    assert response.status_code == 201, response.text
    card: dict[str, Any] = response.json()
    return card


async def as_scope(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, scope: str
) -> Api:
    return Api(http, await make_key(engine, program, scope))


def problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    if field is not None:
        assert [e["field"] for e in body["errors"]] == [field], body
    return body


async def test_issue_read_and_pay_with_a_card(
    api: Api, http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    card = await new_card(api, 250_000, valid_days=90)
    assert (card["balance"], card["available"], card["currency"]) == (250_000, 250_000, "RUB")
    till = await as_scope(http, engine, program, "pos")
    analyst = await as_scope(http, engine, program, "analyst")
    read = await analyst.get(f"/v1/gift-cards/{card['code'].lower()}")
    assert read.status_code == 200 and read.json() == card
    paid = await till.post(
        f"/v1/gift-cards/{card['code']}/payments",
        {"amount": 99_990, "external_id": "till-7:42", "reference": "receipt-42"},
    )
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert body["transaction"] | {"id": None, "card_id": None, "created_at": None} == {
        "id": None,
        "card_id": None,
        "seq": 2,
        "kind": "payment",
        "amount": -99_990,
        "balance_after": 150_010,
        "external_id": "till-7:42",
        "reference": "receipt-42",
        "refund_of": None,
        "created_at": None,
    }
    assert body["card"]["balance"] == 150_010
    short = await till.post(f"/v1/gift-cards/{card['code']}/payments", {"amount": 150_011})
    assert problem(short, 422, "amount")["balance"] == 150_010
    assert problem(await analyst.post("/v1/gift-cards", {"amount": 1}), 403)
    assert problem(await till.post("/v1/gift-cards", {"amount": 1}), 403)
    problem(await api.get("/v1/gift-cards/NO-SUCH-CARD"), 404, "code")
    await assert_cards_sound(engine, program)


async def test_top_up_refund_and_the_journal_in_pages(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    code = (await new_card(api, 1_000))["code"]
    for n in range(3):
        response = await api.post(f"/v1/gift-cards/{code}/top-ups", {"amount": 100 + n})
        assert response.status_code == 201, response.text
    paid = (await api.post(f"/v1/gift-cards/{code}/payments", {"amount": 700})).json()
    payment_id = paid["transaction"]["id"]
    refund = await api.post(f"/v1/gift-cards/{code}/refunds", {"payment_id": payment_id})
    assert refund.status_code == 201, refund.text
    assert refund.json()["transaction"]["amount"] == 700
    assert refund.json()["card"]["balance"] == 1_303
    again = await api.post(f"/v1/gift-cards/{code}/refunds", {"payment_id": payment_id})
    problem(again, 409, "payment_id")
    problem(await api.post(f"/v1/gift-cards/{code}/refunds", {"amount": 5}), 422, "payment_id")

    first = (await api.get(f"/v1/gift-cards/{code}/transactions", limit=4)).json()
    assert [t["seq"] for t in first["items"]] == [6, 5, 4, 3]
    rest = (
        await api.get(f"/v1/gift-cards/{code}/transactions", limit=4, cursor=first["next_cursor"])
    ).json()
    assert [(t["seq"], t["kind"]) for t in rest["items"]] == [(2, "top_up"), (1, "issue")]
    assert rest["next_cursor"] is None
    problem(await api.get(f"/v1/gift-cards/{code}/transactions", cursor="forged"), 422, "cursor")
    await assert_cards_sound(engine, program)


async def test_retries_replay_and_reused_keys_conflict(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    code = (await new_card(api, 1_000))["code"]
    body = {"amount": 250}
    first = await api.post(f"/v1/gift-cards/{code}/payments", body, **{"Idempotency-Key": "k-1"})
    again = await api.post(f"/v1/gift-cards/{code}/payments", body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await api.post(
        f"/v1/gift-cards/{code}/payments", {"amount": 251}, **{"Idempotency-Key": "k-1"}
    )
    assert problem(other, 409)["type"].endswith("/idempotency-conflict")
    by_id = {"amount": 100, "external_id": "sale-1"}
    once = await api.post(f"/v1/gift-cards/{code}/payments", by_id)
    twice = await api.post(f"/v1/gift-cards/{code}/payments", by_id)
    assert twice.json() == once.json()
    problem(await api.post(f"/v1/gift-cards/{code}/payments", by_id | {"amount": 99}), 409)
    # A key names a request on one card: the same key on another card is another payment.
    second = (await new_card(api, 1_000))["code"]
    elsewhere = await api.post(
        f"/v1/gift-cards/{second}/payments", body, **{"Idempotency-Key": "k-1"}
    )
    assert elsewhere.status_code == 201 and elsewhere.json()["card"]["balance"] == 750
    issued = [
        await api.post("/v1/gift-cards", {"amount": 500}, **{"Idempotency-Key": "issue-1"})
        for _ in range(2)
    ]
    assert issued[0].json() == issued[1].json()
    assert (await api.get(f"/v1/gift-cards/{code}")).json()["balance"] == 650
    await assert_cards_sound(engine, program)


async def test_an_expired_card_refuses_payments_with_a_clear_problem(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        card = await new_card(api, 5_000, valid_days=30)
    with clock.frozen(T0 + timedelta(days=30)):
        refused = await api.post(f"/v1/gift-cards/{card['code']}/payments", {"amount": 1})
        body = problem(refused, 409, "code")
        assert body["type"] == "https://kopilka.dev/problems/gift-card-expired"
        assert body["expired_at"] == (T0 + timedelta(days=30)).isoformat()
        read = (await api.get(f"/v1/gift-cards/{card['code']}")).json()
        assert (read["status"], read["balance"], read["available"]) == ("expired", 5_000, 0)
        top_up = await api.post(f"/v1/gift-cards/{card['code']}/top-ups", {"amount": 1})
        problem(top_up, 409, "code")
    await assert_cards_sound(engine, program)


async def test_disable_enable_and_extend_a_card(api: Api) -> None:
    code = (await new_card(api, 1_000, valid_days=10))["code"]
    disabled = await api.patch(f"/v1/gift-cards/{code}", {"status": "disabled"})
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    refused = await api.post(f"/v1/gift-cards/{code}/payments", {"amount": 1})
    assert problem(refused, 409)["type"].endswith("/gift-card-disabled")
    enabled = await api.patch(f"/v1/gift-cards/{code}", {"status": "active", "never_expires": True})
    assert (enabled.json()["status"], enabled.json()["expires_at"]) == ("active", None)
    assert (await api.post(f"/v1/gift-cards/{code}/payments", {"amount": 1})).status_code == 201
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    problem(await api.patch(f"/v1/gift-cards/{code}", {"expires_at": past}), 422, "expires_at")


async def test_bad_requests_name_the_field(api: Api) -> None:
    naive = await api.post("/v1/gift-cards", {"amount": 100, "expires_at": "2030-01-01T00:00:00"})
    problem(naive, 422, "expires_at")
    both = await api.post("/v1/gift-cards", {"amount": 100, "valid_days": 5, "never_expires": True})
    problem(both, 422, "never_expires")
    problem(await api.post("/v1/gift-cards", {"amount": 0}), 422, "amount")
    problem(await api.post("/v1/gift-cards", {"amount": 1.5}), 422, "amount")
    problem(await api.post("/v1/gift-cards", {"amount": 1, "currency": "USD"}), 422, "currency")
    problem(await api.post("/v1/gift-cards", {"amount": 1, "code": "a b"}), 422, "code")
    code = (await new_card(api, 100))["code"]
    wrong = await api.post(f"/v1/gift-cards/{code}/payments", {"amount": 1, "currency": "EUR"})
    problem(wrong, 422, "currency")
    problem(await api.post("/v1/gift-cards", {"amount": 1, "code": code}), 409, "code")


async def test_bulk_issue_and_qr_code(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    response = await api.post(
        "/v1/gift-cards/batch", {"count": 5, "amount": 300_000, "pattern": "NY-####-####"}
    )
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["count"] == 5 and len({c["code"] for c in batch["cards"]}) == 5
    assert all(c["code"].startswith("NY-") and c["balance"] == 300_000 for c in batch["cards"])
    problem(await api.post("/v1/gift-cards/batch", {"count": 2, "amount": 1, "pattern": "AB"}), 422)
    qr = await api.get(f"/v1/gift-cards/{batch['cards'][0]['code']}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in qr.text
    assert (await api.get("/v1/gift-cards/NOT-A-CARD/qr.svg")).status_code == 404
    await assert_cards_sound(engine, program)


async def test_a_members_wallet(
    api: Api, http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await new_member(api)
    wallet = f"/v1/members/{member['id']}/wallet"
    empty = (await api.get(wallet)).json()
    assert empty == {
        "member_id": member["id"],
        "id": None,
        "code": None,
        "currency": "RUB",
        "balance": 0,
        "available": 0,
        "status": "active",
        "updated_at": None,
    }
    assert (await api.get(f"{wallet}/transactions")).json() == {"items": [], "next_cursor": None}
    till = await as_scope(http, engine, program, "pos")
    problem(await till.post(f"{wallet}/payments", {"amount": 1}), 422, "amount")
    topped = await till.post(f"{wallet}/top-ups", {"amount": 50_000, "external_id": "cash-1"})
    assert topped.status_code == 201, topped.text
    assert topped.json()["card"]["kind"] == "wallet"
    replay = await till.post(f"{wallet}/top-ups", {"amount": 50_000, "external_id": "cash-1"})
    assert replay.json() == topped.json()
    paid = await till.post(f"{wallet}/payments", {"amount": 60_000, "allow_partial": True})
    assert paid.status_code == 201 and paid.json()["transaction"]["amount"] == -50_000
    payment_id = paid.json()["transaction"]["id"]
    back = await till.post(f"{wallet}/refunds", {"payment_id": payment_id, "amount": 20_000})
    assert back.status_code == 201 and back.json()["card"]["balance"] == 20_000
    over = await till.post(f"{wallet}/refunds", {"payment_id": payment_id, "amount": 30_001})
    assert problem(over, 422, "amount")["refundable"] == 30_000
    read = (await api.get(wallet)).json()
    assert (read["balance"], read["id"]) == (20_000, topped.json()["card"]["id"])
    kinds = [t["kind"] for t in (await api.get(f"{wallet}/transactions")).json()["items"]]
    assert kinds == ["refund", "payment", "top_up"]
    await api.post(f"/v1/members/{member['id']}/block", {"reason": "fraud check"})
    problem(await till.post(f"{wallet}/payments", {"amount": 1}), 403, "member_id")
    unknown = "/v1/members/01900000-0000-7000-8000-000000000000/wallet"
    problem(await api.get(unknown), 404, "member_id")
    keyed = await till.post(f"{unknown}/top-ups", {"amount": 1}, **{"Idempotency-Key": "u-1"})
    problem(keyed, 404, "member_id")
    wallet_code = topped.json()["card"]["code"]
    problem(await api.get(f"/v1/gift-cards/{wallet_code}"), 404, "code")
    await assert_cards_sound(engine, program)


async def test_a_members_gift_cards_in_pages(api: Api) -> None:
    member = await new_member(api)
    codes = [(await new_card(api, 100 * n, member_id=member["id"]))["code"] for n in (1, 2, 3)]
    await new_card(api, 400)
    page = (await api.get(f"/v1/members/{member['id']}/gift-cards", limit=2)).json()
    rest = (
        await api.get(f"/v1/members/{member['id']}/gift-cards", limit=2, cursor=page["next_cursor"])
    ).json()
    assert [c["code"] for c in page["items"] + rest["items"]] == codes[::-1]
    assert rest["next_cursor"] is None
    stranger = {"amount": 1, "member_id": "01900000-0000-7000-8000-000000000000"}
    problem(await api.post("/v1/gift-cards", stranger), 404, "member_id")


async def test_patterns_and_cursors_that_could_never_work_are_refused(api: Api) -> None:
    slash = await api.post(
        "/v1/gift-cards/batch", {"count": 1, "amount": 100, "pattern": "GC/####-####-####"}
    )
    assert slash.status_code == 422, slash.text
    card = await new_card(api)
    huge = base64.urlsafe_b64encode(b"seq:99999999999999999999999").decode()
    page = await api.get(f"/v1/gift-cards/{card['code']}/transactions", cursor=huge)
    assert page.status_code == 422 and page.json()["errors"][0]["field"] == "cursor"
