"""Events other than purchases — sign-up, profile completed, review, birthday, custom
events by name — run the rules with the matching trigger and credit what they give.

Idempotent by external id (a retry answers from the stored answer). A member signs up
once: the sign-up rules run for the first sign-up only, whichever path recorded it (the
registration itself, ``POST /v1/events``, the CLI). Never commits.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.activities.schemas import ActivityCreate, ActivityResult
from kopilka.earning.answers import balances_out, trace_out
from kopilka.earning.schemas import BenefitOut, EarnedOut
from kopilka.earning.service import (
    Applied,
    EarningService,
    RulesEvent,
    earning_service,
    has_trigger,
)
from kopilka.earning.state import Source
from kopilka.errors import InvalidInput, NotFound
from kopilka.idempotency.service import IdempotencyStore, idempotency_store, request_hash
from kopilka.kit.clock import MAX_CLOCK_SKEW
from kopilka.ledger.domain import Balance, BalanceKey
from kopilka.ledger.service import LedgerService, earned_by_currency, ledger_service
from kopilka.members.schemas import Member, MemberCreate, MemberRef
from kopilka.members.service import MemberHit, MemberService, member_service
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext


def signed_up_key(member_id: UUID) -> str:
    """The idempotency key marking that a member's sign-up rules have run."""
    return f"member-signup:{member_id}"


class ActivityService:
    def __init__(
        self,
        members: MemberService = member_service,
        ledger: LedgerService = ledger_service,
        earning: EarningService = earning_service,
        idempotency: IdempotencyStore = idempotency_store,
    ) -> None:
        self.members = members
        self.ledger = ledger
        self.earning = earning
        self.idempotency = idempotency

    async def on_signup(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
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

    async def sign_up(
        self, conn: AsyncConnection, program: ProgramContext, data: MemberCreate, now: datetime
    ) -> Member:
        """Register a member and run the program's sign-up rules, both as of
        ``data.registered_at`` when given (a back-filled member), else ``now``: the API's
        and the CLI's registration."""
        registered_at = data.registered_at or now
        member = await self.members.register(conn, program, data, registered_at)
        await self.on_signup(conn, program, member.id, now, occurred_at=registered_at)
        return member

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
        member = (await self.members.resolve_and_lock(conn, program, [activity.member]))[0]
        if member is None:
            kind, value = activity.member.kind_and_value()
            raise NotFound(f"no member with {kind} {value!r}", field=f"member.{kind}")

        async def operation() -> dict[str, Any]:
            return await self._run(conn, program, activity, member, now, explain)

        async def already_locked() -> None:
            return None

        key = f"activity:{activity.external_id}"
        return await self.idempotency.run_once(
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
        member: MemberHit,
        now: datetime,
        explain: bool,
    ) -> dict[str, Any]:
        member_id, status = member
        balances = await self.ledger.balances_of(conn, program, [member_id], now)
        uow = UnitOfWork(now)
        applied: Applied | None = None
        if await self._first_signup_or_other(conn, program, activity, member_id, uow):
            pipeline = await self.earning.start(
                conn, program, [member_id], activity.occurred_at, now, uow, single_event=True
            )
            event = RulesEvent(
                trigger=activity.type,
                source=Source(activity.type, activity.external_id),
                occurred_at=activity.occurred_at,
                channel=activity.channel,
                name=activity.name,
            )
            applied = pipeline.apply_rules(event, member_id, status, balances, explain=explain)
        earned = applied.earned if applied else []
        uow.emit(
            events.ActivityRecorded(
                program_id=program.id,
                member_id=member_id,
                occurred_at=activity.occurred_at,
                external_id=activity.external_id,
                activity=activity.type,
                name=activity.name,
                channel=activity.channel,
                attributes=activity.attributes,
                earned=earned_by_currency(earned),
            )
        )
        await uow.flush(conn)
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
            benefits=[BenefitOut.model_validate(b.answer()) for b in applied.benefits]
            if applied
            else [],
            balances=balances_out(
                _of(balances, member_id), member_id, program.settings.currency_codes()
            ),
            trace=trace_out(applied.evaluation) if applied else None,
        ).model_dump(mode="json")

    async def _first_signup_or_other(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        activity: ActivityCreate,
        member_id: UUID,
        uow: UnitOfWork,
    ) -> bool:
        """False for a second sign-up of a member (its rules must not run again); a first
        one is marked, in the same transaction, under the member lock."""
        if activity.type != "signup":
            return True
        key = signed_up_key(member_id)
        if await self.idempotency.find(conn, program.id, key) is not None:
            return False
        body = {"external_id": activity.external_id}
        self.idempotency.stage(
            uow, [self.idempotency.row(program.id, key, request_hash(body), 200, body, uow.now)]
        )
        return True


def _of(balances: dict[BalanceKey, Balance], member_id: UUID) -> dict[BalanceKey, Balance]:
    return {k: b for k, b in balances.items() if k[0] == member_id}


activity_service = ActivityService()
