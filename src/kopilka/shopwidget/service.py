"""The web-shop widget: the shops allowed to show it, the short sessions it runs on, what it
shows a member and the points it puts on hold at checkout. Never commits.

A session is asked for by the shop's server (with a key of the program) for one member and
stands for that member only, for an hour; its token is returned once and only its hash
kept. The hold is the one ``POST /v1/redemptions`` makes (``mode: hold``), idempotent by the
key the widget sends, bounded by the balance and by what the shop allowed the session.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import InsufficientBalance, MemberBlocked, NotFound, Unauthorized
from kopilka.idempotency.service import idempotency_store
from kopilka.kit.ids import new_id
from kopilka.ledger.domain import Balance
from kopilka.ledger.redemptions import points_redemption_service
from kopilka.ledger.service import ledger_service
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.rewards.schemas import Reward
from kopilka.rewards.service import reward_service
from kopilka.shopwidget import domain
from kopilka.shopwidget.domain import WidgetSession
from kopilka.shopwidget.repository import WidgetRepository, widget_repository
from kopilka.shopwidget.schemas import (
    WidgetBalance,
    WidgetHoldOut,
    WidgetHoldRequest,
    WidgetSessionCreate,
    WidgetSessionOut,
    WidgetSettings,
)
from kopilka.tiers.schemas import MemberTierOut
from kopilka.tiers.service import tier_service

ENDED = "the widget's session has ended: the shop's page must be loaded again"
HOLD_REASON = "shop widget"
REWARDS_SHOWN = 6


@dataclass(frozen=True)
class WidgetSummary:
    """What the widget shows a member: the balance of the program's points, the tier and
    its progress (None without a ladder), the rewards the balance pays for now, and how
    many points this session may still hold (None: as many as the balance)."""

    balance: WidgetBalance
    tier: MemberTierOut | None
    rewards: list[Reward]
    points_left: int | None
    expires_at: datetime


class WidgetService:
    def __init__(self, repository: WidgetRepository = widget_repository) -> None:
        self.repository = repository

    # --- settings ------------------------------------------------------------------------

    async def settings(self, conn: AsyncConnection, program: ProgramContext) -> WidgetSettings:
        origins = await self.repository.allowed_origins(conn, program.id)
        return WidgetSettings.model_construct(allowed_origins=origins)

    async def save_settings(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        settings: WidgetSettings,
        now: datetime,
    ) -> WidgetSettings:
        await self.repository.save_allowed_origins(
            conn, program.id, list(settings.allowed_origins), now
        )
        return settings

    async def allowed_origins(self, conn: AsyncConnection, program: ProgramContext) -> list[str]:
        return await self.repository.allowed_origins(conn, program.id)

    # --- sessions ------------------------------------------------------------------------

    async def start_session(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        data: WidgetSessionCreate,
        now: datetime,
    ) -> WidgetSessionOut:
        """A new session for an active member of the program (404 for anyone else's, 403
        for a blocked one); the token is returned once and only its hash kept."""
        status = (await member_service.statuses(conn, program, [member_id])).get(member_id)
        if status is None:
            raise NotFound(f"member {member_id} not found", field="member_id")
        if status != "active":
            raise MemberBlocked(f"the member is {status}", field="member_id")
        token = domain.new_token()
        expires_at = domain.session_expiry(now)
        await self.repository.insert_session(
            conn,
            {
                "id": new_id(),
                "program_id": program.id,
                "member_id": member_id,
                "token_hash": domain.token_hash(token),
                "created_at": now,
                "expires_at": expires_at,
                "max_points": data.max_points,
                "points_held": 0,
            },
        )
        return WidgetSessionOut(
            token=token, expires_at=expires_at, member_id=member_id, max_points=data.max_points
        )

    async def session(
        self, conn: AsyncConnection, program: ProgramContext, token: str, now: datetime
    ) -> WidgetSession:
        """Who the token stands for in this program; 401 if it is unknown, expired, of
        another program, or its member is no longer active."""
        if not domain.looks_like_token(token):
            raise Unauthorized(ENDED)
        found = await self.repository.live_session(conn, domain.token_hash(token), now)
        if found is None:
            raise Unauthorized(ENDED)
        session, status = found
        if session.program_id != program.id or status != "active":
            raise Unauthorized(ENDED)
        return session

    # --- what the widget shows -----------------------------------------------------------

    async def end_sessions(self, conn: AsyncConnection, member_id: UUID, now: datetime) -> int:
        """End the member's widget sessions (blocked, merged or erased: a token made before
        stays dead even if the member is unblocked)."""
        return await self.repository.expire_sessions(conn, member_id, now)

    async def summary(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        session: WidgetSession,
        now: datetime,
    ) -> WidgetSummary:
        member_id = session.member_id
        currency = program.settings.points_currency()
        balances = await ledger_service.balances(conn, program, member_id)
        tier = None
        if program.settings.tiers is not None:
            found = await tier_service.member_tier(conn, program, member_id, now)
            tier = MemberTierOut.model_validate(found)
        rewards = await reward_service.catalog(
            conn,
            program,
            member_id=member_id,
            affordable=True,
            category=None,
            status=None,
            limit=REWARDS_SHOWN,
            cursor=None,
            now=now,
        )
        return WidgetSummary(
            balance=_balance(currency, balances.get(currency) or Balance()),
            tier=tier,
            rewards=rewards.items,
            points_left=session.points_left,
            expires_at=session.expires_at,
        )

    # --- paying with points --------------------------------------------------------------

    async def hold(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        session: WidgetSession,
        request: WidgetHoldRequest,
        idempotency_key: str,
        now: datetime,
    ) -> tuple[int, dict[str, Any], bool]:
        """Put ``request.points`` of the member's program points on hold, as
        ``POST /v1/redemptions`` with ``mode: hold`` does: once per key (a retry answers
        the first hold; the same key with other points is a 409). Refused with a 422 naming
        ``points`` past the balance or past what the shop allowed the session, with
        nothing held. Returns (status code, answer, replayed)."""
        member_id = session.member_id
        currency = program.settings.points_currency()

        async def lock() -> None:
            await ledger_service.lock(conn, program, [member_id], now)

        async def operation() -> dict[str, Any]:
            await lock()
            # Read under the member's lock, which every hold of this session takes first: a
            # hold of the session that committed meanwhile is counted, a block is seen.
            held = await self.repository.points_held(conn, session.session_id)
            domain.check_allowance(replace(session, points_held=held), request.points)
            status = (await member_service.statuses(conn, program, [member_id]))[member_id]
            try:
                view = await points_redemption_service.redeem(
                    conn,
                    program,
                    member_id=member_id,
                    member_status=status,
                    currency=currency,
                    amount=request.points,
                    mode="hold",
                    now=now,
                    reason=HOLD_REASON,
                    external_id=None,
                )
            except InsufficientBalance as exc:
                # The widget's field is ``points``; the ledger names its own ``amount``.
                raise InsufficientBalance(exc.detail, field="points", **exc.extra) from None
            await self.repository.add_points_held(conn, session.session_id, request.points)
            row = view.row
            return WidgetHoldOut(
                id=row["id"],
                points=row["amount"],
                currency=currency,
                status=row["status"],
                hold_expires_at=row["hold_expires_at"],
                balance=_balance(currency, view.balance),
            ).model_dump(mode="json")

        key = f"widget:{session.session_id}:{idempotency_key}"
        return await idempotency_store.run_once(conn, program.id, key, request, operation, lock)


def _balance(currency: str, balance: Balance) -> WidgetBalance:
    return WidgetBalance(
        currency=currency,
        available=balance.available,
        pending=balance.pending,
        held=balance.held,
    )


widget_service = WidgetService()
