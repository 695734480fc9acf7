"""What demo shoppers do at the till besides paying money: present the coupon a rule gave
them, try the public launch code, or pay part of the basket with points."""

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons.schemas import CampaignCreate, CodesCreate
from kopilka.coupons.service import basket_lines, coupon_service
from kopilka.demo.repository import demo_repository
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.purchases.domain import PointsTerms
from kopilka.purchases.payments import points_terms
from kopilka.purchases.schemas import PurchaseCreate

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
    # Receipts of checks made without the card: (when the member claims it, receipt, member).
    claims: list[tuple[datetime, str, str]] = field(default_factory=list)

    async def prepare(
        self, conn: AsyncConnection, program: ProgramContext, purchases: Sequence[PurchaseCreate]
    ) -> list[PurchaseCreate]:
        """The day's purchases with codes and points added; one paying purchase per member
        a day, so a second one never finds the points already spent."""
        shoppers = sorted({str(p.member.external_id) for p in purchases if p.member is not None})
        found = await member_service.resolve_many(
            conn, program, [MemberRef(external_id=who) for who in shoppers]
        )
        ids = {who: member[0] for who, member in zip(shoppers, found, strict=True) if member}
        codes = await demo_repository.open_codes(
            conn, list(ids.values()), max(p.occurred_at for p in purchases)
        )
        points = await demo_repository.available(conn, list(ids.values()), "points")
        terms = points_terms(program)
        done: set[str] = set()
        prepared = []
        for purchase in purchases:
            if purchase.member is None:  # a check without a card: nothing to pay or apply
                prepared.append(purchase)
                continue
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
