"""The purchase path: resolve members, evaluate rules, credit points, record, answer.

One purchase over HTTP and ten thousand from an import go through the same
:meth:`PurchaseService.ingest`; the only difference is how many rows each statement carries.
Never commits.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.earning.answers import balances_out, trace_out
from kopilka.earning.schemas import BenefitOut, EarnedOut
from kopilka.errors import InvalidInput, KopilkaError, MemberBlocked, NotFound
from kopilka.kit.clock import MAX_CLOCK_SKEW
from kopilka.kit.codes import normalise_code
from kopilka.kit.idempotency import (
    StoredAnswer,
    ensure_same_request,
    replay,
    request_hash,
)
from kopilka.kit.ids import new_id
from kopilka.kit.sql import is_postgres, plan_for_batch
from kopilka.ledger.domain import Balance
from kopilka.ledger.repository import BalanceKey
from kopilka.ledger.service import LedgerService, ledger_service
from kopilka.members.domain import normalise_identifier
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import MemberService, member_service
from kopilka.programs.service import ProgramContext
from kopilka.purchases.answers import purchase_result_json
from kopilka.purchases.payments import Settlement, payment_service, pays_otherwise
from kopilka.purchases.repository import PurchaseRepository, purchase_repository
from kopilka.purchases.schemas import PaymentOut, PointsPaymentQuote, PurchaseCreate, PurchaseQuote
from kopilka.purchases.writer import PurchaseWriter
from kopilka.rules.domain import (
    UTC_ZONE,
    BasketLine,
    BenefitEffect,
    EvaluationContext,
    MemberFacts,
    evaluate,
)
from kopilka.rules.service import RulesState, rules_state_loader, zone_named
from kopilka.tiers.service import tier_service


@dataclass
class Outcome:
    """What happened to one purchase of a batch: a result, or an error; ``replayed`` if it
    was answered from an earlier identical request."""

    status: int
    result: dict[str, Any] | None = None
    error: KopilkaError | None = None
    replayed: bool = False


def evaluation_context(
    purchase: PurchaseCreate,
    member_status: str,
    facts: MemberFacts | None = None,
    state: RulesState | None = None,
    reductions: list[int] | None = None,
) -> EvaluationContext:
    """The rules' view of a purchase: the basket, where and when, and the member's facts.
    Local time is the member's own time zone (attribute ``timezone``) or the program's.
    ``reductions`` (coupons and points, per line) come off the lines and the total, so the
    rules earn on the money paid."""
    facts = facts or MemberFacts()
    zone = zone_named(facts.attributes.get("timezone")) or (state.zone if state else UTC_ZONE)
    cuts = reductions or [0] * max(len(purchase.lines), 1)
    return EvaluationContext(
        total=purchase.total - sum(cuts),
        lines=[
            BasketLine(
                line.sku,
                line.category,
                line.quantity,
                line.amount - cut,
                line.brand,
                frozenset(line.tags),
            )
            for line, cut in zip(purchase.lines, cuts, strict=False)
        ],
        occurred_at=purchase.occurred_at,
        channel=purchase.channel,
        store=purchase.store,
        member_status=member_status,
        region=purchase.region,
        payment_method=purchase.payment_method,
        coupons=frozenset(purchase.coupons).union(map(normalise_code, purchase.coupon_codes)),
        member=facts,
        timezone=zone,
        program_usage=state.program_usage if state else {},
    )


class PurchaseService:
    def __init__(
        self,
        events: PurchaseRepository = purchase_repository,
        ledger: LedgerService = ledger_service,
        members: MemberService = member_service,
    ) -> None:
        self.events = events
        self.ledger = ledger
        self.members = members

    def _validate(self, program: ProgramContext, purchase: PurchaseCreate, now: datetime) -> None:
        if purchase.currency != program.settings.money_currency:
            raise InvalidInput(
                f"currency {purchase.currency} is not the program's "
                f"{program.settings.money_currency}",
                field="currency",
            )
        if purchase.occurred_at > now + MAX_CLOCK_SKEW:
            raise InvalidInput("occurred_at is in the future", field="occurred_at")

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

    async def quote(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchase: PurchaseCreate,
        now: datetime,
    ) -> PurchaseQuote:
        """The same evaluation as :meth:`ingest`, with no side effects; also how many points
        may pay for the basket, and what each coupon code would do."""
        self._validate(program, purchase, now)
        member_id, status = await self.members.resolve(conn, program, purchase.member)
        balances = await self.ledger.balances(conn, member_id)
        terms = program.settings.points_payment
        available = (
            balances[terms.currency].available if terms and terms.currency in balances else 0
        )
        settlement, points_quote = await payment_service.settle(
            conn, program, purchase, member_id, available, now, redeem=False
        )
        state = await rules_state_loader.load(
            conn, program, [member_id], purchase.occurred_at, now, lock=False
        )
        tiers = await tier_service.track(
            conn, program, [member_id], purchase.occurred_at, now, single_event=True
        )
        if tiers is not None:
            tiers.prime(state.member(member_id), member_id, purchase.occurred_at)
        context = evaluation_context(
            purchase, status, state.member(member_id), state, settlement.line_reductions()
        )
        evaluation = evaluate(program.compiled, context, explain=True)
        pending_days = program.settings.pending_days
        pending = pending_days > 0 and purchase.occurred_at + timedelta(days=pending_days) > now
        earned = [
            EarnedOut(
                rule_id=e.rule_id,
                currency=e.currency,
                amount=e.amount,
                status="pending" if pending else "available",
            )
            for e in evaluation.earned
        ]
        benefits = [
            BenefitOut(
                id=None,
                rule_id=e.rule_id,
                kind=e.kind,
                payload=dict(e.payload),
                expires_at=purchase.occurred_at + timedelta(days=e.valid_days)
                if e.valid_days
                else None,
            )
            for e in evaluation.effects
            if isinstance(e, BenefitEffect)
        ]
        return PurchaseQuote(
            id=None,
            external_id=purchase.external_id,
            member_id=member_id,
            occurred_at=purchase.occurred_at,
            total=purchase.total,
            earned=earned,
            points_earned=sum(e.amount for e in earned if e.currency == "points"),
            balances=balances_out(
                {(member_id, c): b for c, b in balances.items()},
                member_id,
                program.settings.currency_codes(),
            ),
            benefits=benefits,
            trace=trace_out(evaluation),
            payment=PaymentOut.model_validate(settlement.answer())
            if pays_otherwise(purchase)
            else None,
            points_payment=PointsPaymentQuote.model_validate(points_quote)
            if points_quote
            else None,
        )

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

        Bad purchases get an error outcome and change nothing; the good ones are written.
        ``create_members`` (or the program's ``auto_enrol``) registers unknown members named
        by external id, phone or e-mail.
        """
        await plan_for_batch(conn, len(purchases))
        outcomes = self._checked(program, purchases, now)
        locked = await self._lock_single(conn, program, purchases)
        if locked is not None:
            members, balances, records = locked
        else:
            members, balances = await self.members.resolve_and_lock(
                conn, program, [p.member for p in purchases], now
            )
            records = None
        # Checked after the member lock: a concurrent retry of the same purchase waits on
        # that lock and then sees the first one's stored answer.
        repeats, hashes = await self._replay_known(conn, program, purchases, outcomes, records)
        # Only now, for purchases that will really be recorded, are unknown members enrolled:
        # a retry or a conflicting reuse of an external id registers nobody.
        new_members = await self._enrol_unknown(
            conn,
            program,
            purchases,
            outcomes,
            members,
            set(repeats),
            now,
            create=create_members or program.settings.auto_enrol,
        )
        balances.update(await self.ledger.lock(conn, program, new_members, now))
        todo = {
            index: member
            for index, member in enumerate(members)
            if outcomes[index] is None and member is not None and index not in repeats
        }
        state = await rules_state_loader.load(
            conn,
            program,
            [member_id for member_id, _ in todo.values()],
            min((purchases[i].occurred_at for i in todo), default=now),
            now,
        )
        tiers = await tier_service.track(
            conn,
            program,
            [member_id for member_id, _ in todo.values()],
            min((purchases[i].occurred_at for i in todo), default=now),
            now,
            single_event=len(todo) == 1,
        )
        writer = PurchaseWriter(program, now, state, tiers)
        await self._settle(conn, program, purchases, todo, balances, outcomes, writer, now)
        for index, member in todo.items():
            outcomes[index] = self._process(
                writer,
                program,
                balances,
                purchases[index],
                member,
                hashes[index],
                explain,
                writer.settlements.get(index),
            )
        await writer.flush(conn, self.events, self.ledger)
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
        members = await self.members.resolve_many(conn, program, [p.member for p in purchases])
        await self._enrol_unknown(
            conn, program, purchases, outcomes, members, set(), now, create=True
        )

    async def _enrol_unknown(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchases: Sequence[PurchaseCreate],
        outcomes: list[Outcome | None],
        members: list[tuple[UUID, str] | None],
        repeats: set[int],
        now: datetime,
        *,
        create: bool,
    ) -> list[UUID]:
        """Register the unknown members of the purchases still to record (or fail those
        purchases with 404); fills ``members`` in place and returns the new members' ids.

        Two spellings of one identifier (``Anna@Example.com``, ``anna@example.com``) make
        one member: new members are keyed by the normalised identifier.
        """
        new_rows: dict[tuple[str, str], tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        for index, purchase in enumerate(purchases):
            if members[index] is not None or outcomes[index] is not None or index in repeats:
                continue
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
            await self.members.register_many(conn, program, list(new_rows.values()), now)
        return [row["id"] for row, _ in new_rows.values()]

    async def _lock_single(
        self, conn: AsyncConnection, program: ProgramContext, purchases: Sequence[PurchaseCreate]
    ) -> (
        tuple[list[tuple[UUID, str] | None], dict[BalanceKey, Balance], dict[str, StoredAnswer]]
        | None
    ):
        """A single purchase on PostgreSQL by a known member with all their balance rows:
        member, locked balances and stored answer in one round trip. None: take the
        general path (several purchases, SQLite, an unknown member or identifier)."""
        if len(purchases) != 1 or not is_postgres(conn):
            return None
        purchase = purchases[0]
        kind, value = purchase.member.kind_and_value()
        if kind == "id":
            return None
        try:
            value = normalise_identifier(kind, value)
        except InvalidInput:
            return None
        rows = await self.events.lock_member_with_answer(
            conn, program.id, kind, value, purchase.external_id
        )
        if {r[2] for r in rows} != set(program.settings.currency_codes()):
            return None  # unknown, or a balance row still to open: the general path does it
        member_id, status = rows[0][0], rows[0][1]
        balances = {(member_id, r[2]): Balance(r[3], r[4], r[5]) for r in rows}
        first = rows[0]
        records = (
            {purchase.external_id: StoredAnswer(first[6], 201, first[7])}
            if first[6] is not None
            else {}
        )
        return [(member_id, status)], balances, records

    async def _replay_known(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchases: Sequence[PurchaseCreate],
        outcomes: list[Outcome | None],
        records: dict[str, StoredAnswer] | None = None,
    ) -> tuple[dict[int, int], dict[int, str]]:
        """Answer retries from their stored answers (``records``, or read here). Returns the
        repeats within the batch ({index: index of the first occurrence}) and each new
        purchase's request hash."""
        keys = [p.external_id for p in purchases]
        if records is None:
            records = await self.events.purchase_answers(conn, program.id, keys)
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
        purchases: Sequence[PurchaseCreate],
        todo: dict[int, tuple[UUID, str]],
        balances: dict[BalanceKey, Balance],
        outcomes: list[Outcome | None],
        writer: PurchaseWriter,
        now: datetime,
    ) -> None:
        """Redeem the coupons and check the points of purchases paid partly with them;
        one that cannot be paid so gets an error outcome and leaves ``todo`` and keeps no
        code's use (see :meth:`CouponService.redeem`)."""
        terms = program.settings.points_payment
        spent: dict[BalanceKey, int] = {}
        for index in [i for i in todo if pays_otherwise(purchases[i])]:
            purchase, (member_id, status) = purchases[index], todo[index]
            key = (member_id, terms.currency) if terms else None
            available = balances[key].available - spent.get(key, 0) if key in balances else 0
            try:
                if purchase.points_to_spend and status != "active":
                    raise MemberBlocked(
                        "a blocked member cannot spend points", field="points_to_spend"
                    )
                settlement, _ = await payment_service.settle(
                    conn, program, purchase, member_id, available, now, redeem=True
                )
            except KopilkaError as exc:
                outcomes[index] = Outcome(exc.status, error=exc)
                del todo[index]
                continue
            if settlement.points and key is not None:
                if key not in writer.lots:
                    writer.lots[key] = await payment_service.spending_lots(conn, *key)
                spent[key] = spent.get(key, 0) + settlement.points
            writer.settlements[index] = settlement

    def _process(
        self,
        writer: PurchaseWriter,
        program: ProgramContext,
        balances: dict[BalanceKey, Balance],
        purchase: PurchaseCreate,
        member: tuple[UUID, str],
        request_hash_: str,
        explain: bool,
        settlement: Settlement | None = None,
    ) -> Outcome:
        member_id, status = member
        facts = writer.state.member(member_id)
        if writer.tiers is not None:
            writer.tiers.prime(facts, member_id, purchase.occurred_at)
        reductions = settlement.line_reductions() if settlement else None
        evaluation = evaluate(
            program.compiled,
            evaluation_context(purchase, status, facts, writer.state, reductions),
            explain=explain,
        )
        purchase_id = new_id()
        if settlement is not None:
            purchase_id = settlement.purchase_id
            if settlement.points:
                lots = writer.lots[(member_id, str(settlement.points_currency))]
                payment_service.spend(writer.unit, balances, lots, settlement, member_id, purchase)
        earned = self.ledger.credit_purchase(
            writer.unit,
            program,
            balances,
            member_id=member_id,
            purchase_id=str(purchase_id),
            effects=[(e.rule_id, e.currency, e.amount) for e in evaluation.earned],
            occurred_at=purchase.occurred_at,
        )
        benefits = writer.state.apply(
            program.compiled,
            member_id,
            evaluation,
            purchase.occurred_at,
            ("purchase", str(purchase_id)),
            purchase.total,
        )
        tier = None
        if writer.tiers is not None:
            tier = writer.tiers.after_purchase(
                member_id,
                str(purchase_id),
                purchase.occurred_at,
                purchase.total,
                sum(e.amount for e in earned if e.currency == writer.tiers.ladder.points_currency),
            )
        body = purchase_result_json(
            purchase_id,
            purchase,
            member_id,
            earned,
            balances_out(balances, member_id, program.settings.currency_codes()),
            trace_out(evaluation),
            benefits,
            tier,
            settlement.answer() if settlement else None,
        )
        writer.add(
            purchase,
            purchase_id,
            member_id,
            earned,
            body,
            request_hash_,
            settlement.record() if settlement else None,
        )
        return Outcome(201, body)


purchase_service = PurchaseService()
