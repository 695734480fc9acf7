"""App page: the member's personal offers — what the program's rules, its journeys or its
staff gave them that they can still use (a boost of their next purchase, a free sample or
free delivery with their next visit or order, a reward set aside for them, perhaps at a
personal price) and the coupons they can use now, in plain words. Used and expired offers
are not shown: nothing on this page is an offer that no longer works."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.benefits.service import benefit_service
from kopilka.coupons.wallet import coupon_wallet
from kopilka.errors import NotFound
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.rewards.schemas import Reward
from kopilka.rewards.service import reward_service
from kopilka.web.app.access import SignedInMember, member_read
from kopilka.web.app.history import app_page

router = APIRouter(prefix="/app", include_in_schema=False)
# A coupon is an offer while it can be used (or soon will be).
USABLE = frozenset({"valid", "upcoming"})


@router.get("/{slug}/offers")
async def offers(request: Request, member: SignedInMember) -> Response:
    """The member's offers they can still use, ending soonest first, and their coupons
    that can be used; a plain sentence when there is nothing."""

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        now = clock.now()
        waiting = await benefit_service.offers(conn, program, member.member_id, now)
        keys = sorted({str(o.payload.get("reward")) for o in waiting if o.kind == "reward"})
        # Each reward as the member sees it: its name, their price (a personal price
        # offer included) in its currency. A reward no longer in the shop keeps its key.
        rewards: dict[str, Reward] = {}
        for key in keys:
            try:
                rewards[key] = await reward_service.get(conn, program, key, member.member_id, now)
            except NotFound:
                continue
        coupons = await coupon_wallet.coupons(conn, program, member.member_id, now)
        return waiting, rewards, [c for c in coupons if c.state in USABLE]

    waiting, rewards, coupons = await member_read(request, read)
    return app_page(
        request,
        member,
        "app/offers/offers.html",
        {"offers": waiting, "rewards": rewards, "coupons": coupons},
    )
