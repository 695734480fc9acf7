"""Events other than purchases — sign-up, profile completed, review, birthday, custom
events by name — run the rules with the matching trigger and credit what they give.

Idempotent by external id (a retry answers from the stored answer). Never commits.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.activities.schemas import ActivityCreate, ActivityResult
from kopilka.earning.answers import balances_out, trace_out
from kopilka.earning.schemas import BenefitOut, EarnedOut
from kopilka.errors import InvalidInput, NotFound
from kopilka.kit.bulk import WriteBatch
from kopilka.kit.clock import MAX_CLOCK_SKEW
from kopilka.kit.idempotency import idempotency_store
from kopilka.kit.ids import new_id
from kopilka.ledger.service import ledger_service
from kopilka.ledger.unit import LedgerUnit
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.purchases.repository import purchase_repository
from kopilka.rules.domain import Evaluation, EvaluationContext, evaluate
from kopilka.rules.service import rules_state_loader, zone_named
from kopilka.tiers.service import tier_service


class ActivityService:
    async def on_signup(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: Any,
        now: datetime,
        *,
        occurred_at: datetime | None = None,
    ) -> None:
        """Run the program's sign-up rules for a member who has just registered (once: the
        event's id is derived from the member's), as of ``occurred_at`` (default ``now``) for a
        back-filled registration."""
        if not has_trigger(program, "signup"):
            return
        signup = ActivityCreate(
            member=MemberRef(id=member_id),
            external_id=f"signup:{member_id}",
            type="signup",
            occurred_at=occurred_at or now,
        )
        await self.record(conn, program, signup, now)

    async def record(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        activity: ActivityCreate,
        now: datetime,
        *,
        explain: bool = False,
    ) -> tuple[int, dict[str, Any], bool]:
        """Record ``activity`` once; returns (status, answer, replayed)."""
        if activity.occurred_at > now + MAX_CLOCK_SKEW:
            raise InvalidInput("occurred_at is in the future", field="occurred_at")
        members, balances = await member_service.resolve_and_lock(
            conn, program, [activity.member], now
        )
        member = members[0]
        if member is None:
            kind, value = activity.member.kind_and_value()
            raise NotFound(f"no member with {kind} {value!r}", field=f"member.{kind}")

        async def operation() -> dict[str, Any]:
            return await self._run(conn, program, activity, member, balances, now, explain)

        async def already_locked() -> None:
            return None

        key = f"activity:{activity.external_id}"
        return await idempotency_store.run_once(
            conn,
            program.id,
            key,
            activity,
            operation,
            already_locked,
            external_id=activity.external_id,
        )

    async def _run(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        activity: ActivityCreate,
        member: tuple[Any, str],
        balances: dict[Any, Any],
        now: datetime,
        explain: bool,
    ) -> dict[str, Any]:
        member_id = member[0]
        event = TriggeredEvent(
            trigger=activity.type,
            name=activity.name,
            source_id=activity.external_id,
            occurred_at=activity.occurred_at,
            channel=activity.channel,
        )
        outbox = [_recorded(program, member_id, activity, now)]
        applied = await run_trigger(
            conn, program, member, balances, event, now, explain=explain, outbox=outbox
        )
        return ActivityResult(
            external_id=activity.external_id,
            type=activity.type,
            name=activity.name,
            member_id=member_id,
            occurred_at=activity.occurred_at,
            earned=applied.earned,
            benefits=applied.benefits,
            balances=balances_out(balances, member_id, program.settings.currency_codes()),
            trace=trace_out(applied.evaluation),
        ).model_dump(mode="json")


@dataclass(frozen=True)
class TriggeredEvent:
    """An event other than a purchase, as the rules see it."""

    trigger: str
    source_id: str
    occurred_at: datetime
    channel: str = "api"
    name: str | None = None
    store: str | None = None
    total: int = 0  # a return's money; 0 for events without money


@dataclass(frozen=True)
class Applied:
    evaluation: Evaluation
    earned: list[EarnedOut]
    benefits: list[BenefitOut]


def has_trigger(program: ProgramContext, trigger: str) -> bool:
    return any(trigger in rule.triggers for rule in program.compiled.rules)


async def run_trigger(
    conn: AsyncConnection,
    program: ProgramContext,
    member: tuple[Any, str],
    balances: dict[Any, Any],
    event: TriggeredEvent,
    now: datetime,
    *,
    explain: bool = False,
    outbox: list[dict[str, Any]] | None = None,
) -> Applied:
    """Run the rules on ``event.trigger`` for a member whose balance rows are locked, and
    write what they give (points, benefits, tags, events) in one statement."""
    member_id, status = member
    state = await rules_state_loader.load(conn, program, [member_id], event.occurred_at, now)
    facts = state.member(member_id)
    tiers = await tier_service.track(
        conn, program, [member_id], event.occurred_at, now, single_event=True
    )
    if tiers is not None:
        tiers.prime(facts, member_id, event.occurred_at)
    context = EvaluationContext(
        total=event.total,
        lines=(),
        occurred_at=event.occurred_at,
        channel=event.channel,
        store=event.store,
        member_status=status,
        trigger=event.trigger,
        event_name=event.name,
        member=facts,
        timezone=zone_named(facts.attributes.get("timezone")) or state.zone,
        program_usage=state.program_usage,
    )
    evaluation = evaluate(program.compiled, context, explain=explain)
    unit = LedgerUnit(program.id, now)
    earned = ledger_service.credit_purchase(
        unit,
        program,
        balances,
        member_id=member_id,
        purchase_id=event.source_id,
        effects=[(e.rule_id, e.currency, e.amount) for e in evaluation.earned],
        occurred_at=event.occurred_at,
        source_type=event.trigger,
    )
    source = (event.trigger, event.source_id)
    benefits = state.apply(program.compiled, member_id, evaluation, event.occurred_at, source, None)
    batch = WriteBatch()
    unit.stage(batch, ledger_service.repository)
    state.stage(batch)
    purchase_repository.stage_outbox(batch, outbox or [])
    await batch.write(conn)
    return Applied(
        evaluation,
        [
            EarnedOut(rule_id=e.rule_id, currency=e.currency, amount=e.amount, status=e.status)
            for e in earned
        ],
        [BenefitOut.model_validate(b) for b in benefits],
    )


def _recorded(
    program: ProgramContext, member_id: Any, activity: ActivityCreate, now: datetime
) -> dict[str, Any]:
    return {
        "program_id": program.id,
        "member_id": member_id,
        "event_id": new_id(),
        "topic": "activity.recorded",
        "payload": {
            "external_id": activity.external_id,
            "type": activity.type,
            "name": activity.name,
            "attributes": activity.attributes,
        },
        "occurred_at": activity.occurred_at,
        "created_at": now,
    }


activity_service = ActivityService()
