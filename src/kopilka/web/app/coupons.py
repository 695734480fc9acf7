"""App pages: the member's wallet — their personal coupons (valid, used, expired), each with
its code and a QR code the till scans; their gift cards and the money in their wallet, if
they have any (as ``GET /v1/members/{id}/coupons``, ``/gift-cards`` and ``/wallet``)."""

import base64
from functools import lru_cache
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons.wallet import coupon_wallet
from kopilka.giftcards.service import gift_card_service
from kopilka.giftcards.wallets import wallet_service
from kopilka.kit.clock import clock
from kopilka.kit.codes import qr_svg
from kopilka.programs.service import ProgramContext
from kopilka.web.app.access import SignedInMember, member_read
from kopilka.web.app.history import app_page

router = APIRouter(prefix="/app", include_in_schema=False)
GIFT_CARDS_SHOWN = 50
# Codes still worth scanning get a QR code on the wallet page.
SCANNABLE = frozenset({"valid", "upcoming"})


@lru_cache(maxsize=2048)
def qr_image(text: str) -> str:
    """A QR code of ``text`` as a ``data:`` URL (the page's policy allows images from
    ``data:``, nothing else inline). Codes never change, so each is drawn once."""
    encoded = base64.b64encode(qr_svg(text).encode()).decode()
    return f"data:image/svg+xml;base64,{encoded}"


@router.get("/{slug}/coupons")
async def wallet(request: Request, member: SignedInMember) -> Response:
    """The member's coupons (what can be used first), gift cards and money wallet."""

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        now = clock.now()
        coupons = await coupon_wallet.coupons(conn, program, member.member_id, now)
        cards = await gift_card_service.member_cards(
            conn, program, member.member_id, limit=GIFT_CARDS_SHOWN, before=None, now=now
        )
        money = await wallet_service.get(conn, program, member.member_id, now)
        return coupons, cards, money

    coupons, cards, money = await member_read(request, read)
    qr = {c.code: qr_image(c.code) for c in coupons if c.state in SCANNABLE}
    qr |= {c["code"]: qr_image(c["code"]) for c in cards if c["status"] == "active"}
    return app_page(
        request,
        member,
        "app/coupons/wallet.html",
        {"coupons": coupons, "cards": cards, "money": money, "qr": qr},
    )


@router.get("/{slug}/coupons/{code_id}")
async def coupon(request: Request, member: SignedInMember, code_id: UUID) -> Response:
    """One of the member's coupons, its QR code large enough for the till's scanner;
    another member's coupon is not found."""

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        return await coupon_wallet.coupon(conn, program, member.member_id, code_id, clock.now())

    found = await member_read(request, read)
    return app_page(
        request, member, "app/coupons/coupon.html", {"c": found, "qr": qr_image(found.code)}
    )
