"""Redeeming rewards, fulfilling and cancelling redemptions, a member's history. Never
commits.

A redemption runs under the member's ledger lock, taken before anything is checked: the
balance, the tier and the member's earlier redemptions (the per-member limit) are read
under it, so two tills cannot both pass a limit the member has one slot left of. Only then
is a counted stock taken, by a conditional update of the reward row: the lock order is
always member → reward, and the last item goes to exactly one member.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import AuditService, audit_service
from kopilka.benefits.service import benefit_service
from kopilka.errors import Conflict, NotFound
from kopilka.idempotency.service import IdempotencyStore, idempotency_store
from kopilka.kit.clock import as_utc
from kopilka.kit.ids import new_id
from kopilka.kit.pagination import encode_cursor
from kopilka.ledger.domain import Balance
from kopilka.ledger.redemptions import PointsRedemptionService, points_redemption_service
from kopilka.ledger.schemas import BalanceOut
from kopilka.ledger.service import LedgerService, ledger_service
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.outbox import events
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.rewards import domain
from kopilka.rewards.domain import COUPON_KINDS, Reason, RewardUnavailable
from kopilka.rewards.fulfilment import Redeeming, hand_out
from kopilka.rewards.judging import shopper, terms_of
from kopilka.rewards.repository import RewardRepository, reward_repository
from kopilka.rewards.schemas import (
    RedemptionCreate,
    RedemptionPage,
    RedemptionRequest,
    RewardRedemption,
)
from kopilka.tiers.service import tier_service

Answer = tuple[int, dict[str, Any], bool]  # status code, body, replayed


def redemption_out(row: Any, balance: Balance | None = None) -> RewardRedemption:
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    for name in ("created_at", "updated_at", "fulfilled_at", "cancelled_at"):
        if data.get(name) is not None:
            data[name] = as_utc(data[name])
    if balance is not None:
        data["balance"] = BalanceOut(
            currency=data["currency"],
            available=balance.available,
            pending=balance.pending,
            held=balance.held,
        )
    return RewardRedemption.model_validate(data)


# Why a fulfilled redemption of a kind cannot be cancelled.
KEPT_BECAUSE = {
    "digital": "its code has been handed out",
    "gift_certificate": "its gift certificate has been issued",
    **{kind: "its coupon code has been issued" for kind in COUPON_KINDS},
}
HANDED_OVER = "it has been handed over"


class RedemptionService:
    def __init__(
        self,
        repository: RewardRepository = reward_repository,
        ledger: LedgerService = ledger_service,
        points: PointsRedemptionService = points_redemption_service,
        idempotency: IdempotencyStore = idempotency_store,
        audit: AuditService = audit_service,
    ) -> None:
        self.repository = repository
        self.ledger = ledger
        self.audit = audit
        self.points = points
        self.idempotency = idempotency

    # --- redeeming ---------------------------------------------------------------------------

    async def redeem(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        body: RedemptionCreate,
        idempotency_key: str | None,
        now: datetime,
    ) -> Answer:
        """Redeem reward ``key`` for the member of ``body``, once per ``external_id`` (or
        ``Idempotency-Key``): a retry of the same request gets the first answer, the same key
        with another reward or member is a conflict. Returns (201, redemption, replayed)."""
        # The till's own id is the natural key; the header serves callers that have none.
        scoped = f"reward-redemption:{body.external_id}" if body.external_id else idempotency_key
        member_id, _ = await member_service.resolve(conn, program, body.member)

        async def lock() -> None:
            await self.ledger.lock(conn, program, [member_id], now)

        async def operation() -> dict[str, Any]:
            made = await self._redeem(conn, program, key, member_id, body.external_id, now)
            return made.model_dump(mode="json")

        request = RedemptionRequest(reward=key, member=body.member, external_id=body.external_id)
        return await self.idempotency.run_once(
            conn, program.id, scoped, request, operation, lock, external_id=body.external_id
        )

    async def _redeem(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        member_id: UUID,
        external_id: str | None,
        now: datetime,
    ) -> RewardRedemption:
        balances = await self.ledger.lock(conn, program, [member_id], now)
        # Everything below is read under the member's lock: a block, a spend, a tier
        # change or a redemption committed first is seen.
        reward = await self.repository.get_by_key(conn, program.id, key)
        if reward is None:
            raise NotFound(f"no reward {key!r}", field="key")
        _, status = await member_service.resolve(conn, program, MemberRef(id=member_id))
        tier = await tier_service.current_tier(conn, program, member_id, now)
        taken = (await self.repository.taken(conn, member_id, [reward.id]))[reward.id]
        codes_left = None
        if reward.code_source == "pool":
            codes_left = (await self.repository.free_codes(conn, [reward.id]))[reward.id]
        balance = balances.get((member_id, reward.currency), Balance())
        offers = await benefit_service.reward_offers(conn, program, member_id, now)
        offer = offers.get(reward.key)
        tags = frozenset((await member_service.get(conn, program, member_id)).tags)
        seen_as = shopper(program, status, tier, balance.available, taken, offer, tags)
        verdict = domain.judge(terms_of(reward, codes_left), seen_as, now)
        if not verdict.can_redeem:
            raise domain.refusal(verdict, seen_as)
        stock_taken = reward.stock is not None
        if stock_taken and not await self.repository.take_stock(conn, reward.id, now):
            raise RewardUnavailable(
                f"reward {key!r} is out of stock", field="reward", reason=Reason.OUT_OF_STOCK.value
            )
        redemption_id = new_id()
        if offer is not None:
            # The personal offer is used by this redemption (the member is locked).
            await benefit_service.use(conn, offer[0], now, str(redemption_id))
        ledger_redemption_id = None
        if verdict.price > 0:
            spent = await self.points.redeem(
                conn,
                program,
                member_id=member_id,
                member_status=status,
                currency=reward.currency,
                amount=verdict.price,
                mode="one_step",
                now=now,
                reason=f"reward {key} (redemption {redemption_id})",
                external_id=external_id,
            )
            ledger_redemption_id, balance = spent.row["id"], spent.balance
        handout = await hand_out(
            conn, Redeeming(program, reward, member_id, redemption_id, now), self.repository
        )
        state = domain.initial_status(reward.kind)
        # Whether an item of a counted stock went with it: only then does a cancel put one
        # back (the stock may have been counted or not since).
        details = {**(handout.details or {}), "tier": tier, "stock_taken": stock_taken}
        if offer is not None:
            details["benefit_id"] = str(offer[0])
        row = {
            "id": redemption_id,
            "program_id": program.id,
            "member_id": member_id,
            "reward_id": reward.id,
            "external_id": external_id,
            "currency": reward.currency,
            "price": verdict.price,
            "ledger_redemption_id": ledger_redemption_id,
            "status": state,
            "code": handout.code,
            "details": details,
            "created_at": now,
            "updated_at": now,
            "fulfilled_at": now if state == "fulfilled" else None,
            "cancelled_at": None,
        }
        await self.repository.insert_redemption(conn, row)
        view = row | {"reward_key": reward.key, "reward_name": reward.name, "kind": reward.kind}
        await self._event(conn, program, member_id, events.RewardRedeemed, view, now)
        return redemption_out(view, balance)

    # --- after the redemption ----------------------------------------------------------------

    async def _locked(
        self, conn: AsyncConnection, program: ProgramContext, redemption_id: UUID, now: datetime
    ) -> tuple[Any, dict[tuple[UUID, str], Balance]]:
        """The redemption, read again under its member's lock, and the member's balances."""
        row = await self.repository.get_redemption(conn, program.id, redemption_id)
        if row is None:
            raise NotFound(f"no reward redemption {redemption_id}", field="redemption_id")
        balances = await self.ledger.lock(conn, program, [row.member_id], now)
        return await self.repository.get_redemption(conn, program.id, redemption_id), balances

    async def fulfil(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        redemption_id: UUID,
        note: str | None,
        now: datetime,
    ) -> RewardRedemption:
        """Mark an issued redemption handed over. Fulfilling a fulfilled one changes nothing."""
        row, _ = await self._locked(conn, program, redemption_id, now)
        if row.status == "fulfilled":
            return redemption_out(row)
        if row.status == "cancelled":
            raise Conflict(
                "the redemption was cancelled: there is nothing to fulfil",
                field="status",
                redemption_status=row.status,
            )
        details = dict(row.details or {})
        if note:
            details["fulfilment_note"] = note
        values = {"status": "fulfilled", "fulfilled_at": now, "updated_at": now, "details": details}
        await self.repository.set_redemption(conn, redemption_id, values)
        view = dict(row._mapping) | values
        await self._event(conn, program, row.member_id, events.RewardFulfilled, view, now)
        return redemption_out(view)

    async def cancel(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        redemption_id: UUID,
        reason: str | None,
        now: datetime,
    ) -> RewardRedemption:
        """Cancel an issued redemption: its points go back to the member (to the lots they
        came from) and a counted stock gets its item back, with an audit entry. A fulfilled
        redemption stays; cancelling a cancelled one changes nothing (its ``cancelled_at``
        is then not ``now``)."""
        row, balances = await self._locked(conn, program, redemption_id, now)
        balance = balances.get((row.member_id, row.currency), Balance())
        if row.status == "cancelled":
            return redemption_out(row, balance)
        if row.status == "fulfilled":
            why = KEPT_BECAUSE.get(row.kind, HANDED_OVER)
            raise Conflict(
                f"a fulfilled redemption cannot be cancelled: {why}",
                field="status",
                redemption_status=row.status,
            )
        if row.ledger_redemption_id is not None:
            refunded = await self.points.refund_redemption(
                conn,
                program,
                row.ledger_redemption_id,
                now,
                f"reward {row.reward_key} cancelled (redemption {redemption_id})",
            )
            balance = refunded.balance
        details = dict(row.details or {})
        if details.get("stock_taken", True):
            await self.repository.put_back_stock(conn, row.reward_id, now)
        if reason:
            details["cancel_reason"] = reason
        values = {"status": "cancelled", "cancelled_at": now, "updated_at": now, "details": details}
        await self.repository.set_redemption(conn, redemption_id, values)
        view = dict(row._mapping) | values
        await self._event(conn, program, row.member_id, events.RewardCancelled, view, now)
        # The route's permission is the till's (``payments.take``), whose requests get no
        # generic entry: the cancellation, which gives points back, records its own.
        await self.audit.record(
            conn,
            program.id,
            "reward_redemption.cancelled",
            subject_type="member",
            subject_id=row.member_id,
            now=now,
            before={"redemption_id": str(redemption_id), "status": row.status},
            after={
                "redemption_id": str(redemption_id),
                "status": "cancelled",
                "reward": row.reward_key,
                "points_returned": row.price if row.ledger_redemption_id else 0,
                "currency": row.currency,
                "reason": reason,
            },
        )
        return redemption_out(view, balance)

    async def cancel_once(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        redemption_id: UUID,
        body: Any,
        idempotency_key: str | None,
        now: datetime,
    ) -> Answer:
        """``cancel`` with an ``Idempotency-Key``: a retry gets the first answer."""
        scoped = f"reward-cancel:{redemption_id}:{idempotency_key}" if idempotency_key else None

        async def lock() -> None:
            await self._locked(conn, program, redemption_id, now)

        async def operation() -> dict[str, Any]:
            done = await self.cancel(conn, program, redemption_id, body.reason, now)
            return done.model_dump(mode="json")

        return await self.idempotency.run_once(conn, program.id, scoped, body, operation, lock, 200)

    # --- reads -------------------------------------------------------------------------------

    async def get(
        self, conn: AsyncConnection, program: ProgramContext, redemption_id: UUID
    ) -> RewardRedemption:
        row = await self.repository.get_redemption(conn, program.id, redemption_id)
        if row is None:
            raise NotFound(f"no reward redemption {redemption_id}", field="redemption_id")
        return redemption_out(row)

    async def history(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> RedemptionPage:
        """The member's reward redemptions, newest first."""
        if not await member_service.statuses(conn, program, [member_id]):
            raise NotFound(f"member {member_id} not found", field="member_id")
        rows = await self.repository.history(
            conn, program.id, member_id, limit=limit, before=before
        )
        items = [redemption_out(row) for row in rows]
        last = items[-1] if len(items) == limit else None
        return RedemptionPage(
            items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None
        )

    async def of_reward(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
        status: str | None = None,
    ) -> RedemptionPage:
        """A reward's redemptions (of ``status`` if given), newest first: what staff fulfil
        or cancel."""
        reward = await self.repository.get_by_key(conn, program.id, key)
        if reward is None:
            raise NotFound(f"no reward {key!r}", field="key")
        rows = await self.repository.of_reward(
            conn, program.id, reward.id, limit=limit, before=before, status=status
        )
        items = [redemption_out(row) for row in rows]
        last = items[-1] if len(items) == limit else None
        return RedemptionPage(
            items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None
        )

    # --- events ------------------------------------------------------------------------------

    async def _event(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        event_type: type[events.RewardEvent],
        view: dict[str, Any],
        now: datetime,
    ) -> None:
        """The change's domain event, in the same transaction: messages and journeys (send
        the code, ship the parcel) start from it after commit."""
        async with unit_of_work(conn, now) as uow:
            uow.emit(
                event_type(
                    program_id=program.id,
                    member_id=member_id,
                    occurred_at=now,
                    redemption_id=view["id"],
                    reward=view["reward_key"],
                    kind=view["kind"],
                    currency=view["currency"],
                    price=view["price"],
                    status=view["status"],
                )
            )


redemption_service = RedemptionService()
