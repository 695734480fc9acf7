"""Concurrency on PostgreSQL: real row locks, many connections at once.

Nothing lost, nothing doubled: many tills paying with one card, refunds of one payment
racing each other, retries of one payment racing their first attempt, payments racing the
expiry job, first top-ups of one wallet racing each other.
"""

import asyncio
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.app import create_app
from kopilka.db import reading, run_in_transaction
from kopilka.giftcards.repository import cards_t, transactions_t
from kopilka.giftcards.service import gift_card_service
from kopilka.giftcards.tasks import expire_gift_cards
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.giftcards.test_service import assert_cards_sound
from tests.purchases.test_endpoints import new_member

pytestmark = pytest.mark.postgres


async def _api(pg_engine: AsyncEngine) -> tuple[Api, ProgramContext, httpx.AsyncClient]:
    program = await make_program(pg_engine)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(engine=pg_engine)),
        base_url="http://kopilka.test",
    )
    return Api(client, await make_key(pg_engine, program)), program, client


async def _card(api: Api, amount: int, **options: Any) -> dict[str, Any]:
    response = await api.post("/v1/gift-cards", {"amount": amount, **options})
    assert response.status_code == 201, response.text
    card: dict[str, Any] = response.json()
    return card


async def _journal(pg_engine: AsyncEngine, card_id: str) -> list[tuple[str, int]]:
    async with reading(pg_engine) as conn:
        rows = await conn.execute(
            select(transactions_t.c.kind, transactions_t.c.amount)
            .where(transactions_t.c.card_id == card_id)
            .order_by(transactions_t.c.seq)
        )
        return [(kind, int(amount)) for kind, amount in rows]


async def test_twenty_tills_paying_with_one_card(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        card = await _card(api, 5_000)
        responses = await asyncio.gather(
            *(
                api.post(f"/v1/gift-cards/{card['code']}/payments", {"amount": 300})
                for _ in range(20)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(201) == 16  # 16 × 300 = 4,800 ≤ 5,000 < 17 × 300
        assert statuses.count(422) == 4
        balance = (await api.get(f"/v1/gift-cards/{card['code']}")).json()["balance"]
        assert balance == 200
        # Each successful till saw the balance the one before it left.
        after = sorted(r.json()["transaction"]["balance_after"] for r in responses if r.is_success)
        assert after == list(range(200, 5_000, 300))
    journal = await _journal(pg_engine, card["id"])
    assert sum(amount for _, amount in journal) == balance
    await assert_cards_sound(pg_engine, program)


async def test_refunds_of_one_payment_racing_each_other(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        card = await _card(api, 2_000)
        paid = await api.post(f"/v1/gift-cards/{card['code']}/payments", {"amount": 1_000})
        payment_id = paid.json()["transaction"]["id"]
        responses = await asyncio.gather(
            *(
                api.post(
                    f"/v1/gift-cards/{card['code']}/refunds",
                    {"payment_id": payment_id, "amount": 300},
                )
                for _ in range(10)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(201) == 3  # 3 × 300 = 900 ≤ 1,000 < 4 × 300
        assert statuses.count(422) == 7
        rest = await api.post(f"/v1/gift-cards/{card['code']}/refunds", {"payment_id": payment_id})
        assert rest.json()["transaction"]["amount"] == 100
        assert rest.json()["card"]["balance"] == 2_000
    await assert_cards_sound(pg_engine, program)


async def test_retries_of_one_payment_move_money_once(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        card = await _card(api, 10_000)
        by_id = {"amount": 1_234, "external_id": "till-3:receipt-77"}
        by_key = {"amount": 766}
        responses = await asyncio.gather(
            *(api.post(f"/v1/gift-cards/{card['code']}/payments", by_id) for _ in range(10)),
            *(
                api.post(
                    f"/v1/gift-cards/{card['code']}/payments", by_key, **{"Idempotency-Key": "r-1"}
                )
                for _ in range(10)
            ),
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["transaction"]["id"] for r in responses[:10]}) == 1
        assert len({r.json()["transaction"]["id"] for r in responses[10:]}) == 1
        balance = (await api.get(f"/v1/gift-cards/{card['code']}")).json()["balance"]
        assert balance == 8_000
    assert [kind for kind, _ in await _journal(pg_engine, card["id"])] == [
        "issue",
        "payment",
        "payment",
    ]
    await assert_cards_sound(pg_engine, program)


async def test_payments_racing_the_expiry_job(pg_engine: AsyncEngine) -> None:
    t0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
    api, program, client = await _api(pg_engine)
    async with client, AsyncExitStack() as frame:
        # One frozen frame for the whole race: the tills pay a day after issue, while the
        # cards are valid; the job closes what is due eleven days after issue, which is every
        # card. Each card ends as one of the two serial orders would leave it.
        frame.enter_context(clock.frozen(t0))
        cards = [await _card(api, 1_000, valid_days=10) for _ in range(20)]
        frame.enter_context(clock.frozen(t0 + timedelta(days=1)))
        assert {(await api.get(f"/v1/gift-cards/{c['code']}")).json()["status"] for c in cards} == {
            "active"
        }
        expire = expire_gift_cards(pg_engine, program.id, t0 + timedelta(days=11), chunk=3)

        async def pay(card: dict[str, Any], after: int) -> httpx.Response:
            # Tills arrive one after another, the last-issued card first, while the job
            # works from the first-issued one: the two meet somewhere in between.
            for _ in range(after):
                await asyncio.sleep(0)
            return await api.post(f"/v1/gift-cards/{card['code']}/payments", {"amount": 600})

        tills = [pay(card, 20 * (len(cards) - n)) for n, card in enumerate(cards)]
        report, responses = await asyncio.gather(expire, asyncio.gather(*tills))
        assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
        paid = [r.status_code == 201 for r in responses]
        # The race was real: some tills got in before the job closed their card.
        assert any(paid), "every payment came after the job: nothing raced"
        assert report.cards == 20
        # Every kopeck was either paid before its card expired or taken by the expiry.
        assert 600 * sum(paid) + report.amount == 20 * 1_000
        for card, was_paid, response in zip(cards, paid, responses, strict=True):
            journal = await _journal(pg_engine, card["id"])
            if was_paid:  # paid, then the job took the rest
                assert journal == [("issue", 1_000), ("payment", -600), ("expiry", -400)]
            else:  # closed first, so the till was refused: the card had expired
                assert journal == [("issue", 1_000), ("expiry", -1_000)]
                assert response.json()["type"].endswith("gift-card-expired"), response.text
            read = (await api.get(f"/v1/gift-cards/{card['code']}")).json()
            assert (read["status"], read["balance"]) == ("expired", 0)
            assert sum(amount for _, amount in journal) == read["balance"]
            # Closed for good: its date is still in the future here, yet it cannot be paid.
            late = await api.post(f"/v1/gift-cards/{card['code']}/payments", {"amount": 1})
            assert late.status_code == 409, late.text
    await assert_cards_sound(pg_engine, program)


async def test_first_top_ups_of_one_wallet_open_one_wallet(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        member = await new_member(api)
        wallet = f"/v1/members/{member['id']}/wallet"
        responses = await asyncio.gather(
            *(api.post(f"{wallet}/top-ups", {"amount": 100 * (n + 1)}) for n in range(10))
        )
        assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
        assert len({r.json()["card"]["id"] for r in responses}) == 1
        assert (await api.get(wallet)).json()["balance"] == 100 * 55
    async with reading(pg_engine) as conn:
        count = await conn.scalar(
            select(func.count()).select_from(cards_t).where(cards_t.c.member_id == member["id"])
        )
    assert count == 1
    await assert_cards_sound(pg_engine, program)


async def test_the_conditional_update_holds_without_the_lock(pg_engine: AsyncEngine) -> None:
    """Debits that skip the row lock altogether still cannot take a card below zero: each
    update waits for the one before it and sees the balance it left."""
    program = await make_program(pg_engine)
    async with pg_engine.begin() as conn:
        card = await gift_card_service.issue(conn, program, amount=1_000, now=clock.now())

    async def debit(conn: AsyncConnection) -> tuple[int, int] | None:
        return await gift_card_service.repository.debit(conn, card["id"], 70, clock.now())

    moved = await asyncio.gather(*(run_in_transaction(pg_engine, debit) for _ in range(30)))
    done = [m for m in moved if m is not None]
    assert len(done) == 14  # 14 × 70 = 980 ≤ 1,000 < 15 × 70
    assert sorted(balance for balance, _ in done) == list(range(20, 1_000, 70))
    assert sorted(seq for _, seq in done) == list(range(2, 16))
    async with reading(pg_engine) as conn:
        balance = await conn.scalar(select(cards_t.c.balance).where(cards_t.c.id == card["id"]))
    assert balance == 20
