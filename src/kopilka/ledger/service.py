"""Ledger operations: load a member's state under its lock, apply pure domain maths, write
what changed as journal entries, postings, lots and balances. Never commits."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, InvalidInput, MemberBlocked, NotFound
from kopilka.kit.clock import as_utc
from kopilka.kit.ids import new_id
from kopilka.ledger import domain
from kopilka.ledger.domain import Account, Balance, BalanceKey, Lot, Posting
from kopilka.ledger.repository import LedgerRepository, ledger_repository
from kopilka.ledger.unit import LedgerChanges, ledger_changes
from kopilka.members.service import MemberService, member_service
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork, unit_of_work
from kopilka.programs.domain import expires_at
from kopilka.programs.service import ProgramContext


@dataclass(frozen=True)
class RedemptionView:
    row: dict[str, Any]
    balance: Balance


@dataclass(frozen=True)
class Earned:
    """Points of one rule credited by one purchase."""

    rule_id: str
    currency: str
    amount: int
    status: str  # pending | available


def earned_by_currency(earned: Iterable[Earned]) -> dict[str, int]:
    """What was earned, summed per currency."""
    totals: dict[str, int] = {}
    for e in earned:
        totals[e.currency] = totals.get(e.currency, 0) + e.amount
    return totals


def _require_currency(program: ProgramContext, currency: str) -> None:
    if currency not in program.settings.currency_codes():
        raise InvalidInput(
            f"currency {currency!r} is not one of {program.settings.currency_codes()}",
            field="currency",
        )


class LedgerService:
    def __init__(
        self,
        repository: LedgerRepository = ledger_repository,
        members: MemberService = member_service,
    ) -> None:
        self.repository = repository
        self.members = members

    # --- earning (many members at once: the purchase path and imports) ------------------

    async def lock(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: Iterable[UUID],
        now: datetime,
    ) -> dict[BalanceKey, Balance]:
        """Take the member lock (``MemberService.lock``) and read the members' balances."""
        ids = sorted(set(member_ids))
        await self.members.lock(conn, program, ids)
        return await self.balances_of(conn, program, ids, now)

    async def balances_of(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: Iterable[UUID],
        now: datetime,
    ) -> dict[BalanceKey, Balance]:
        """The balances of members whose lock the caller holds, opened where missing."""
        return await self.repository.balances_of(
            conn, program.id, member_ids, program.settings.currency_codes(), now
        )

    def credit_purchase(
        self,
        unit: LedgerChanges,
        program: ProgramContext,
        balances: dict[BalanceKey, Balance],
        *,
        member_id: UUID,
        purchase_id: str,
        effects: Sequence[tuple[str, str, int]],
        occurred_at: datetime,
        source_type: str = "purchase",
    ) -> list[Earned]:
        """Credit what the rules gave a purchase (or, with ``source_type``, another event):
        one entry, recording the program version, and one lot per rule and currency.

        Points are earned at the purchase's time (so a back-filled year expires as it would
        have), pending for the program's return window from that time.
        """
        if not effects:
            return []
        settings = program.settings
        available_from = occurred_at + timedelta(days=settings.pending_days)
        expiry = expires_at(settings.expiry, occurred_at, settings.timezone)
        legs: list[tuple[str, list[Posting]]] = []
        lots: list[tuple[str, Lot]] = []
        earned: list[Earned] = []
        for rule_id, currency, amount in effects:
            balance = balances[(member_id, currency)]
            postings, lot = domain.earn(
                balance,
                lot_id=new_id(),
                amount=amount,
                now=occurred_at,
                available_at=max(available_from, occurred_at),
                expires_at=expiry,
                source_id=purchase_id,
                rule_id=rule_id,
            )
            # A lot that would already be releasable at ingest (back-fill) is released now,
            # so imports of history end in the state live traffic would have produced.
            if lot.status == "pending" and lot.available_at <= unit.now:
                postings += domain.release(balance, [lot], unit.now)
            legs.append((currency, postings))
            lots.append((currency, lot))
            unit.track((member_id, currency), balance)
            earned.append(Earned(rule_id, currency, amount, lot.status))
        entry_id = unit.add_entry(
            member_id,
            "earn",
            legs,
            occurred_at=occurred_at,
            reference_type=source_type,
            reference_id=purchase_id,
            program_version=getattr(program, "version", None),
        )
        for currency, lot in lots:
            unit.add_lot(member_id, currency, lot, entry_id)
        self._earned_events(unit, program, member_id, balances, lots, earned, entry_id, source_type)
        self._expire_at_once(unit, program, member_id, balances, lots)
        return earned

    def _expire_at_once(
        self,
        unit: LedgerChanges,
        program: ProgramContext,
        member_id: UUID,
        balances: dict[BalanceKey, Balance],
        lots: list[tuple[str, Lot]],
    ) -> None:
        """Points of a back-filled event that had already expired by now expire at once, as
        the job would have expired them: never spendable, not even until its next run."""
        for currency, lot in lots:
            if lot.expires_at is None or lot.expires_at > unit.now:
                continue
            balance = balances[(member_id, currency)]
            postings = domain.expire(balance, [lot], unit.now)
            if not postings:
                continue
            unit.track((member_id, currency), balance, [lot])
            entry_id = unit.add_entry(
                member_id,
                "expire",
                [(currency, postings)],
                occurred_at=unit.now,
                reason="expired before it was recorded",
            )
            unit.moved(
                events.PointsExpired,
                member_id,
                unit.now,
                currency,
                postings[-1].amount,
                balance,
                entry_id,
                ("expiry", lot.source_id),
            )

    def _earned_events(
        self,
        unit: LedgerChanges,
        program: ProgramContext,
        member_id: UUID,
        balances: dict[BalanceKey, Balance],
        lots: list[tuple[str, Lot]],
        earned: list[Earned],
        entry_id: UUID,
        source_type: str,
    ) -> None:
        """One ``points.earned`` per currency: what each rule gave, the balance after."""
        by_currency: dict[str, tuple[Lot, int, dict[str, int]]] = {}
        for (currency, lot), e in zip(lots, earned, strict=True):
            found = by_currency.get(currency)
            if found is None:
                by_currency[currency] = (lot, lot.amount, {e.rule_id: e.amount})
            else:
                first, total, rules = found
                rules[e.rule_id] = rules.get(e.rule_id, 0) + e.amount
                by_currency[currency] = (first, total + lot.amount, rules)
        for currency, (first, total, rules) in by_currency.items():
            unit.moved(
                events.PointsEarned,
                member_id,
                first.earned_at,
                currency,
                total,
                balances[(member_id, currency)],
                entry_id,
                (source_type, first.source_id),
                status=first.status,
                rules=rules,
                expires_at=first.expires_at,
                available_at=first.available_at,
            )

    # --- returns -------------------------------------------------------------------------

    async def reverse_purchase(
        self,
        conn: AsyncConnection,
        unit: LedgerChanges,
        program: ProgramContext,
        balances: dict[BalanceKey, Balance],
        *,
        member_id: UUID,
        purchase_id: str,
        amounts: dict[str, int],
        return_id: str,
        occurred_at: datetime,
    ) -> dict[str, domain.Reversal]:
        """Take back ``amounts`` (per currency) of the points a returned purchase earned."""
        results: dict[str, domain.Reversal] = {}
        legs: list[tuple[str, list[Posting]]] = []
        for currency, amount in sorted(amounts.items()):
            if amount <= 0:
                continue
            balance = balances[(member_id, currency)]
            lots = await self.repository.open_lots(conn, member_id, currency, lock=True)
            own = [lot for lot in lots if lot.source_id == purchase_id]
            others = [lot for lot in lots if lot.source_id != purchase_id]
            reversal = domain.reverse(balance, own, others, amount, program.settings.clawback)
            results[currency] = reversal
            unit.track((member_id, currency), balance, lots)
            if reversal.postings:
                legs.append((currency, reversal.postings))
        if legs:
            entry_id = unit.add_entry(
                member_id,
                "return",
                legs,
                occurred_at=occurred_at,
                reference_type="return",
                reference_id=return_id,
                reason=f"return of purchase {purchase_id}",
            )
            for currency, reversal in results.items():
                if reversal.reversed or reversal.not_clawed_back:
                    unit.moved(
                        events.PointsReversed,
                        member_id,
                        occurred_at,
                        currency,
                        reversal.reversed,
                        balances[(member_id, currency)],
                        entry_id,
                        ("return", return_id),
                        not_clawed_back=reversal.not_clawed_back,
                    )
        return results

    # --- redemptions ---------------------------------------------------------------------

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
        _require_currency(program, currency)
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

    # --- adjustments ---------------------------------------------------------------------

    async def adjust(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        member_id: UUID,
        currency: str,
        amount: int,
        reason: str,
        now: datetime,
        reference_id: str | None,
        uow: UnitOfWork | None = None,
    ) -> Balance:
        """A manual credit (new available lot) or debit (spent like a redemption)."""
        _require_currency(program, currency)
        if amount == 0:
            raise InvalidInput("amount must not be zero", field="amount")
        balances = await self.lock(conn, program, [member_id], now)
        balance = balances[(member_id, currency)]
        async with unit_of_work(conn, now, uow) as unit:
            changes = ledger_changes(unit, program.id)
            if amount > 0:
                expiry = expires_at(program.settings.expiry, now, program.settings.timezone)
                postings, lot = domain.earn(
                    balance,
                    lot_id=new_id(),
                    amount=amount,
                    now=now,
                    available_at=now,
                    expires_at=expiry,
                    source_id=reference_id,
                    rule_id=None,
                    source_account=Account.ADJUSTMENTS,
                )
                changes.track((member_id, currency), balance)
                lots = [lot]
            else:
                lots = await self.repository.open_lots(conn, member_id, currency, lock=True)
                postings, _ = domain.redeem(balance, lots, -amount, sink=Account.ADJUSTMENTS)
                changes.track((member_id, currency), balance, lots)
            entry_id = changes.add_entry(
                member_id,
                "adjust",
                [(currency, postings)],
                occurred_at=now,
                reason=reason,
                reference_type="adjustment",
                reference_id=reference_id,
            )
            if amount > 0:
                changes.add_lot(member_id, currency, lots[0], entry_id)
            changes.moved(
                events.PointsAdjusted,
                member_id,
                now,
                currency,
                amount,
                balance,
                entry_id,
                ("adjustment", reference_id),
                reason=reason,
            )
        return balance

    # --- scheduled jobs (a chunk of members per call, under their locks) ------------------

    async def expire_members(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: Sequence[UUID],
        as_of: datetime,
        now: datetime,
    ) -> int:
        return await self._per_member(
            conn,
            program,
            member_ids,
            now,
            "expire",
            lambda b, lots: domain.expire(b, lots, as_of),
            events.PointsExpired,
        )

    async def release_members(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: Sequence[UUID],
        as_of: datetime,
        now: datetime,
    ) -> int:
        return await self._per_member(
            conn,
            program,
            member_ids,
            now,
            "release",
            lambda b, lots: domain.release(b, lots, as_of),
            events.PointsReleased,
        )

    async def _per_member(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: Sequence[UUID],
        now: datetime,
        kind: str,
        operation: Callable[[Balance, list[Lot]], list[Posting]],
        event: type[events.PointsMoved],
    ) -> int:
        """Apply ``operation`` to every member and currency of a chunk: one query locks the
        balances, one loads the lots, one statement per table writes the result."""
        balances = await self.lock(conn, program, member_ids, now)
        lots_of = await self.repository.open_lots_of_members(conn, sorted(set(member_ids)))
        moved = 0
        async with unit_of_work(conn, now) as unit:
            changes = ledger_changes(unit, program.id)
            for member_id in member_ids:
                legs: list[tuple[str, list[Posting]]] = []
                for currency in program.settings.currency_codes():
                    balance = balances[(member_id, currency)]
                    lots = lots_of.get((member_id, currency), [])
                    postings: list[Posting] = operation(balance, lots)
                    # Tracked even without postings: releasing an emptied pending lot moves
                    # nothing but still changes its status, and the job must not find it again.
                    changes.track((member_id, currency), balance, lots)
                    if postings:
                        legs.append((currency, postings))
                if not legs:
                    continue
                entry_id = changes.add_entry(
                    member_id, kind, legs, occurred_at=now, reason=f"scheduled {kind}"
                )
                for currency, postings in legs:
                    amount = sum(p.amount for p in postings if p.amount > 0)
                    moved += amount
                    changes.moved(
                        event,
                        member_id,
                        now,
                        currency,
                        amount,
                        balances[(member_id, currency)],
                        entry_id,
                        ("job", kind),
                    )
        return moved

    # --- reads ---------------------------------------------------------------------------

    async def balances(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> dict[str, Balance]:
        """The member's balance in each of the program's currencies (no lock); a currency
        in which nothing has moved yet is zero."""
        found = await self.repository.balances(conn, member_id)
        return {c: found.get(c) or Balance() for c in program.settings.currency_codes()}

    async def history(
        self,
        conn: AsyncConnection,
        member_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[tuple[Any, list[Any]]]:
        """A page of the member's journal entries, newest first, with their postings."""
        return await self.repository.history(conn, member_id, limit=limit, before=before)

    async def next_expiring(
        self, conn: AsyncConnection, member_id: UUID
    ) -> list[tuple[str, int, datetime]]:
        return await self.repository.next_expiring(conn, member_id)

    # --- refunds of completed one-step redemptions ------------------------------------------

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


ledger_service = LedgerService()
