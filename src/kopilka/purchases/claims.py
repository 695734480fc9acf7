"""Claims: a member takes a purchase recorded without a member, by its receipt id, and earns
on it what showing their card at the till would have earned.

- Only within the program's ``claim_window_days`` of the purchase (that moment included);
  a window of 0 lets no purchase be claimed.
- The rules are those of the program version in force when the purchase was made; the
  member is seen as they are at the claim (facts, tags, segments, tier; a ladder changed
  since is today's ladder, since the tier is the member's present state).
- Points are dated from the purchase, as at the till and in imports: pending for the
  program's pending days from the purchase, expiring as lots earned then expire (released,
  or expired, at once if that time is past).
- A basket partly returned before the claim earns as if the card had been shown and the
  returns made after: the whole basket earns, and the returned share is taken back at once
  (one return entry, dated at the claim). A basket returned in full cannot be claimed.
- The claim counts for the member's tier and history like the purchase it is; the purchase,
  its lines and its returns become the member's.

Locks, in the house order: the member (``LedgerService.lock``), then the purchase's row, so
of two members claiming one receipt at once exactly one wins and the other is refused.
Idempotent: the same member claiming again gets the first answer (kept on the purchase);
an ``Idempotency-Key`` is honoured as on every value-moving request. Never commits.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.earning.answers import balances_out
from kopilka.earning.schemas import BenefitOut, EarnedOut
from kopilka.earning.service import Applied, EarningService, earning_service
from kopilka.errors import Conflict, Forbidden, NotFound
from kopilka.idempotency.service import IdempotencyStore, idempotency_store, replay, request_hash
from kopilka.kit.clock import as_utc
from kopilka.ledger.domain import Balance, BalanceKey, Reversal, proportional_share
from kopilka.ledger.service import LedgerService, earned_by_currency, ledger_service
from kopilka.ledger.unit import ledger_changes
from kopilka.members.service import MemberService, member_service
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext, ProgramService, program_service
from kopilka.purchases.batches import Outcome
from kopilka.purchases.domain import claim_deadline
from kopilka.purchases.repository import PurchaseRepository, purchase_repository
from kopilka.purchases.schemas import ClaimCreate, ClaimResult, ReversedOut
from kopilka.purchases.simulation import replay_event
from kopilka.rules.registry import compile_program
from kopilka.tiers.schemas import TierOutcome
from kopilka.tiers.service import tier_service


def claim_key(idempotency_key: str) -> str:
    return f"purchase-claim:{idempotency_key}"


def refused(detail: str, reason: str) -> Conflict:
    return Conflict(detail, field="receipt", reason=reason)


class ClaimService:
    def __init__(
        self,
        repository: PurchaseRepository = purchase_repository,
        ledger: LedgerService = ledger_service,
        members: MemberService = member_service,
        earning: EarningService = earning_service,
        programs: ProgramService = program_service,
        idempotency: IdempotencyStore = idempotency_store,
    ) -> None:
        self.repository = repository
        self.ledger = ledger
        self.members = members
        self.earning = earning
        self.programs = programs
        self.idempotency = idempotency

    async def claim(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        request: ClaimCreate,
        now: datetime,
        *,
        idempotency_key: str | None = None,
        may_act_at: Callable[[str | None], bool] | None = None,
    ) -> Outcome:
        """Give the purchase with external id ``request.receipt`` to the member named, and
        credit what it earns (a :class:`ClaimResult`, status 201). Refused, changing
        nothing: no such purchase or member (404), a store the caller may not act at (403),
        a purchase another member has, claimed or not, the window closed or a purchase
        returned in full (409, ``reason`` says which)."""
        member_id, status = await self.members.resolve(conn, program, request.member)
        balances = await self.ledger.lock(conn, program, [member_id], now)
        key = claim_key(idempotency_key) if idempotency_key is not None else None
        hash_ = request_hash(request.model_dump(mode="json"))
        if key is not None and (record := await self.idempotency.find(conn, program.id, key)):
            answer = replay(record, hash_, idempotency_key or "")
            return Outcome(answer.status_code, answer.body, replayed=True)
        outcome = await self._claim(
            conn, program, request, member_id, status, balances, now, may_act_at
        )
        if key is not None and outcome.result is not None:
            row = self.idempotency.row(program.id, key, hash_, 201, outcome.result, now)
            await self.idempotency.insert(conn, [row])
        return outcome

    async def _claim(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        request: ClaimCreate,
        member_id: UUID,
        status: str,
        balances: dict[BalanceKey, Balance],
        now: datetime,
        may_act_at: Callable[[str | None], bool] | None = None,
    ) -> Outcome:
        found = await self.repository.purchase_by_external_id(conn, program.id, request.receipt)
        if found is None:
            raise NotFound(f"no purchase {request.receipt!r}", field="receipt")
        if may_act_at is not None and not may_act_at(found.store):
            where = f"store {found.store!r}" if found.store is not None else "no store"
            raise Forbidden(f"this staff member may not act on purchases at {where}", field="store")
        # After the member lock: the purchase's row at its newest version, locked.
        purchase = await self.repository.lock_purchase(conn, found.id)
        if purchase.member_id == member_id and purchase.claimed_at is not None:
            return Outcome(201, purchase.answer, replayed=True)
        self._ensure_claimable(program, purchase, now)
        return await self._earn(conn, program, purchase, member_id, status, balances, now)

    def _ensure_claimable(self, program: ProgramContext, purchase: Any, now: datetime) -> None:
        receipt = purchase.external_id
        if purchase.member_id is not None:
            if purchase.claimed_at is not None:
                raise refused(f"purchase {receipt!r} was claimed by another member", "claimed")
            raise refused(f"purchase {receipt!r} was recorded with a member", "has_member")
        deadline = claim_deadline(as_utc(purchase.occurred_at), program.settings.claim_window_days)
        if deadline is None:
            raise refused("the program lets no purchase be claimed", "claims_closed")
        if now > deadline:
            raise refused(
                f"purchase {receipt!r} could be claimed until {deadline.isoformat()}",
                "claim_window_closed",
            )
        if purchase.total > 0 and purchase.returned_amount >= purchase.total:
            raise refused(f"purchase {receipt!r} was returned in full", "returned")

    async def _earn(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchase: Any,
        member_id: UUID,
        status: str,
        balances: dict[BalanceKey, Balance],
        now: datetime,
    ) -> Outcome:
        stored = await self.repository.stored_purchase(conn, purchase)
        rules = await self._rules_at(conn, program, stored.occurred_at)
        if set(rules.settings.currency_codes()) - set(program.settings.currency_codes()):
            balances.update(await self.ledger.balances_of(conn, rules, [member_id], now))
        event = replay_event(stored, rules.settings.earn_on == "paid")
        # The basket kept counts for the member's history and tier; the rules earn on the
        # whole basket and the returned share is taken back below, as a return would.
        kept = int(purchase.total) - int(purchase.returned_amount)
        event.spend = kept
        uow = UnitOfWork(now)
        pipeline = await self.earning.start(
            conn, rules, [member_id], stored.occurred_at, now, uow, single_event=False
        )
        applied = pipeline.apply_rules(event, member_id, status, balances)
        await uow.flush(conn)
        earned = earned_by_currency(applied.earned)
        reversals = await self._take_back_returned(
            conn, uow, rules, purchase, member_id, balances, earned, now
        )
        # What a cap on clawbacks left with the member counts as settled, as for returns.
        reversed_ = {c: r.reversed + r.not_clawed_back for c, r in reversals.items()}
        claimed = await self.repository.record_claim(
            conn,
            purchase.id,
            member_id,
            {"earned": earned, "reversed": reversed_, "claimed_at": now},
        )
        if not claimed:  # cannot happen under the row's lock; refuse rather than credit twice
            raise refused(f"purchase {purchase.external_id!r} was just claimed", "claimed")
        tier = applied.tier
        if reversed_ or purchase.returned_amount:
            # As after a return: an upgrade the whole basket brought may not stand.
            await uow.flush(conn)
            tier = await tier_service.after_return(
                conn, program, member_id, str(purchase.id), now, now, uow
            )
        body = self._answer(program, rules, purchase, member_id, applied, balances, now)
        body.tier = TierOutcome.model_validate(tier) if tier else None
        body.reversed = [
            ReversedOut(currency=c, reversed=r.reversed, not_clawed_back=r.not_clawed_back)
            for c, r in sorted(reversals.items())
        ]
        answer = body.model_dump(mode="json")
        await self.repository.set_answer(conn, purchase.id, answer)
        uow.emit(claimed_event(program, purchase, member_id, earned, reversed_, tier, now))
        await uow.flush(conn)
        return Outcome(201, answer)

    async def _rules_at(
        self, conn: AsyncConnection, program: ProgramContext, moment: datetime
    ) -> ProgramContext:
        """The rules in force at ``moment``, judged against today's tier ladder."""
        rules = await self.programs.in_force_at(conn, program, moment)
        if rules.settings.tiers == program.settings.tiers:
            return rules
        settings = rules.settings.model_copy(update={"tiers": program.settings.tiers})
        return ProgramContext(
            rules.id, rules.slug, rules.name, rules.version, settings, compile_program(settings)
        )

    async def _take_back_returned(
        self,
        conn: AsyncConnection,
        uow: UnitOfWork,
        rules: ProgramContext,
        purchase: Any,
        member_id: UUID,
        balances: dict[BalanceKey, Balance],
        earned: dict[str, int],
        now: datetime,
    ) -> dict[str, Reversal]:
        """The share of ``earned`` a return before the claim takes back, taken back now
        (what a return after a purchase with the card would have taken)."""
        returned = int(purchase.returned_amount)
        if not returned or not earned:
            return {}
        shares = {
            currency: proportional_share(amount, 0, int(purchase.total), returned)
            for currency, amount in earned.items()
        }
        return_id = await self.repository.last_return_id(conn, purchase.id)
        reversals = await self.ledger.reverse_purchase(
            conn,
            ledger_changes(uow, rules.id),
            rules,
            balances,
            member_id=member_id,
            purchase_id=str(purchase.id),
            amounts=shares,
            return_id=str(return_id),
            occurred_at=now,
        )
        await uow.flush(conn)
        return {c: r for c, r in reversals.items() if r.reversed or r.not_clawed_back}

    def _answer(
        self,
        program: ProgramContext,
        rules: ProgramContext,
        purchase: Any,
        member_id: UUID,
        applied: Applied,
        balances: dict[BalanceKey, Balance],
        now: datetime,
    ) -> ClaimResult:
        points = program.settings.points_currency()
        return ClaimResult(
            id=purchase.id,
            external_id=purchase.external_id,
            member_id=member_id,
            occurred_at=as_utc(purchase.occurred_at),
            total=purchase.total,
            earned=[
                EarnedOut(rule_id=e.rule_id, currency=e.currency, amount=e.amount, status=e.status)
                for e in applied.earned
            ],
            points_earned=sum(e.amount for e in applied.earned if e.currency == points),
            balances=balances_out(balances, member_id, program.settings.currency_codes()),
            benefits=[BenefitOut.model_validate(b.answer()) for b in applied.benefits],
            claimed_at=now,
            program_version=rules.version,
            returned_amount=purchase.returned_amount,
        )


def claimed_event(
    program: ProgramContext,
    purchase: Any,
    member_id: UUID,
    earned: dict[str, int],
    reversed_: dict[str, int],
    tier: dict[str, Any] | None,
    now: datetime,
) -> events.PurchaseClaimed:
    return events.PurchaseClaimed(
        program_id=program.id,
        member_id=member_id,
        occurred_at=now,
        purchase_id=purchase.id,
        external_id=purchase.external_id,
        total=purchase.total,
        currency=purchase.currency,
        store=purchase.store,
        channel=purchase.channel,
        purchased_at=as_utc(purchase.occurred_at),
        claimed_at=now,
        earned=earned,
        reversed=reversed_,
        returned_amount=purchase.returned_amount,
        tier=tier["tier"] if tier else None,
    )


claim_service = ClaimService()
