"""The purchase path: resolve members, evaluate rules, credit points, record, answer.

One purchase over HTTP and ten thousand from an import go through the same
:meth:`PurchaseService.ingest`; the only difference is how many rows each statement carries.
Never commits.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.earning.answers import balances_json, trace_out
from kopilka.earning.service import EarningService, RulesPipeline, earning_service
from kopilka.earning.state import Granted
from kopilka.errors import InvalidInput, KopilkaError, MemberBlocked, NotFound
from kopilka.idempotency.service import (
    StoredAnswer,
    ensure_same_request,
    replay,
    request_hash,
)
from kopilka.kit.clock import MAX_CLOCK_SKEW
from kopilka.kit.ids import new_id
from kopilka.kit.sql import is_postgres, plan_for_batch
from kopilka.ledger.domain import BalanceKey
from kopilka.ledger.service import Earned, LedgerService, earned_by_currency, ledger_service
from kopilka.ledger.unit import ledger_changes
from kopilka.members.domain import normalise_identifier
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import MemberHit, MemberService, member_service
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext
from kopilka.purchases.answers import anonymous_answer, purchase_result_json
from kopilka.purchases.batches import Batch, Outcome
from kopilka.purchases.payments import (
    payment_service,
    pays_otherwise,
    refuse_without_member,
)
from kopilka.purchases.perks import perks_answer, perks_for, record_use
from kopilka.purchases.records import line_rows, purchase_row
from kopilka.purchases.repository import PurchaseRepository, purchase_repository
from kopilka.purchases.schemas import (
    PointsPaymentQuote,
    PurchaseCreate,
)
from kopilka.purchases.views import recorded_event, rules_event
from kopilka.rules.domain import BenefitEffect
from kopilka.stores.service import store_service


def unknown_store(store: str) -> InvalidInput:
    return InvalidInput(
        f"store {store!r} is not one of the program's stores (add it first, or allow any "
        "store name with free_form_stores)",
        field="store",
    )


class PurchaseService:
    def __init__(
        self,
        repository: PurchaseRepository = purchase_repository,
        ledger: LedgerService = ledger_service,
        members: MemberService = member_service,
        earning: EarningService = earning_service,
    ) -> None:
        self.repository = repository
        self.ledger = ledger
        self.members = members
        self.earning = earning

    def _validate(self, program: ProgramContext, purchase: PurchaseCreate, now: datetime) -> None:
        if purchase.currency != program.settings.money_currency:
            raise InvalidInput(
                f"currency {purchase.currency} is not the program's "
                f"{program.settings.money_currency}",
                field="currency",
            )
        if purchase.occurred_at > now + MAX_CLOCK_SKEW:
            raise InvalidInput("occurred_at is in the future", field="occurred_at")
        if purchase.member is None:
            refuse_without_member(purchase)

    def _checked(
        self, program: ProgramContext, purchases: Sequence[PurchaseCreate], now: datetime
    ) -> list["Outcome | None"]:
        """An error outcome for each purchase the program refuses, None for the others."""
        outcomes: list[Outcome | None] = [None] * len(purchases)
        for index, purchase in enumerate(purchases):
            try:
                self._validate(program, purchase, now)
            except KopilkaError as exc:
                outcomes[index] = Outcome(exc.status, error=exc)
        return outcomes

    async def _check_stores(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchases: Sequence[PurchaseCreate],
        outcomes: list["Outcome | None"],
    ) -> None:
        """An error outcome for each purchase at a store the program does not know. Costs
        no query while every store named is one this process has seen (see
        ``StoreService.unknown_stores``)."""
        named = {
            p.store for i, p in enumerate(purchases) if p.store is not None and outcomes[i] is None
        }
        if not named:
            return
        unknown = await store_service.unknown_stores(conn, program, named)
        for index, purchase in enumerate(purchases):
            if outcomes[index] is None and purchase.store in unknown:
                error = unknown_store(purchase.store)
                outcomes[index] = Outcome(error.status, error=error)

    async def quote(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchase: PurchaseCreate,
        now: datetime,
    ) -> dict[str, Any]:
        """The same evaluation as :meth:`ingest`, with no side effects (a
        :class:`PurchaseQuote`); also how many points may pay for the basket, and what each
        coupon code would do."""
        self._validate(program, purchase, now)
        if purchase.store is not None and await store_service.unknown_stores(
            conn, program, {purchase.store}
        ):
            raise unknown_store(purchase.store)
        if purchase.member is None:
            return anonymous_answer(program, None, purchase, explain=True) | {
                "points_payment": None
            }
        member_id, status = await self.members.resolve(conn, program, purchase.member)
        balances = await self.ledger.balances(conn, program, member_id)
        terms = program.settings.points_payment
        available = (
            balances[terms.currency].available if terms and terms.currency in balances else 0
        )
        settlement, points_quote = await payment_service.settle(
            conn, program, purchase, member_id, available, now, redeem=False
        )
        pipeline = await self.earning.start(
            conn, program, [member_id], purchase.occurred_at, now, single_event=True
        )
        event = rules_event(purchase, None, settlement.line_reductions())
        evaluation = pipeline.evaluate(event, member_id, status, explain=True)
        pending_days = program.settings.pending_days
        pending = pending_days > 0 and purchase.occurred_at + timedelta(days=pending_days) > now
        earned = [
            Earned(e.rule_id, e.currency, e.amount, "pending" if pending else "available")
            for e in evaluation.earned
        ]
        benefits = [
            Granted(
                None,
                e.rule_id,
                e.kind,
                dict(e.payload),
                purchase.occurred_at + timedelta(days=e.valid_days) if e.valid_days else None,
            )
            for e in evaluation.effects
            if isinstance(e, BenefitEffect)
        ]
        answer = purchase_result_json(
            None,
            purchase,
            member_id,
            earned,
            balances_json(
                {(member_id, c): b for c, b in balances.items()},
                member_id,
                program.settings.currency_codes(),
            ),
            trace_out(evaluation),
            [b.answer() for b in benefits],
            None,
            settlement.answer() if pays_otherwise(purchase) else None,
            program.settings.points_currency(),
            perks=perks_answer(
                perks_for(
                    program,
                    pipeline,
                    member_id,
                    evaluation,
                    benefits,
                    settlement.paid,
                    purchase.occurred_at,
                )
            ),
        )
        answer["points_payment"] = (
            PointsPaymentQuote.model_validate(points_quote).model_dump() if points_quote else None
        )
        return answer

    async def ingest(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchases: Sequence[PurchaseCreate],
        now: datetime,
        *,
        explain: bool = False,
        create_members: bool = False,
    ) -> list[Outcome]:
        """Record purchases and credit what they earn; one outcome per purchase, in order.

        Bad purchases get an error outcome and change nothing; the good ones are written,
        with their domain events, in one unit of work. ``create_members`` (or the program's
        ``auto_enrol``) registers unknown members named by external id, phone or e-mail.
        """
        await plan_for_batch(conn, len(purchases))
        outcomes = self._checked(program, purchases, now)
        await self._check_stores(conn, program, purchases, outcomes)
        batch = await self._lock(conn, program, purchases, outcomes, now)
        # Checked after the member lock: a concurrent retry of the same purchase waits on
        # that lock and then sees the first one's stored answer.
        repeats, hashes = await self._replay_known(conn, program, batch, batch.records)
        # Only now, for purchases that will really be recorded, are unknown members enrolled:
        # a retry or a conflicting reuse of an external id registers nobody.
        new_members = await self._enrol_unknown(
            conn,
            program,
            batch,
            set(repeats),
            now,
            create=create_members or program.settings.auto_enrol,
        )
        batch.balances.update(await self.ledger.lock(conn, program, new_members, now))
        todo = {
            index: member
            for index, member in enumerate(batch.members)
            if outcomes[index] is None and member is not None and index not in repeats
        }
        anonymous = [
            index
            for index, purchase in enumerate(purchases)
            if purchase.member is None and outcomes[index] is None and index not in repeats
        ]
        uow = UnitOfWork(now)
        pipeline = await self.earning.start(
            conn,
            program,
            [member_id for member_id, _ in todo.values()],
            min((purchases[i].occurred_at for i in todo), default=now),
            now,
            uow,
            single_event=len(todo) == 1,
            tier_read=batch.tier_read if len(todo) == 1 else None,
        )
        await self._settle(conn, program, batch, todo, uow, now)
        for index, member in todo.items():
            outcomes[index] = self._record(
                pipeline, uow, program, batch, index, member, hashes[index], explain
            )
        for index in anonymous:
            outcomes[index] = self._record_anonymous(
                uow, program, purchases[index], hashes[index], explain
            )
        await uow.flush(conn)
        for index, first in repeats.items():
            original = outcomes[first]
            assert original is not None
            outcomes[index] = Outcome(
                original.status, original.result, original.error, replayed=True
            )
        return [o if o is not None else Outcome(500) for o in outcomes]

    async def enrol_members(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchases: Sequence[PurchaseCreate],
        now: datetime,
    ) -> None:
        """Register ahead the unknown members of the purchases that would be recorded:
        imports do it in a transaction of its own, batch after batch, so that two batches
        in flight never race to register the same new member."""
        await plan_for_batch(conn, len(purchases))
        outcomes = self._checked(program, purchases, now)
        await self._check_stores(conn, program, purchases, outcomes)
        members = await self._resolve(conn, program, purchases, lock=False)
        batch = Batch(purchases, outcomes, members, {})
        await self._enrol_unknown(conn, program, batch, set(), now, create=True)

    async def _lock(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchases: Sequence[PurchaseCreate],
        outcomes: list[Outcome | None],
        now: datetime,
    ) -> "Batch":
        """The purchases' members, locked, and their balances."""
        single = await self._lock_single(conn, program, purchases, outcomes)
        if single is not None:
            return single
        members = await self._resolve(conn, program, purchases, lock=True)
        balances = await self.ledger.balances_of(
            conn, program, {m[0] for m in members if m is not None}, now
        )
        return Batch(purchases, outcomes, members, balances)

    async def _resolve(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchases: Sequence[PurchaseCreate],
        *,
        lock: bool,
    ) -> list[MemberHit | None]:
        """The member of each purchase (None: unknown, or a purchase without a member),
        with the member lock taken if ``lock``."""
        named = [i for i, p in enumerate(purchases) if p.member is not None]
        refs = [ref for p in purchases if (ref := p.member) is not None]
        found: list[MemberHit | None] = []
        if refs and lock:
            found = await self.members.resolve_and_lock(conn, program, refs)
        elif refs:
            found = await self.members.resolve_many(conn, program, refs)
        if len(named) == len(purchases):
            return found
        members: list[MemberHit | None] = [None] * len(purchases)
        for index, hit in zip(named, found, strict=True):
            members[index] = hit
        return members

    async def _enrol_unknown(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        batch: "Batch",
        repeats: set[int],
        now: datetime,
        *,
        create: bool,
    ) -> list[UUID]:
        """Register the unknown members of the purchases still to record (or fail those
        purchases with 404); fills ``batch.members`` in place and returns the new members'
        ids.

        Two spellings of one identifier (``Anna@Example.com``, ``anna@example.com``) make
        one member: new members are keyed by the normalised identifier.
        """
        purchases, outcomes, members = batch.purchases, batch.outcomes, batch.members
        new_rows: dict[tuple[str, str], tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        for index, purchase in enumerate(purchases):
            if members[index] is not None or outcomes[index] is not None or index in repeats:
                continue
            if purchase.member is None:
                continue  # recorded without a member
            kind, value = purchase.member.kind_and_value()
            if not create or kind not in ("external_id", "phone", "email"):
                error = NotFound(f"no member with {kind} {value!r}", field=f"member.{kind}")
                outcomes[index] = Outcome(error.status, error=error)
                continue
            try:
                key = (kind, normalise_identifier(kind, value))
                if key not in new_rows:
                    new_rows[key] = self.members.build(
                        program, MemberCreate.model_validate({kind: value}), now
                    )
            except KopilkaError as exc:
                outcomes[index] = Outcome(exc.status, error=exc)
                continue
            members[index] = (new_rows[key][0]["id"], "active")
        if new_rows:
            await self.members.register_many(
                conn, program, list(new_rows.values()), now, channel="purchase"
            )
        return [row["id"] for row, _ in new_rows.values()]

    async def _lock_single(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchases: Sequence[PurchaseCreate],
        outcomes: list[Outcome | None],
    ) -> "Batch | None":
        """A single purchase on PostgreSQL by a known member with all their balance rows:
        member locked, balances and stored answer in one round trip. None: take the
        general path (several purchases, SQLite, an unknown member or identifier)."""
        if len(purchases) != 1 or not is_postgres(conn):
            return None
        purchase = purchases[0]
        if purchase.member is None:
            return None
        kind, value = purchase.member.kind_and_value()
        if kind == "id":
            return None
        try:
            value = normalise_identifier(kind, value)
        except InvalidInput:
            return None
        found = await self.repository.lock_member_with_answer(
            conn,
            program.id,
            kind,
            value,
            purchase.external_id,
            self.earning.tiers.window_for(program, purchase.occurred_at),
        )
        if found is None or set(found.balances) != set(program.settings.currency_codes()):
            return None  # unknown, or a balance row still to open: the general path does it
        balances = {(found.member_id, c): b for c, b in found.balances.items()}
        records = (
            {purchase.external_id: StoredAnswer(found.request_hash, 201, found.answer)}
            if found.request_hash is not None and found.answer is not None
            else {}
        )
        return Batch(
            purchases,
            outcomes,
            [(found.member_id, found.status)],
            balances,
            records=records,
            tier_read=found.tier_record,
        )

    async def _replay_known(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        batch: "Batch",
        records: dict[str, StoredAnswer] | None = None,
    ) -> tuple[dict[int, int], dict[int, str]]:
        """Answer retries from their stored answers (``records``, or read here). Returns the
        repeats within the batch ({index: index of the first occurrence}) and each new
        purchase's request hash."""
        purchases, outcomes = batch.purchases, batch.outcomes
        keys = [p.external_id for p in purchases]
        if records is None:
            records = await self.repository.purchase_answers(conn, program.id, keys)
        seen: dict[str, tuple[int, str]] = {}
        repeats: dict[int, int] = {}
        hashes: dict[int, str] = {}
        for index, purchase in enumerate(purchases):
            if outcomes[index] is not None:
                continue
            key, hash_ = keys[index], request_hash(purchase.model_dump(mode="json"))
            hashes[index] = hash_
            try:
                if key in records:
                    answer = replay(records[key], hash_, key, "external_id")
                    outcomes[index] = Outcome(answer.status_code, answer.body, replayed=True)
                elif key in seen:
                    # The same purchase twice in one batch: the second is a retry of the first.
                    first, first_hash = seen[key]
                    ensure_same_request(first_hash, hash_, key, "external_id")
                    repeats[index] = first
                else:
                    seen[key] = (index, hash_)
            except KopilkaError as exc:
                outcomes[index] = Outcome(exc.status, error=exc)
        return repeats, hashes

    async def _settle(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        batch: "Batch",
        todo: dict[int, MemberHit],
        uow: UnitOfWork,
        now: datetime,
    ) -> None:
        """Redeem the coupons and check the points of purchases paid partly with them;
        one that cannot be paid so gets an error outcome and leaves ``todo`` and keeps no
        code's use (see :meth:`CouponService.redeem`)."""
        terms = program.settings.points_payment
        spent: dict[BalanceKey, int] = {}
        for index in [i for i in todo if pays_otherwise(batch.purchases[i])]:
            purchase, (member_id, status) = batch.purchases[index], todo[index]
            key = (member_id, terms.currency) if terms else None
            balances = batch.balances
            available = balances[key].available - spent.get(key, 0) if key in balances else 0
            try:
                if purchase.points_to_spend and status != "active":
                    raise MemberBlocked(
                        "a blocked member cannot spend points", field="points_to_spend"
                    )
                settlement, _ = await payment_service.settle(
                    conn, program, purchase, member_id, available, now, redeem=True, uow=uow
                )
            except KopilkaError as exc:
                batch.outcomes[index] = Outcome(exc.status, error=exc)
                del todo[index]
                continue
            if settlement.points and key is not None:
                if key not in batch.lots:
                    batch.lots[key] = await payment_service.spending_lots(conn, *key)
                spent[key] = spent.get(key, 0) + settlement.points
            batch.settlements[index] = settlement

    def _record_anonymous(
        self,
        uow: UnitOfWork,
        program: ProgramContext,
        purchase: PurchaseCreate,
        request_hash_: str,
        explain: bool,
    ) -> Outcome:
        """A purchase without a member: recorded and announced, nothing earned (no rules
        run, nothing moves in the ledger or a tier) until a member claims it."""
        purchase_id = new_id()
        body = anonymous_answer(program, purchase_id, purchase, explain=explain)
        self.repository.stage_purchase(
            uow,
            purchase_row(program, purchase, purchase_id, None, request_hash_, body, uow.now),
            line_rows(purchase, purchase_id, None),
        )
        uow.emit(recorded_event(program, purchase, purchase_id, None, {}, None, None))
        return Outcome(201, body)

    def _record(
        self,
        pipeline: RulesPipeline,
        uow: UnitOfWork,
        program: ProgramContext,
        batch: "Batch",
        index: int,
        member: MemberHit,
        request_hash_: str,
        explain: bool,
    ) -> Outcome:
        """One purchase of the batch: points that pay for it leave first, then the rules."""
        member_id, status = member
        purchase = batch.purchases[index]
        settlement = batch.settlements.get(index)
        purchase_id = settlement.purchase_id if settlement is not None else new_id()
        if settlement is not None and settlement.points:
            lots = batch.lots[(member_id, str(settlement.points_currency))]
            payment_service.spend(
                ledger_changes(uow, program.id),
                batch.balances,
                lots,
                settlement,
                member_id,
                purchase,
            )
        reductions = settlement.line_reductions() if settlement else None
        applied = pipeline.apply_rules(
            rules_event(purchase, purchase_id, reductions),
            member_id,
            status,
            batch.balances,
            explain=explain,
        )
        paid = settlement.paid if settlement is not None else purchase.total
        perks = perks_for(
            program,
            pipeline,
            member_id,
            applied.evaluation,
            applied.benefits,
            paid,
            purchase.occurred_at,
        )
        record_use(pipeline, uow, member_id, perks, purchase_id)
        body = purchase_result_json(
            purchase_id,
            purchase,
            member_id,
            applied.earned,
            balances_json(batch.balances, member_id, program.settings.currency_codes()),
            trace_out(applied.evaluation),
            [b.answer() for b in applied.benefits],
            applied.tier,
            settlement.answer() if settlement else None,
            program.settings.points_currency(),
            perks=perks_answer(perks),
        )
        earned = earned_by_currency(applied.earned)
        row = purchase_row(program, purchase, purchase_id, member_id, request_hash_, body, uow.now)
        row["payments"] = settlement.record() if settlement else None
        row["earned"] = earned
        self.repository.stage_purchase(uow, row, line_rows(purchase, purchase_id, member_id))
        uow.emit(
            recorded_event(
                program, purchase, purchase_id, member_id, earned, applied.tier, settlement
            )
        )
        return Outcome(201, body)


purchase_service = PurchaseService()
