"""Returns: take back, in proportion to the money returned, the points a purchase earned.

Never commits.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.earning.answers import balances_out
from kopilka.earning.schemas import BenefitOut, EarnedOut
from kopilka.earning.service import (
    Applied,
    EarningService,
    RulesEvent,
    earning_service,
    has_trigger,
)
from kopilka.earning.state import Source
from kopilka.errors import Forbidden, InvalidInput, NotFound
from kopilka.idempotency.service import IdempotencyStore, idempotency_store, replay, request_hash
from kopilka.kit.ids import new_id
from kopilka.ledger.domain import proportional_share
from kopilka.ledger.service import LedgerService, ledger_service
from kopilka.ledger.unit import ledger_changes
from kopilka.members.service import member_service
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext
from kopilka.purchases.batches import Outcome
from kopilka.purchases.payments import LineReturn, payment_service, return_plan
from kopilka.purchases.repository import PurchaseRepository, purchase_repository
from kopilka.purchases.schemas import ReturnCreate, ReturnLineIn, ReturnResult, ReversedOut
from kopilka.tiers.schemas import TierOutcome
from kopilka.tiers.service import tier_service


def return_key(external_id: str) -> str:
    return f"return:{external_id}"


def _money_of_lines(
    lines: Sequence[Any], request: Sequence[ReturnLineIn]
) -> tuple[int, dict[int, int]]:
    """Money returned by returning ``request`` lines, and each line's new returned quantity.

    A line's money is returned cumulatively, floor(amount × returned / quantity), so returning
    a line one unit at a time gives back exactly what returning it at once does.
    """
    returned = {line.id: line.returned_quantity for line in lines}
    for index, item in enumerate(request):
        left = item.quantity
        for line in lines:
            if line.sku != item.sku or left == 0:
                continue
            take = min(left, line.quantity - returned[line.id])
            returned[line.id] += take
            left -= take
        if left:
            bought = sum(line.quantity for line in lines if line.sku == item.sku)
            raise InvalidInput(
                f"returning more of {item.sku!r} than was bought ({bought})",
                field=f"lines.{index}.quantity",
            )
    money = 0
    for line in lines:
        before, after = line.returned_quantity, returned[line.id]
        money += line.amount * after // line.quantity - line.amount * before // line.quantity
    changed = {
        k: v
        for k, v in returned.items()
        if v != next(line.returned_quantity for line in lines if line.id == k)
    }
    return money, changed


class ReturnService:
    def __init__(
        self,
        repository: PurchaseRepository = purchase_repository,
        ledger: LedgerService = ledger_service,
        idempotency: IdempotencyStore = idempotency_store,
        earning: EarningService = earning_service,
    ) -> None:
        self.repository = repository
        self.ledger = ledger
        self.idempotency = idempotency
        self.earning = earning

    async def record(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        request: ReturnCreate,
        now: datetime,
        *,
        may_act_at: Callable[[str | None], bool] | None = None,
    ) -> Outcome:
        """Record a return and take back the points it earned, proportionally.
        ``may_act_at``: whether the caller may act at a store (a return is taken at its
        purchase's store; Forbidden, naming ``store``, elsewhere)."""
        found = await self.repository.purchase_by_external_id(
            conn, program.id, request.purchase_external_id
        )
        if found is None:
            raise NotFound(
                f"no purchase {request.purchase_external_id!r}", field="purchase_external_id"
            )
        if may_act_at is not None and not may_act_at(found.store):
            where = f"store {found.store!r}" if found.store is not None else "no store"
            raise Forbidden(
                f"this staff member may not take returns of purchases at {where}", field="store"
            )
        if request.occurred_at < found.occurred_at:
            raise InvalidInput("a return cannot precede its purchase", field="occurred_at")
        if found.member_id is None:
            # A purchase without a member has no member lock: its own row's lock orders this
            # return with a claim of it (which takes it after the claiming member's lock).
            # A claim that committed meanwhile is seen here, and its member locked next.
            found = await self.repository.lock_purchase(conn, found.id)
        member_ids = [found.member_id] if found.member_id is not None else []
        balances = await self.ledger.lock(conn, program, member_ids, now)
        key, hash_ = return_key(request.external_id), request_hash(request.model_dump(mode="json"))
        record = await self.idempotency.find(conn, program.id, key)
        if record is not None:
            answer = replay(record, hash_, request.external_id, "external_id")
            return Outcome(answer.status_code, answer.body, replayed=True)
        # Re-read under the member lock: another return of this purchase may just have landed.
        purchase = await self.repository.purchase_by_external_id(
            conn, program.id, request.purchase_external_id
        )
        money, line_returns, lines = await self._money(conn, purchase, request)
        returned_total = purchase.returned_amount + money
        return_id = new_id()
        plan = None
        if purchase.payments:
            plan = return_plan(
                purchase.payments, purchase.total, purchase.returned_amount, returned_total, lines
            )
        uow = UnitOfWork(now)
        changes = ledger_changes(uow, program.id)
        if plan is not None and plan.points:
            # The points that paid come back first (written at once): with
            # ``cap_at_available`` the clawback below may then take back the points this
            # purchase earned out of them.
            payment_service.refund_points(
                changes, program, balances, purchase, plan.points, str(return_id), now
            )
            await uow.flush(conn)
        basis = plan.earn_basis if plan is not None and plan.earn_basis else None
        total, returned = basis or (purchase.total, returned_total)
        to_reverse = {
            currency: proportional_share(
                earned, int(purchase.reversed.get(currency, 0)), total, returned
            )
            for currency, earned in purchase.earned.items()
        }
        reversals = {}
        if purchase.member_id is not None:  # without a member nothing was earned
            reversals = await self.ledger.reverse_purchase(
                conn,
                changes,
                program,
                balances,
                member_id=purchase.member_id,
                purchase_id=str(purchase.id),
                amounts=to_reverse,
                return_id=str(return_id),
                occurred_at=request.occurred_at,
            )
        given_back = await payment_service.give_back_codes(conn, purchase, returned_total, now)
        applied = await self._return_rules(
            conn, program, purchase, money, request, balances, uow, now
        )
        reversed_now = {c: r.reversed for c, r in reversals.items()}
        kept = {c: r.not_clawed_back for c, r in reversals.items()}
        new_reversed = dict(purchase.reversed)
        for currency in to_reverse:
            # What the cap policy did not take back counts as settled: a later return of the
            # same purchase must not try to claw it back again.
            new_reversed[currency] = (
                int(new_reversed.get(currency, 0))
                + reversed_now.get(currency, 0)
                + kept.get(currency, 0)
            )
        await self.repository.record_return(
            conn,
            purchase.id,
            {"returned_amount": returned_total, "reversed": new_reversed}
            | ({"payments": plan.payments} if plan is not None else {}),
            line_returns,
            {
                "id": return_id,
                "program_id": program.id,
                "member_id": purchase.member_id,
                "purchase_id": purchase.id,
                "external_id": request.external_id,
                "occurred_at": request.occurred_at,
                "amount": money,
                "reversed": reversed_now,
                "not_clawed_back": kept,
                "created_at": now,
            },
        )
        # What the return's rules changed (a tier they found ended, too) is written first:
        # the tier decision below reads the member's tier afresh.
        await uow.flush(conn)
        tier = None
        if purchase.member_id is not None:
            tier = await tier_service.after_return(
                conn, program, purchase.member_id, str(purchase.id), request.occurred_at, now, uow
            )
        points_refunded = plan.points if plan is not None else 0
        result = ReturnResult(
            id=return_id,
            external_id=request.external_id,
            purchase_external_id=request.purchase_external_id,
            member_id=purchase.member_id,
            amount=money,
            purchase_returned_amount=returned_total,
            reversed=[
                ReversedOut(currency=c, reversed=r.reversed, not_clawed_back=r.not_clawed_back)
                for c, r in sorted(reversals.items())
            ],
            balances=balances_out(balances, purchase.member_id, program.settings.currency_codes())
            if purchase.member_id is not None
            else [],
            earned=[
                EarnedOut(rule_id=e.rule_id, currency=e.currency, amount=e.amount, status=e.status)
                for e in applied.earned
            ]
            if applied
            else [],
            benefits=[BenefitOut.model_validate(b.answer()) for b in applied.benefits]
            if applied
            else [],
            tier=TierOutcome.model_validate(tier) if tier else None,
            points_refunded=points_refunded,
            coupons_given_back=given_back,
        )
        body = result.model_dump(mode="json")
        uow.emit(
            events.ReturnRecorded(
                program_id=program.id,
                member_id=purchase.member_id,
                occurred_at=request.occurred_at,
                return_id=return_id,
                external_id=request.external_id,
                purchase_id=purchase.id,
                purchase_external_id=request.purchase_external_id,
                amount=money,
                purchase_returned_amount=returned_total,
                reversed=reversed_now,
                points_refunded=points_refunded,
                coupons_given_back=given_back,
            )
        )
        self.idempotency.stage(uow, [self.idempotency.row(program.id, key, hash_, 201, body, now)])
        await uow.flush(conn)
        return Outcome(201, body)

    async def _return_rules(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchase: Any,
        money: int,
        request: ReturnCreate,
        balances: dict[Any, Any],
        uow: UnitOfWork,
        now: datetime,
    ) -> Applied | None:
        """Rules on the ``return`` trigger (a goodwill gesture, a tag, an event for a
        message), with the returned money as the event's total."""
        if purchase.member_id is None or not has_trigger(program, "return"):
            return None
        statuses = await member_service.statuses(conn, program, [purchase.member_id])
        event = RulesEvent(
            trigger="return",
            source=Source("return", request.external_id),
            occurred_at=request.occurred_at,
            channel=purchase.channel,
            store=purchase.store,
            total=money,
        )
        pipeline = await self.earning.start(
            conn, program, [purchase.member_id], request.occurred_at, now, uow, single_event=True
        )
        return pipeline.apply_rules(
            event, purchase.member_id, statuses[purchase.member_id], balances
        )

    async def _money(
        self, conn: AsyncConnection, purchase: Any, request: ReturnCreate
    ) -> tuple[int, dict[int, int], list[LineReturn] | None]:
        """Money this return brings back, each returned line's new returned quantity, and
        (for a return of lines) every line before and after, in line order."""
        left = purchase.total - purchase.returned_amount
        if request.lines is not None:
            lines = await self.repository.purchase_lines(conn, purchase.id)
            if not lines:
                raise InvalidInput("the purchase has no lines: return an amount", field="lines")
            money, changed = _money_of_lines(lines, request.lines)
            if money > left:
                # Earlier returns by amount are not tied to lines; they still count.
                raise InvalidInput(
                    f"these lines are worth {money}, more than the {left} not yet returned",
                    field="lines",
                )
            states = [
                LineReturn(
                    line.quantity,
                    line.amount,
                    line.returned_quantity,
                    changed.get(line.id, line.returned_quantity),
                )
                for line in lines
            ]
            return money, changed, states
        if request.amount is not None:
            if request.amount > left:
                raise InvalidInput(
                    f"amount {request.amount} is more than the {left} not yet returned",
                    field="amount",
                )
            return request.amount, {}, None
        if left == 0:
            raise InvalidInput(
                "the purchase has already been returned in full", field="purchase_external_id"
            )
        return left, {}, None


return_service = ReturnService()
