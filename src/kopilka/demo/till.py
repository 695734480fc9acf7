"""What demo shoppers do at the till besides paying money: present the coupon a rule gave
them, try the public launch code, or pay part of the basket with points."""

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons.schemas import CampaignCreate, CodesCreate
from kopilka.coupons.service import basket_lines, coupon_service
from kopilka.events.domain import PointsTerms
from kopilka.events.payments import points_terms
from kopilka.events.schemas import PurchaseCreate
from kopilka.kit.sql import one_of
from kopilka.models import CouponCode, MemberBalance, MemberIdentifier
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext

CAMPAIGNS: list[dict[str, Any]] = [
    {
        "key": "next-coffee",
        "name": "10 % off coffee on the next visit",
        "discount": {"kind": "percent", "value": 10},
        "categories": ["coffee"],
        "valid_days": 30,
        "code_pattern": "CAFE-####-####",
    },
    {
        "key": "app-launch",
        "name": "50 ₽ off a basket of 300 ₽ or more, once per member",
        "discount": {"kind": "fixed", "value": 5_000},
        "min_basket": 30_000,
        "uses_per_code": None,
        "per_member_limit": 1,
    },
]
PUBLIC_CODE = "HELLO"
COUPON_CHANCE = 0.6  # a shopper holding a personal code presents it …
PUBLIC_CHANCE = 0.04  # … or tries the public code
POINTS_CHANCE = 0.12  # a shopper with points pays part of the basket with them
codes_t = table(CouponCode)
balances_t = table(MemberBalance)
identifiers_t = table(MemberIdentifier)


async def create_campaigns(conn: AsyncConnection, program: ProgramContext, now: datetime) -> None:
    for campaign in CAMPAIGNS:
        await coupon_service.create_campaign(conn, program, CampaignCreate(**campaign), now)
    await coupon_service.add_codes(
        conn, program, "app-launch", CodesCreate(codes=[PUBLIC_CODE]), now
    )


@dataclass
class Till:
    """The demo's shoppers over the whole run (who has used the one-per-member code)."""

    rng: random.Random
    used_public: set[str] = field(default_factory=set)

    async def prepare(
        self, conn: AsyncConnection, program: ProgramContext, purchases: Sequence[PurchaseCreate]
    ) -> list[PurchaseCreate]:
        """The day's purchases with codes and points added; one paying purchase per member
        a day, so a second one never finds the points already spent."""
        shoppers = sorted({str(p.member.external_id) for p in purchases})
        ids = await self._member_ids(conn, program, shoppers)
        codes = await self._open_codes(
            conn, list(ids.values()), max(p.occurred_at for p in purchases)
        )
        points = await self._points(conn, list(ids.values()))
        terms = points_terms(program)
        done: set[str] = set()
        prepared = []
        for purchase in purchases:
            who = str(purchase.member.external_id)
            member_id = ids.get(who)
            change: dict[str, Any] = {}
            if who not in done and member_id is not None:
                change = await self._choose(
                    conn, program, who, member_id, purchase, codes, points, terms
                )
            if change:
                done.add(who)
            prepared.append(purchase.model_copy(update=change) if change else purchase)
        return prepared

    async def _choose(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        who: str,
        member_id: UUID,
        purchase: PurchaseCreate,
        codes: dict[UUID, str],
        points: dict[UUID, int],
        terms: PointsTerms | None,
    ) -> dict[str, Any]:
        """A code the basket can take, or points, or nothing."""
        code = None
        if member_id in codes and self.rng.random() < COUPON_CHANCE:
            code = codes[member_id]
        elif who not in self.used_public and self.rng.random() < PUBLIC_CHANCE:
            code = PUBLIC_CODE
        if code is not None and await self._fits(conn, program, code, member_id, purchase):
            codes.pop(member_id, None)
            if code == PUBLIC_CODE:
                self.used_public.add(who)
            return {"coupon_codes": [code]}
        available = points.get(member_id, 0)
        if terms is None or available <= 0 or self.rng.random() >= POINTS_CHANCE:
            return {}
        categories = [line.category for line in purchase.lines] or [None]
        left = [line.amount for line in purchase.lines] or [purchase.total]
        most = terms.max_points(categories, left, available)
        return {"points_to_spend": most} if most else {}

    async def _fits(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        code: str,
        member_id: UUID,
        purchase: PurchaseCreate,
    ) -> bool:
        """Whether the basket can take the code (a shopper does not present a coupon for
        coffee with a basket of milk)."""
        decisions = await coupon_service.decide(
            conn,
            program,
            [code],
            member_id,
            basket_lines(purchase.lines),
            purchase.total,
            purchase.occurred_at,
        )
        return decisions[0].accepted

    async def _member_ids(
        self, conn: AsyncConnection, program: ProgramContext, external_ids: list[str]
    ) -> dict[str, UUID]:
        rows = await conn.execute(
            select(identifiers_t.c.value, identifiers_t.c.member_id).where(
                identifiers_t.c.program_id == program.id,
                identifiers_t.c.kind == "external_id",
                one_of(conn, identifiers_t.c.value, external_ids),
            )
        )
        return {value: member_id for value, member_id in rows.all()}

    async def _open_codes(
        self, conn: AsyncConnection, member_ids: list[UUID], moment: datetime
    ) -> dict[UUID, str]:
        if not member_ids:
            return {}
        rows = await conn.execute(
            select(codes_t.c.member_id, codes_t.c.code).where(
                one_of(conn, codes_t.c.member_id, member_ids),
                codes_t.c.status == "active",
                or_(codes_t.c.max_uses.is_(None), codes_t.c.uses < codes_t.c.max_uses),
                or_(codes_t.c.valid_until.is_(None), codes_t.c.valid_until > moment),
            )
        )
        return {member_id: code for member_id, code in rows.all()}

    async def _points(self, conn: AsyncConnection, member_ids: list[UUID]) -> dict[UUID, int]:
        if not member_ids:
            return {}
        rows = await conn.execute(
            select(balances_t.c.member_id, balances_t.c.available).where(
                and_(
                    one_of(conn, balances_t.c.member_id, member_ids),
                    balances_t.c.currency == "points",
                )
            )
        )
        return {member_id: int(available) for member_id, available in rows.all()}
