"""Gift cards and wallets through the services, on SQLite and PostgreSQL."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.errors import (
    Conflict,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidInput,
    MemberBlocked,
    NotFound,
)
from kopilka.giftcards.audit import verify
from kopilka.giftcards.domain import DEFAULT_VALID_DAYS, GiftCardExpired
from kopilka.giftcards.repository import cards_t, transactions_t
from kopilka.giftcards.service import gift_card_service
from kopilka.giftcards.tasks import expire_gift_cards
from kopilka.giftcards.wallets import wallet_service
from kopilka.kit.ids import new_id
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import member_service
from kopilka.models import OutboxEvent
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from tests.conftest import make_program
from tests.fixtures.factories import member_body

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def assert_cards_sound(engine: AsyncEngine, program: ProgramContext) -> None:
    async with reading(engine, snapshot=True) as conn:
        problems = await verify(conn, program.id)
    assert problems == {name: [] for name in problems}


async def issue(
    engine: AsyncEngine, program: ProgramContext, amount: int = 10_000, **options: Any
) -> dict[str, Any]:
    async with transaction(engine) as conn:
        return await gift_card_service.issue_card(
            conn, program, amount=amount, now=options.pop("now", T0), **options
        )


async def new_member(engine: AsyncEngine, program: ProgramContext) -> UUID:
    async with transaction(engine) as conn:
        member = await member_service.register(
            conn, program, MemberCreate.model_validate(member_body()), T0
        )
    member_id: UUID = member.id
    return member_id


async def test_issue_keeps_its_contract(engine: AsyncEngine, program: ProgramContext) -> None:
    member_id = await new_member(engine, program)
    async with transaction(engine) as conn:
        card = await gift_card_service.issue(
            conn,
            program,
            amount=150_000,
            now=T0,
            member_id=member_id,
            valid_days=30,
            source=("reward_redemption", "rr-1"),
        )
    assert {"id", "code", "balance", "currency", "expires_at", "status"} <= set(card)
    assert isinstance(card["id"], UUID)
    assert re.fullmatch(r"GC-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", card["code"])
    assert (card["balance"], card["currency"], card["status"]) == (150_000, "RUB", "active")
    assert card["expires_at"] == T0 + timedelta(days=30)
    assert (card["member_id"], card["source_type"], card["source_id"]) == (
        member_id,
        "reward_redemption",
        "rr-1",
    )
    async with reading(engine) as conn:
        journal = await gift_card_service.transactions(
            conn, program, card["code"], limit=10, before_seq=None
        )
        events = (
            await conn.execute(
                select(table(OutboxEvent).c.topic, table(OutboxEvent).c.payload).where(
                    table(OutboxEvent).c.program_id == program.id,
                    table(OutboxEvent).c.topic.like("giftcard.%"),
                )
            )
        ).all()
    assert [(t["kind"], t["amount"], t["balance_after"], t["seq"]) for t in journal] == [
        ("issue", 150_000, 150_000, 1)
    ]
    assert [(topic, payload["code"]) for topic, payload in events] == [
        ("giftcard.issued", card["code"])
    ]
    await assert_cards_sound(engine, program)


async def test_default_expiry_and_never_expiring_cards(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    default = await issue(engine, program)
    assert default["expires_at"] == T0 + timedelta(days=DEFAULT_VALID_DAYS)
    forever = await issue(engine, program, never_expires=True)
    assert forever["expires_at"] is None


async def test_imported_codes_are_normalised_and_unique_per_program(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    card = await issue(engine, program, code="  shop-0001-card ")
    assert card["code"] == "SHOP-0001-CARD"
    with pytest.raises(Conflict) as error:
        await issue(engine, program, code="Shop-0001-Card")
    assert error.value.field == "code"
    other = await make_program(engine)
    assert (await issue(engine, other, code="SHOP-0001-CARD"))["code"] == "SHOP-0001-CARD"
    async with reading(engine) as conn:
        found = await gift_card_service.get(conn, program, "shop-0001-card", T0)
    assert found["id"] == card["id"]


async def test_issue_refuses_bad_input_and_unknown_members(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    with pytest.raises(InvalidInput) as amount:
        await issue(engine, program, amount=0)
    assert amount.value.field == "amount"
    with pytest.raises(NotFound) as member:
        await issue(engine, program, member_id=new_id())
    assert member.value.field == "member_id"
    with pytest.raises(InvalidInput) as source:
        await issue(engine, program, source=("x" * 40, "1"))
    assert source.value.field == "source"


async def test_pay_top_up_and_refund(engine: AsyncEngine, program: ProgramContext) -> None:
    card = await issue(engine, program, 10_000)
    code = card["code"]
    async with transaction(engine) as conn:
        paid = await gift_card_service.pay(
            conn, program, code, amount=4_000, now=T0, external_id="till-1", reference="P-1"
        )
        topped = await gift_card_service.top_up(conn, program, code, amount=500, now=T0)
        refund = await gift_card_service.refund(
            conn, program, code, now=T0, payment_id=paid.transaction["id"], amount=1_500
        )
        rest = await gift_card_service.refund(
            conn, program, code, now=T0, payment_external_id="till-1"
        )
    assert (paid.transaction["amount"], paid.card["balance"]) == (-4_000, 6_000)
    assert topped.card["balance"] == 6_500
    assert (refund.transaction["refund_of"], refund.card["balance"]) == (
        paid.transaction["id"],
        8_000,
    )
    assert (rest.transaction["amount"], rest.card["balance"]) == (2_500, 10_500)
    with pytest.raises(Conflict) as full:
        async with transaction(engine) as conn:
            await gift_card_service.refund(
                conn, program, code, now=T0, payment_id=paid.transaction["id"], amount=1
            )
    assert full.value.field == "payment_id"
    with pytest.raises(InsufficientBalance) as short:
        async with transaction(engine) as conn:
            await gift_card_service.pay(conn, program, code, amount=10_501, now=T0)
    assert short.value.extra == {"balance": 10_500}
    async with reading(engine) as conn:
        found = await gift_card_service.get(conn, program, code, T0)
    assert found["balance"] == 10_500
    await assert_cards_sound(engine, program)


async def test_a_refund_never_exceeds_its_payment(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    code = (await issue(engine, program, 1_000))["code"]
    async with transaction(engine) as conn:
        paid = await gift_card_service.pay(conn, program, code, amount=600, now=T0)
        await gift_card_service.refund(
            conn, program, code, now=T0, payment_id=paid.transaction["id"], amount=400
        )
    with pytest.raises(InvalidInput) as error:
        async with transaction(engine) as conn:
            await gift_card_service.refund(
                conn, program, code, now=T0, payment_id=paid.transaction["id"], amount=201
            )
    assert error.value.field == "amount" and error.value.extra == {"refundable": 200}
    other = (await issue(engine, program, 1_000))["code"]
    with pytest.raises(NotFound) as elsewhere:
        async with transaction(engine) as conn:
            await gift_card_service.refund(
                conn, program, other, now=T0, payment_id=paid.transaction["id"]
            )
    assert elsewhere.value.field == "payment_id"
    await assert_cards_sound(engine, program)


async def test_external_ids_make_movements_idempotent(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    code = (await issue(engine, program, 1_000))["code"]
    async with transaction(engine) as conn:
        first = await gift_card_service.pay(
            conn, program, code, amount=300, now=T0, external_id="sale-9"
        )
    async with transaction(engine) as conn:
        again = await gift_card_service.pay(
            conn, program, code, amount=300, now=T0, external_id="sale-9"
        )
    assert again.replayed and again.transaction == first.transaction
    assert again.card["balance"] == 700
    with pytest.raises(IdempotencyConflict) as error:
        async with transaction(engine) as conn:
            await gift_card_service.pay(
                conn, program, code, amount=301, now=T0, external_id="sale-9"
            )
    assert error.value.field == "external_id"
    # The same id on a top-up is another movement: ids are unique per card and kind.
    async with transaction(engine) as conn:
        topped = await gift_card_service.top_up(
            conn, program, code, amount=50, now=T0, external_id="sale-9"
        )
    assert not topped.replayed and topped.card["balance"] == 750
    await assert_cards_sound(engine, program)


async def test_expired_cards_refuse_payments_and_the_job_empties_them(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    soon = await issue(engine, program, 2_500, valid_days=10)
    empty = await issue(engine, program, 100, valid_days=10)
    lasting = await issue(engine, program, 900, valid_days=100)
    async with transaction(engine) as conn:
        paid = await gift_card_service.pay(conn, program, empty["code"], amount=100, now=T0)
    after = T0 + timedelta(days=10)
    async with reading(engine) as conn:
        seen = await gift_card_service.get(conn, program, soon["code"], after)
    assert (seen["status"], seen["balance"], seen["available"]) == ("expired", 2_500, 0)
    with pytest.raises(GiftCardExpired) as error:
        async with transaction(engine) as conn:
            await gift_card_service.pay(conn, program, soon["code"], amount=1, now=after)
    assert error.value.problem()["type"].endswith("/gift-card-expired")
    with pytest.raises(GiftCardExpired):
        async with transaction(engine) as conn:
            await gift_card_service.refund(
                conn, program, empty["code"], now=after, payment_id=paid.transaction["id"]
            )

    report = await expire_gift_cards(engine, program.id, after)
    assert (report.cards, report.amount) == (2, 2_500)
    assert (await expire_gift_cards(engine, program.id, after)).cards == 0
    async with reading(engine) as conn:
        closed = await gift_card_service.get(conn, program, soon["code"], after)
        journal = await gift_card_service.transactions(
            conn, program, soon["code"], limit=5, before_seq=None
        )
        still = await gift_card_service.get(conn, program, lasting["code"], after)
        nothing = await gift_card_service.get(conn, program, empty["code"], after)
    assert (closed["status"], closed["balance"]) == ("expired", 0)
    assert [(t["kind"], t["amount"], t["balance_after"]) for t in journal] == [
        ("expiry", -2_500, 0),
        ("issue", 2_500, 2_500),
    ]
    assert (still["status"], still["balance"]) == ("active", 900)
    assert (nothing["status"], nothing["balance"]) == ("expired", 0)
    await assert_cards_sound(engine, program)


async def test_disabled_cards_keep_their_money_and_take_refunds(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    code = (await issue(engine, program, 1_000))["code"]
    async with transaction(engine) as conn:
        paid = await gift_card_service.pay(conn, program, code, amount=400, now=T0)
        disabled = await gift_card_service.update(conn, program, code, now=T0, status="disabled")
    assert (disabled["status"], disabled["available"]) == ("disabled", 0)
    with pytest.raises(Conflict) as error:
        async with transaction(engine) as conn:
            await gift_card_service.pay(conn, program, code, amount=1, now=T0)
    assert error.value.type_slug == "gift-card-disabled"
    async with transaction(engine) as conn:
        refunded = await gift_card_service.refund(
            conn, program, code, now=T0, payment_id=paid.transaction["id"]
        )
        later = T0 + timedelta(days=1000)
        extended = await gift_card_service.update(
            conn, program, code, now=T0, status="active", expires_at=later
        )
    assert refunded.card["balance"] == 1_000
    assert (extended["status"], extended["expires_at"]) == ("active", later)
    await assert_cards_sound(engine, program)


async def test_bulk_issue_draws_unique_codes_from_the_pattern(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    async with transaction(engine) as conn:
        cards = await gift_card_service.issue_many(
            conn, program, count=150, amount=5_000, now=T0, pattern="XMAS-####-####"
        )
    codes = {c["code"] for c in cards}
    assert len(codes) == 150 and all(re.fullmatch(r"XMAS-\w{4}-\w{4}", c) for c in codes)
    # Four random places leave 31⁴ / 1000 = 923 hard-to-guess codes, the codes of earlier
    # batches included.
    async with transaction(engine) as conn:
        await gift_card_service.issue_many(
            conn, program, count=500, amount=5_000, now=T0, pattern="SMALL-####"
        )
    with pytest.raises(InvalidInput) as error:
        async with transaction(engine) as conn:
            await gift_card_service.issue_many(
                conn, program, count=500, amount=5_000, now=T0, pattern="SMALL-####"
            )
    assert error.value.field == "pattern" and "500 codes in use" in error.value.detail
    with pytest.raises(InvalidInput) as count:
        async with transaction(engine) as conn:
            await gift_card_service.issue_many(conn, program, count=0, amount=5_000, now=T0)
    assert count.value.field == "count"
    await assert_cards_sound(engine, program)


async def test_the_database_refuses_a_negative_balance_and_a_second_wallet(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    card = await issue(engine, program, 100)
    with pytest.raises(IntegrityError):
        async with transaction(engine) as conn:
            await conn.execute(update(cards_t).where(cards_t.c.id == card["id"]).values(balance=-1))
    member_id = await new_member(engine, program)
    async with transaction(engine) as conn:
        await wallet_service.top_up(conn, program, member_id, amount=100, now=T0)
    async with reading(engine) as conn:
        wallet = (await conn.execute(select(cards_t).where(cards_t.c.member_id == member_id))).one()
    with pytest.raises(IntegrityError):
        async with transaction(engine) as conn:
            await conn.execute(
                insert(cards_t).values(
                    {**wallet._mapping, "id": new_id(), "code": "W-SECOND-WALLET"}
                )
            )


async def test_the_conditional_update_alone_never_goes_below_zero(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    card = await issue(engine, program, 500)
    repository = gift_card_service.repository
    async with transaction(engine) as conn:
        # No lock taken: the update's own condition is the guard.
        assert await repository.debit(conn, card["id"], 400, T0) == (100, 2)
        assert await repository.debit(conn, card["id"], 101, T0) is None
        assert await repository.debit(conn, card["id"], 100, T0 + timedelta(days=400)) is None


async def test_verify_names_a_tampered_card(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    card = await issue(engine, program, 1_000)
    await assert_cards_sound(engine, program)
    async with transaction(engine) as conn:
        await conn.execute(update(cards_t).where(cards_t.c.id == card["id"]).values(balance=999))
        await conn.execute(
            update(transactions_t)
            .where(transactions_t.c.card_id == card["id"])
            .values(amount=-5, kind="top_up")
        )
    async with reading(engine) as conn:
        problems = await verify(conn, program.id)
    assert problems["balances equal transactions"] == [
        f"card {card['id']}: balance 999 and sequence 1 != transactions summing to -5 in 1 entries"
    ]
    assert len(problems["journal replays to every balance"]) == 1
    assert len(problems["amounts fit their kinds"]) == 1


async def test_a_wallet_opens_on_the_first_top_up(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    member_id = await new_member(engine, program)
    async with reading(engine) as conn:
        before = await wallet_service.get(conn, program, member_id, T0)
    assert (before["id"], before["balance"], before["currency"]) == (None, 0, "RUB")
    with pytest.raises(InsufficientBalance):
        async with transaction(engine) as conn:
            await wallet_service.pay(conn, program, member_id, amount=1, now=T0)
    async with transaction(engine) as conn:
        first = await wallet_service.top_up(conn, program, member_id, amount=3_000, now=T0)
        second = await wallet_service.top_up(conn, program, member_id, amount=2_000, now=T0)
        paid = await wallet_service.pay(
            conn, program, member_id, amount=4_500, now=T0, external_id="order-1"
        )
        back = await wallet_service.refund(
            conn, program, member_id, now=T0, payment_external_id="order-1", amount=500
        )
    assert first.card["id"] == second.card["id"] and first.card["kind"] == "wallet"
    assert first.card["expires_at"] is None and first.card["code"].startswith("W-")
    assert (paid.card["balance"], back.card["balance"]) == (500, 1_000)
    async with reading(engine) as conn:
        wallet = await wallet_service.get(conn, program, member_id, T0 + timedelta(days=9999))
        journal = await wallet_service.transactions(
            conn, program, member_id, limit=2, before_seq=None
        )
        count = await conn.scalar(
            select(func.count()).select_from(cards_t).where(cards_t.c.member_id == member_id)
        )
    assert (wallet["balance"], wallet["status"], count) == (1_000, "active", 1)
    assert [t["kind"] for t in journal] == ["refund", "payment"]
    await assert_cards_sound(engine, program)


async def test_a_blocked_member_neither_tops_up_nor_pays_but_gets_refunds(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    member_id = await new_member(engine, program)
    async with transaction(engine) as conn:
        await wallet_service.top_up(conn, program, member_id, amount=1_000, now=T0)
        paid = await wallet_service.pay(conn, program, member_id, amount=600, now=T0)
        await member_service.set_status(conn, program, member_id, "blocked", "fraud check", T0)
    for operation in (wallet_service.top_up, wallet_service.pay):
        with pytest.raises(MemberBlocked) as error:
            async with transaction(engine) as conn:
                await operation(conn, program, member_id, amount=100, now=T0)
        assert error.value.field == "member_id"
    async with transaction(engine) as conn:
        back = await wallet_service.refund(
            conn, program, member_id, now=T0, payment_id=paid.transaction["id"]
        )
    assert back.card["balance"] == 1_000
    with pytest.raises(NotFound) as unknown:
        async with reading(engine) as conn:
            await wallet_service.get(conn, program, new_id(), T0)
    assert unknown.value.field == "member_id"
