"""A member's own coupons, as their wallet in the app shows them: each personal code with
what its campaign gives and whether it can be used now. Read only; never commits."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons import domain
from kopilka.coupons.domain import WalletState
from kopilka.coupons.repository import (
    CouponRepository,
    code_from_row,
    coupon_repository,
    terms_from_row,
)
from kopilka.errors import NotFound
from kopilka.kit.clock import as_utc
from kopilka.programs.service import ProgramContext

# A wallet lists this many of the member's newest codes (a member holds a handful; the
# rest are long spent or expired).
WALLET_SIZE = 200
# The order a wallet shows its codes in: what can be used first.
STATE_ORDER: dict[str, int] = {"valid": 0, "upcoming": 1, "used": 2, "expired": 3, "unavailable": 4}


@dataclass(frozen=True)
class WalletCoupon:
    id: UUID
    code: str
    campaign: str
    name: str
    description: str | None
    discount_kind: str  # percent | fixed | free_product | free_delivery
    discount_value: int  # percent, or minor units for a fixed discount
    max_discount: int | None
    free_sku: str | None
    min_basket: int
    uses: int
    max_uses: int | None
    valid_from: datetime | None
    valid_until: datetime | None  # the earlier of the code's and the campaign's ends
    issued_at: datetime
    state: WalletState


class CouponWallet:
    def __init__(self, repository: CouponRepository = coupon_repository) -> None:
        self.repository = repository

    async def coupons(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> list[WalletCoupon]:
        """The member's personal codes (the newest ``WALLET_SIZE``): valid ones first, then
        upcoming, used, expired and unavailable; newest first within each."""
        rows = await self.repository.member_codes_with_campaigns(
            conn, program.id, member_id, limit=WALLET_SIZE
        )
        found = [_coupon(code, campaign, now) for code, campaign in rows]
        return sorted(found, key=lambda c: STATE_ORDER[c.state])  # stable: newest first kept

    async def coupon(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        code_id: UUID,
        now: datetime,
    ) -> WalletCoupon:
        """One of the member's codes; 404 for any other (another member's included)."""
        rows = await self.repository.member_codes_with_campaigns(
            conn, program.id, member_id, limit=1, code_id=code_id
        )
        if not rows:
            raise NotFound(f"no coupon {code_id} of this member", field="code_id")
        code, campaign = rows[0]
        return _coupon(code, campaign, now)


def _coupon(row: Any, campaign: Any, now: datetime) -> WalletCoupon:
    code, terms = code_from_row(row), terms_from_row(campaign)
    return WalletCoupon(
        id=code.id,
        code=code.code,
        campaign=terms.key,
        name=campaign.name,
        description=campaign.description,
        discount_kind=terms.kind,
        discount_value=terms.value,
        max_discount=terms.max_discount,
        free_sku=terms.free_sku,
        min_basket=terms.min_basket,
        uses=code.uses,
        max_uses=code.max_uses,
        valid_from=terms.valid_from,
        valid_until=domain.valid_until(code, terms),
        issued_at=as_utc(row.issued_at),
        state=domain.wallet_state(code, terms, now),
    )


coupon_wallet = CouponWallet()
