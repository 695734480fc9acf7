"""The member's card in the phone's wallet: ``/app/<slug>/wallet/apple.pkpass`` (a signed
Apple Wallet pass, which keeps itself current through the pass web service) and
``/app/<slug>/wallet/google`` (a link that saves the card to Google Wallet). The card page
links to both. A program that has not set a wallet up answers a page saying so (404); so
does a member without a card number, which is what the pass's code carries.
"""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.wallet.domain import PKPASS_MEDIA_TYPE as MEDIA_TYPE
from kopilka.wallet.domain import NoCardNumber, WalletNotSetUp
from kopilka.wallet.service import PassFile, wallet_service
from kopilka.web.app.access import MemberCaller, SignedInMember, member_read
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, render

router = APIRouter(prefix="/app", include_in_schema=False)


@router.get("/{slug}/wallet/apple.pkpass")
async def apple_pass(request: Request, slug: str, member: SignedInMember) -> Response:
    """The signed-in member's card as an Apple Wallet pass (opening it adds it)."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> PassFile:
        return await wallet_service.apple_pass(conn, program, member.member_id, clock.now())

    try:
        made = await member_read(request, work)
    except (WalletNotSetUp, NoCardNumber) as exc:
        return _unavailable(request, member, exc)
    return Response(
        made.content,
        media_type=MEDIA_TYPE,
        headers={
            "Content-Disposition": 'attachment; filename="card.pkpass"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/{slug}/wallet/google")
async def google_pass(request: Request, slug: str, member: SignedInMember) -> Response:
    """Off to Google Wallet with the signed-in member's card (Google saves it there)."""
    language = language_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> str:
        return await wallet_service.google_save_url(
            conn,
            program,
            member.member_id,
            clock.now(),
            points_label=gettext(language, "Points"),
            tier_label=gettext(language, "Tier"),
        )

    try:
        target = await member_read(request, work)
    except (WalletNotSetUp, NoCardNumber) as exc:
        return _unavailable(request, member, exc)
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


def _unavailable(
    request: Request, member: MemberCaller, reason: WalletNotSetUp | NoCardNumber
) -> Response:
    """The page saying why the card cannot go to the wallet (404)."""
    return render(
        request,
        "app/wallet/unavailable.html",
        {
            "slug": member.slug,
            "program_name": member.program.name,
            "no_card": isinstance(reason, NoCardNumber),
        },
        status=404,
        zone=member.program.settings.timezone,
    )
