"""Events other than purchases — sign-up, profile completed, review, birthday, custom
events by name — run the rules with the matching trigger and credit what they give.

Idempotent by external id (a retry answers from the stored answer). Never commits.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import InvalidInput, NotFound
from kopilka.events.repository import event_repository
from kopilka.events.schemas import ActivityCreate, ActivityResult, BenefitOut, EarnedOut
from kopilka.events.service import balances_out, trace_out
from kopilka.kit.bulk import WriteBatch
from kopilka.kit.idempotency import idempotency_store
from kopilka.ledger.service import LedgerUnit, ledger_service
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.rules.domain import EvaluationContext, evaluate
from kopilka.rules.service import rules_state_loader, zone_named

MAX_CLOCK_SKEW = timedelta(hours=24)


class ActivityService:
    async def on_signup(
        self, conn: AsyncConnection, program: ProgramContext, member_id: Any, now: datetime
    ) -> None:
        """Run the program's sign-up rules for a member who has just registered (once: the
        event's id is derived from the member's)."""
        if not any("signup" in rule.triggers for rule in program.compiled.rules):
            return
        signup = ActivityCreate(
            member=MemberRef(id=member_id),
            external_id=f"signup:{member_id}",
            type="signup",
            occurred_at=now,
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
            conn, program.id, key, activity, operation, already_locked
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
        member_id, status = member
        state = await rules_state_loader.load(conn, program, [member_id], activity.occurred_at, now)
        facts = state.member(member_id)
        context = EvaluationContext(
            total=0,
            lines=(),
            occurred_at=activity.occurred_at,
            channel=activity.channel,
            store=None,
            member_status=status,
            trigger=activity.type,
            event_name=activity.name,
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
            purchase_id=activity.external_id,
            effects=[(e.rule_id, e.currency, e.amount) for e in evaluation.earned],
            occurred_at=activity.occurred_at,
            source_type=activity.type,
        )
        source = (activity.type, activity.external_id)
        benefits = state.apply(program, member_id, evaluation, activity.occurred_at, source, None)
        batch = WriteBatch()
        unit.stage(batch, ledger_service.repository)
        state.stage(batch)
        event_repository.stage_outbox(batch, [_recorded(program, member_id, activity, now)])
        await batch.write(conn)
        return ActivityResult(
            external_id=activity.external_id,
            type=activity.type,
            name=activity.name,
            member_id=member_id,
            occurred_at=activity.occurred_at,
            earned=[
                EarnedOut(rule_id=e.rule_id, currency=e.currency, amount=e.amount, status=e.status)
                for e in earned
            ],
            benefits=[BenefitOut.model_validate(b) for b in benefits],
            balances=balances_out(balances, member_id, program.settings.currency_codes()),
            trace=trace_out(evaluation),
        ).model_dump(mode="json")


def _recorded(
    program: ProgramContext, member_id: Any, activity: ActivityCreate, now: datetime
) -> dict[str, Any]:
    return {
        "program_id": program.id,
        "member_id": member_id,
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
