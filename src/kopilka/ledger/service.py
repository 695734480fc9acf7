"""Ledger operations: load a member's state under its lock, apply pure domain maths, write
what changed as journal entries, postings, lots and balances. Never commits."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import audit_service
from kopilka.errors import InvalidInput
from kopilka.kit.ids import new_id
from kopilka.ledger import domain
from kopilka.ledger.domain import Account, Balance, BalanceKey, Lot, Posting
from kopilka.ledger.reads import LedgerReads
from kopilka.ledger.repository import LedgerRepository, ledger_repository
from kopilka.ledger.unit import LedgerChanges, ledger_changes
from kopilka.members.service import MemberService, member_service
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork, unit_of_work
from kopilka.programs.domain import expires_at
from kopilka.programs.service import ProgramContext


@dataclass(frozen=True)
class Earned:
    """Points of one rule credited by one purchase."""

    rule_id: str
    currency: str
    amount: int
    status: str  # pending | available


@dataclass(frozen=True)
class OpeningLot:
    """Points a member held in the system the program moves from: ``amount`` of
    ``currency`` expiring at ``expires_at`` (None: never), ``key`` naming the lot among the
    member's (kept as the lot's source)."""

    currency: str
    amount: int
    expires_at: datetime | None
    key: str


def earned_by_currency(earned: Iterable[Earned]) -> dict[str, int]:
    """What was earned, summed per currency."""
    totals: dict[str, int] = {}
    for e in earned:
        totals[e.currency] = totals.get(e.currency, 0) + e.amount
    return totals


def require_currency(program: ProgramContext, currency: str) -> None:
    if currency not in program.settings.currency_codes():
        raise InvalidInput(
            f"currency {currency!r} is not one of {program.settings.currency_codes()}",
            field="currency",
        )


class LedgerService(LedgerReads):
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
        require_currency(program, currency)
        if amount == 0:
            raise InvalidInput("amount must not be zero", field="amount")
        balances = await self.lock(conn, program, [member_id], now)
        balance = balances[(member_id, currency)]
        before = {"currency": currency, "available": balance.available}
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
        await audit_service.record(
            conn,
            program.id,
            "points.adjusted",
            subject_type="member",
            subject_id=member_id,
            now=now,
            before=before,
            after={
                "currency": currency,
                "available": balance.available,
                "amount": amount,
                "reason": reason,
                "reference_id": reference_id,
            },
        )
        return balance

    # --- opening balances (members brought over from another system) ---------------------

    async def grant_opening_balances(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        lots: Mapping[UUID, Sequence[OpeningLot]],
        now: datetime,
        *,
        uow: UnitOfWork | None = None,
        new_members: Iterable[UUID] = (),
    ) -> int:
        """What members held in the system the program moves from, credited as of ``now``:
        per member one ``opening`` entry from the program's ``adjustments`` account (the
        books the points come from are not Kopilka's) and one available lot per given lot,
        keeping its own expiry, so they expire with the normal job; a ``points.adjusted``
        event per member and currency. Takes the member lock, except of ``new_members``
        (registered by the caller's transaction: no other transaction sees them yet, and a
        lock would only rewrite their rows). A lot must be positive and not yet expired
        (422 naming ``expires_at``): the caller leaves expired ones out. Idempotency is the
        caller's (a key per member and lot). Returns the points credited. Any number of
        members cost one statement per table.
        """
        for member_lots in lots.values():
            for item in member_lots:
                require_currency(program, item.currency)
                if item.amount <= 0:
                    raise InvalidInput("an opening lot must be positive", field="amount")
                if item.expires_at is not None and item.expires_at <= now:
                    raise InvalidInput("the lot has already expired", field="expires_at")
        if not lots:
            return 0
        fresh = set(new_members)
        await self.members.lock(conn, program, sorted(m for m in lots if m not in fresh))
        balances = await self.balances_of(conn, program, lots.keys(), now)
        credited = 0
        async with unit_of_work(conn, now, uow) as unit:
            changes = ledger_changes(unit, program.id)
            for member_id, member_lots in lots.items():
                legs: dict[str, list[Posting]] = {}
                made: list[tuple[str, Lot]] = []
                for item in member_lots:
                    balance = balances[(member_id, item.currency)]
                    postings, lot = domain.earn(
                        balance,
                        lot_id=new_id(),
                        amount=item.amount,
                        now=now,
                        available_at=now,
                        expires_at=item.expires_at,
                        source_id=item.key,
                        rule_id=None,
                        source_account=Account.ADJUSTMENTS,
                    )
                    changes.track((member_id, item.currency), balance)
                    legs.setdefault(item.currency, []).extend(postings)
                    made.append((item.currency, lot))
                if not made:
                    continue
                entry_id = changes.add_entry(
                    member_id,
                    "opening",
                    list(legs.items()),
                    occurred_at=now,
                    reason="opening balance brought from another system",
                    reference_type="import",
                )
                for currency, lot in made:
                    changes.add_lot(member_id, currency, lot, entry_id)
                for currency in legs:
                    amount = sum(lot.amount for c, lot in made if c == currency)
                    credited += amount
                    changes.moved(
                        events.PointsAdjusted,
                        member_id,
                        now,
                        currency,
                        amount,
                        balances[(member_id, currency)],
                        entry_id,
                        ("import", None),
                        reason="opening balance",
                    )
        return credited

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


ledger_service = LedgerService()
