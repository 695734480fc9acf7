"""App page: the member's personal offers — what the program's rules gave them that is
still waiting (a boost of their next purchase, a reward set aside for them) and the coupons
they can use now, in plain words."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons.wallet import coupon_wallet
from kopilka.earning.service import earning_service
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.rewards.service import reward_service
from kopilka.web.app.access import SignedInMember, member_read
from kopilka.web.app.history import app_page

router = APIRouter(prefix="/app", include_in_schema=False)
# A coupon is an offer while it can be used (or soon will be).
USABLE = frozenset({"valid", "upcoming"})


@router.get("/{slug}/offers")
async def offers(request: Request, member: SignedInMember) -> Response:
    """Boosts and rewards the rules gave the member that are still waiting for them, and
    their coupons that can be used; a plain sentence when there is nothing."""

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        now = clock.now()
        found = await earning_service.member_offers(conn, program, member.member_id, now)
        # A coupon a rule gave is in the member's wallet with its terms: listed from there.
        waiting = [o for o in found if o.kind != "coupon"]
        rewards = [str(o.payload.get("reward")) for o in waiting if o.kind == "reward"]
        names = await reward_service.names(conn, program, rewards)
        coupons = await coupon_wallet.coupons(conn, program, member.member_id, now)
        return waiting, names, [c for c in coupons if c.state in USABLE]

    waiting, names, coupons = await member_read(request, read)
    return app_page(
        request,
        member,
        "app/offers/offers.html",
        {"offers": waiting, "reward_names": names, "coupons": coupons},
    )
