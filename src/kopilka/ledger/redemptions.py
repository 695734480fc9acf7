"""Points redemptions: spending in one step, holds captured or voided, refunds of
completed redemptions, each under the member's lock. Never commits."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, MemberBlocked, NotFound
from kopilka.kit.clock import as_utc
from kopilka.kit.ids import new_id
from kopilka.ledger import domain
from kopilka.ledger.domain import Balance, BalanceKey
from kopilka.ledger.repository import LedgerRepository, ledger_repository
from kopilka.ledger.service import LedgerService, ledger_service, require_currency
from kopilka.ledger.unit import ledger_changes
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork, unit_of_work
from kopilka.programs.service import ProgramContext


@dataclass(frozen=True)
class RedemptionView:
    row: dict[str, Any]
    balance: Balance


class PointsRedemptionService:
    def __init__(
        self,
        ledger: LedgerService = ledger_service,
        repository: LedgerRepository = ledger_repository,
    ) -> None:
        self.ledger = ledger
        self.repository = repository

    async def lock(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: list[UUID],
        now: datetime,
    ) -> dict[BalanceKey, Balance]:
        return await self.ledger.lock(conn, program, member_ids, now)

    async def redeem(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        member_id: UUID,
        member_status: str,
        currency: str,
        amount: int,
        mode: str,
        now: datetime,
        reason: str | None,
        external_id: str | None,
        uow: UnitOfWork | None = None,
    ) -> RedemptionView:
        """Spend points in one step (``mode="one_step"``) or put them on hold (``"hold"``)."""
        require_currency(program, currency)
        if member_status != "active":
            raise MemberBlocked("a blocked member cannot spend points", field="member")
        balances = await self.lock(conn, program, [member_id], now)
        balance = balances[(member_id, currency)]
        lots = await self.repository.open_lots(conn, member_id, currency, lock=True)
        if mode == "hold":
            postings, allocations = domain.hold(balance, lots, amount)
            status, hold_until = "held", now + timedelta(minutes=program.settings.hold_minutes)
        else:
            postings, allocations = domain.redeem(balance, lots, amount)
            status, hold_until = "completed", None
        redemption_id = new_id()
        row = {
            "id": redemption_id,
            "program_id": program.id,
            "member_id": member_id,
            "currency": currency,
            "amount": amount,
            "captured_amount": amount if status == "completed" else 0,
            "status": status,
            "reason": reason,
            "external_id": external_id,
            "hold_expires_at": hold_until,
            "created_at": now,
            "updated_at": now,
        }
        await self.repository.insert_redemption(
            conn,
            row,
            [
                {
                    "redemption_id": redemption_id,
                    "member_id": member_id,
                    "lot_id": a.lot_id,
                    "amount": a.amount,
                }
                for a in allocations
            ],
        )
        async with unit_of_work(conn, now, uow) as unit:
            changes = ledger_changes(unit, program.id)
            changes.track((member_id, currency), balance, lots)
            entry_id = changes.add_entry(
                member_id,
                "hold" if mode == "hold" else "redeem",
                [(currency, postings)],
                occurred_at=now,
                reason=reason,
                reference_type="redemption",
                reference_id=str(redemption_id),
            )
            if mode == "hold":
                changes.moved(
                    events.PointsHeld,
                    member_id,
                    now,
                    currency,
                    amount,
                    balance,
                    entry_id,
                    ("redemption", str(redemption_id)),
                    hold_expires_at=hold_until,
                )
            else:
                changes.moved(
                    events.PointsRedeemed,
                    member_id,
                    now,
                    currency,
                    amount,
                    balance,
                    entry_id,
                    ("redemption", str(redemption_id)),
                    reason=reason,
                )
        return RedemptionView(row, balance)

    async def lock_redemption_member(
        self, conn: AsyncConnection, program: ProgramContext, redemption_id: UUID, now: datetime
    ) -> UUID:
        """Take the lock of the member a redemption belongs to; returns that member."""
        member_id, _ = await self._lock_redemption(conn, program, redemption_id, now)
        return member_id

    async def _lock_redemption(
        self, conn: AsyncConnection, program: ProgramContext, redemption_id: UUID, now: datetime
    ) -> tuple[UUID, dict[BalanceKey, Balance]]:
        found = await self.repository.get_redemption(conn, program.id, redemption_id)
        if found is None:
            raise NotFound(f"redemption {redemption_id} not found")
        member_id: UUID = found.member_id
        return member_id, await self.lock(conn, program, [member_id], now)

    async def settle_hold(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        redemption_id: UUID,
        *,
        capture_amount: int | None,
        now: datetime,
        outcome: str,
        member_status: str = "active",
        uow: UnitOfWork | None = None,
    ) -> RedemptionView:
        """Capture (all or part of) a hold, or void it (``outcome`` voided / expired).

        A capture spends: it is refused for a blocked member and for a hold past its
        ``hold_expires_at`` (the release job will give those points back).
        """
        member_id, balances = await self._lock_redemption(conn, program, redemption_id, now)
        # Re-read under the member lock: a concurrent capture or void may have settled it.
        row = await self.repository.get_redemption(conn, program.id, redemption_id)
        currency = row.currency
        if row.status != "held":
            raise Conflict(
                f"redemption is {row.status}, not held",
                field="status",
                redemption_status=row.status,
            )
        if outcome == "captured":
            if member_status != "active":
                raise MemberBlocked("a blocked member cannot spend points", field="member")
            if row.hold_expires_at is not None and as_utc(row.hold_expires_at) <= now:
                raise Conflict(
                    f"the hold expired at {as_utc(row.hold_expires_at).isoformat()}",
                    field="status",
                    redemption_status="held",
                )
        balance = balances[(member_id, currency)]
        allocations = await self.repository.allocations(conn, redemption_id)
        lots = await self.repository.lots_by_ids(conn, [a.lot_id for a in allocations])
        lots_by_id = {lot.id: lot for lot in lots}
        if outcome == "captured":
            captured = row.amount if capture_amount is None else capture_amount
            postings = domain.capture(balance, lots_by_id, allocations, row.amount, captured)
        else:
            captured = 0
            postings = domain.void(balance, lots_by_id, allocations, row.amount)
        await self.repository.set_redemption_status(conn, redemption_id, outcome, captured, now)
        async with unit_of_work(conn, now, uow) as unit:
            changes = ledger_changes(unit, program.id)
            changes.track((member_id, currency), balance, lots)
            kind = "capture" if outcome == "captured" else "void"
            entry_id = changes.add_entry(
                member_id,
                kind,
                [(currency, postings)],
                occurred_at=now,
                reference_type="redemption",
                reference_id=str(redemption_id),
                reason=f"hold {outcome}",
            )
            if outcome == "captured":
                changes.moved(
                    events.PointsCaptured,
                    member_id,
                    now,
                    currency,
                    captured,
                    balance,
                    entry_id,
                    ("redemption", str(redemption_id)),
                    released=row.amount - captured,
                )
            else:
                changes.moved(
                    events.PointsVoided,
                    member_id,
                    now,
                    currency,
                    row.amount,
                    balance,
                    entry_id,
                    ("redemption", str(redemption_id)),
                    outcome=outcome,
                )
        view = dict(row._mapping) | {
            "status": outcome,
            "captured_amount": captured,
            "updated_at": now,
        }
        return RedemptionView(view, balance)

    async def refund_redemption(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        redemption_id: UUID,
        now: datetime,
        reason: str | None,
        uow: UnitOfWork | None = None,
    ) -> RedemptionView:
        """Give back every point of a ``completed`` one-step redemption, to the lots it was
        taken from, as a new ``refund`` entry; the redemption becomes ``refunded``.

        Takes the member's lock. A redemption in any other state (a hold, one already
        refunded) is a conflict: holds are voided, not refunded.
        """
        member_id, balances = await self._lock_redemption(conn, program, redemption_id, now)
        # Re-read under the member lock: a concurrent refund may have landed first.
        row = await self.repository.get_redemption(conn, program.id, redemption_id)
        if row.status != "completed":
            raise Conflict(
                f"redemption is {row.status}: only a completed one-step redemption is refunded",
                field="status",
                redemption_status=row.status,
            )
        currency = row.currency
        balance = balances[(member_id, currency)]
        allocations = await self.repository.allocations(conn, redemption_id)
        lots = await self.repository.lots_by_ids(conn, [a.lot_id for a in allocations])
        postings = domain.refund(balance, {lot.id: lot for lot in lots}, allocations, row.amount)
        await self.repository.set_redemption_status(
            conn, redemption_id, "refunded", row.captured_amount, now
        )
        async with unit_of_work(conn, now, uow) as unit:
            changes = ledger_changes(unit, program.id)
            changes.track((member_id, currency), balance, lots)
            entry_id = changes.add_entry(
                member_id,
                "refund",
                [(currency, postings)],
                occurred_at=now,
                reason=reason,
                reference_type="redemption",
                reference_id=str(redemption_id),
            )
            changes.moved(
                events.PointsRefunded,
                member_id,
                now,
                currency,
                row.amount,
                balance,
                entry_id,
                ("redemption", str(redemption_id)),
            )
        view = dict(row._mapping) | {"status": "refunded", "updated_at": now}
        return RedemptionView(view, balance)


def redemption_dict(row: Any) -> dict[str, Any]:
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    for key in ("created_at", "updated_at", "hold_expires_at"):
        if data.get(key) is not None:
            data[key] = as_utc(data[key])
    return data


points_redemption_service = PointsRedemptionService()
