"""Refunds of completed one-step redemptions: the pure maths, random sequences that keep
every member invariant, and the service on both databases with the ledger verifier."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.errors import Conflict, InsufficientBalance, InvalidInput
from kopilka.kit.clock import clock
from kopilka.ledger import tasks
from kopilka.ledger.domain import (
    MEMBER_ACCOUNTS,
    Account,
    Allocation,
    Balance,
    Lot,
    Posting,
    check_member,
    earn,
    entry_is_balanced,
    expire,
    redeem,
    refund,
    reverse,
)
from kopilka.ledger.redemptions import points_redemption_service
from kopilka.ledger.service import ledger_service
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body
from tests.purchases.test_endpoints import assert_ledger_sound

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def lot(amount: int, n: int, *, expires_at: datetime | None = None) -> Lot:
    return Lot(UUID(int=n), amount, amount, "available", T0, T0, expires_at)


def by_id(lots: list[Lot]) -> dict[UUID, Lot]:
    return {item.id: item for item in lots}


# -- the pure refund --------------------------------------------------------------------------


def test_a_refund_gives_each_allocation_back_to_its_lot() -> None:
    lots = [lot(100, 1, expires_at=T0 + 10 * DAY), lot(100, 2, expires_at=T0 + 20 * DAY)]
    balance = Balance(available=200)
    _, allocations = redeem(balance, lots, 150)
    assert [x.remaining for x in lots] == [0, 50]

    postings = refund(balance, by_id(lots), allocations, 150)

    assert postings == [Posting(Account.REDEEMED, -150), Posting(Account.AVAILABLE, 150)]
    assert entry_is_balanced(postings)
    assert [x.remaining for x in lots] == [100, 100]
    assert balance == Balance(available=200)
    assert check_member(balance, lots, []) == []


def test_a_lot_expired_meanwhile_gets_its_points_back_and_the_expiry_job_takes_them() -> None:
    soon, later = lot(100, 1, expires_at=T0 + DAY), lot(100, 2, expires_at=T0 + 30 * DAY)
    lots = [soon, later]
    balance = Balance(available=200)
    _, allocations = redeem(balance, lots, 120)  # all of soon, 20 of later
    expire(balance, lots, T0 + 2 * DAY)  # nothing left in soon to expire
    assert balance.available == 80

    refund(balance, by_id(lots), allocations, 120)
    assert (soon.remaining, later.remaining, balance.available) == (100, 100, 200)
    assert check_member(balance, lots, []) == []

    postings = expire(balance, lots, T0 + 2 * DAY)
    assert postings == [Posting(Account.AVAILABLE, -100), Posting(Account.EXPIRED, 100)]
    assert (soon.remaining, balance.available) == (0, 100)
    assert check_member(balance, lots, []) == []


def test_a_refund_pays_off_a_clawback_debt_before_refilling_lots() -> None:
    early, late = lot(100, 1, expires_at=T0 + 5 * DAY), lot(100, 2, expires_at=T0 + 50 * DAY)
    lots = [early, late]
    balance = Balance(available=200)
    _, allocations = redeem(balance, lots, 150)  # early 100, late 50
    # A return claws back 80 of a purchase whose points were spent: 30 from late, 50 debt.
    result = reverse(balance, [], lots, 80, "allow_negative")
    assert result.reversed == 80 and balance.available == -30
    assert late.remaining == 0

    refund(balance, by_id(lots), allocations, 150)

    assert balance.available == 120
    # 30 paid the debt; the latest-taken allocation (the later lot) was filled first.
    assert (early.remaining, late.remaining) == (70, 50)
    assert check_member(balance, lots, []) == []


def test_a_refund_smaller_than_the_debt_fills_no_lot() -> None:
    lots = [lot(10, 1)]
    balance = Balance(available=10)
    _, allocations = redeem(balance, lots, 10)
    reverse(balance, [], lots, 50, "allow_negative")
    assert balance.available == -50
    refund(balance, by_id(lots), allocations, 10)
    assert balance.available == -40 and lots[0].remaining == 0
    assert check_member(balance, lots, []) == []


def test_a_refund_of_nothing_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        refund(Balance(), {}, [], 0)


# -- random sequences -------------------------------------------------------------------------


@dataclass
class Completed:
    amount: int
    allocations: list[Allocation]


@settings(max_examples=150, stateful_step_count=40, deadline=None)
class RefundMachine(RuleBasedStateMachine):
    """One member, one currency: earn, redeem, refund, return and expire in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.balance = Balance()
        self.lots: list[Lot] = []
        self.redemptions: dict[int, Completed] = {}
        self.postings: list[Posting] = []
        self.earned = 0
        self.refunded = 0
        self.spent = 0
        self._ids = 0

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _record(self, postings: list[Posting]) -> None:
        assert entry_is_balanced(postings)
        self.postings += postings

    @rule(amount=st.integers(1, 300), expires_in=st.none() | st.integers(1, 40))
    def earn(self, amount: int, expires_in: int | None) -> None:
        expires_at = None if expires_in is None else self.now + expires_in * DAY
        postings, new = earn(
            self.balance,
            lot_id=UUID(int=self._next_id()),
            amount=amount,
            now=self.now,
            available_at=self.now,
            expires_at=expires_at,
            source_id=f"p{self._ids}",
            rule_id="base",
        )
        self._record(postings)
        self.lots.append(new)
        self.earned += amount

    @rule(data=st.data())
    def redeem(self, data: st.DataObject) -> None:
        available = max(self.balance.available, 0)
        amount = data.draw(st.integers(1, available + 10) | st.just(max(available, 1)))
        before = (copy.copy(self.balance), [(x.id, x.remaining) for x in self.lots])
        try:
            postings, allocations = redeem(self.balance, self.lots, amount)
        except InsufficientBalance:
            assert (self.balance, [(x.id, x.remaining) for x in self.lots]) == before
            return
        self._record(postings)
        self.redemptions[self._next_id()] = Completed(amount, allocations)
        self.spent += amount

    @precondition(lambda self: bool(self.redemptions))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.redemptions)))
        done = self.redemptions.pop(key)
        available_before = self.balance.available
        remaining_before = {x.id: x.remaining for x in self.lots}
        postings = refund(self.balance, by_id(self.lots), done.allocations, done.amount)
        self._record(postings)
        self.refunded += done.amount
        assert self.balance.available == available_before + done.amount
        if available_before >= 0:
            # No debt: every allocation is back in its lot, exactly.
            for allocation in done.allocations:
                remaining_before[allocation.lot_id] += allocation.amount
            assert {x.id: x.remaining for x in self.lots} == remaining_before

    @precondition(lambda self: bool(self.lots))
    @rule(data=st.data(), amount=st.integers(1, 400))
    def return_purchase(self, data: st.DataObject, amount: int) -> None:
        own = data.draw(st.sampled_from(self.lots))
        others = [x for x in self.lots if x is not own]
        result = reverse(self.balance, [own], others, min(amount, own.amount), "allow_negative")
        self._record(result.postings)

    @rule(days=st.integers(1, 20))
    def advance_and_expire(self, days: int) -> None:
        self.now += days * DAY
        self._record(expire(self.balance, self.lots, self.now))

    @invariant()
    def member_invariants_hold(self) -> None:
        assert check_member(self.balance, self.lots, []) == []

    @invariant()
    def balance_is_the_sum_of_member_postings(self) -> None:
        totals: Counter[Account] = Counter()
        for posting in self.postings:
            totals[posting.account] += posting.amount
        assert self.balance.available == totals[Account.AVAILABLE]
        assert sum(totals[a] for a in MEMBER_ACCOUNTS) == -sum(
            totals[a] for a in Account if a not in MEMBER_ACCOUNTS
        )
        # Redeemed holds what was spent and not refunded, never more.
        assert totals[Account.REDEEMED] == self.spent - self.refunded >= 0

    @invariant()
    def no_lot_holds_more_than_it_was_given(self) -> None:
        assert all(0 <= x.remaining <= x.amount for x in self.lots)


TestRefundMachine = RefundMachine.TestCase


# -- the service, both databases --------------------------------------------------------------


async def _spend(api: Api, amount: int, **extra: object) -> tuple[str, str]:
    body = member_body()
    member = (await api.post("/v1/members", body)).json()
    bought = await api.post(
        "/v1/purchases",
        purchase_body(body["external_id"], 100_000, occurred_at=clock.now().isoformat()),
    )
    assert bought.status_code == 201, bought.text
    spent = await api.post(
        "/v1/redemptions", {"member": {"id": member["id"]}, "amount": amount, **extra}
    )
    assert spent.status_code == 201, spent.text
    return member["id"], spent.json()["id"]


async def test_refund_restores_the_balance_and_the_ledger_stays_sound(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member_id, redemption_id = await _spend(api, 600)
    async with transaction(engine) as conn:
        view = await points_redemption_service.refund_redemption(
            conn, program, UUID(redemption_id), clock.now(), "reward cancelled"
        )
    assert view.row["status"] == "refunded"
    assert view.balance.available == 1_000
    balance = (await api.get(f"/v1/members/{member_id}/balance")).json()
    assert balance["balances"][0]["available"] == 1_000
    history = (await api.get(f"/v1/members/{member_id}/history")).json()["items"]
    assert history[0]["kind"] == "refund"
    assert history[0]["reason"] == "reward cancelled"
    assert history[0]["reference_id"] == redemption_id
    assert history[0]["changes"] == [
        {"currency": "points", "account": "available", "amount": 600, "rule_id": None}
    ]
    await assert_ledger_sound(engine, program)

    # Once only: a second refund, or a refund of a hold, is a conflict and moves nothing.
    with pytest.raises(Conflict, match="refunded"):
        async with transaction(engine) as conn:
            await points_redemption_service.refund_redemption(
                conn, program, UUID(redemption_id), clock.now(), None
            )
    _, hold_id = await _spend(api, 100, mode="hold")
    with pytest.raises(Conflict, match="held"):
        async with transaction(engine) as conn:
            await points_redemption_service.refund_redemption(
                conn, program, UUID(hold_id), clock.now(), None
            )
    async with reading(engine) as conn:
        balances = await ledger_service.balances(conn, program, UUID(member_id))
    assert balances["points"].available == 1_000
    await assert_ledger_sound(engine, program)


async def test_refund_after_the_points_expired_gives_them_back_to_expire_again(
    api: Api, engine: AsyncEngine
) -> None:
    program = await make_program(engine, expiry={"policy": "days", "days": 10})
    api = Api(api.client, await make_key(engine, program))
    t0 = datetime(2026, 2, 1, 9, tzinfo=UTC)
    with clock.frozen(t0):
        member_id, redemption_id = await _spend(api, 400)
    report = await tasks.expire_points(engine, program.id, t0 + 11 * DAY)
    assert report.amount == 600  # what was not spent
    with clock.frozen(t0 + 12 * DAY):
        async with transaction(engine) as conn:
            view = await points_redemption_service.refund_redemption(
                conn, program, UUID(redemption_id), clock.now(), "late refund"
            )
    assert view.balance.available == 400
    await assert_ledger_sound(engine, program)
    report = await tasks.expire_points(engine, program.id, t0 + 13 * DAY)
    assert report.amount == 400
    async with reading(engine) as conn:
        balances = await ledger_service.balances(conn, program, UUID(member_id))
    assert balances["points"].available == 0
    await assert_ledger_sound(engine, program)
