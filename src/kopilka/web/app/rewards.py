"""App pages: the rewards shop as the member sees it — what is on offer to them at their
price (the rewards service's visibility: status, dates, tier, stock), what they can afford
now, redeeming with a confirmation (the same service as ``POST /v1/rewards/{key}/
redemptions``, once per form however often it is sent), and their redemptions."""

import re
import secrets
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import IdempotencyConflict, KopilkaError, NotFound
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor
from kopilka.ledger.domain import Balance
from kopilka.ledger.service import ledger_service
from kopilka.members.schemas import MemberRef
from kopilka.programs.service import ProgramContext
from kopilka.rewards.domain import HIDING, Reason
from kopilka.rewards.redemptions import redemption_service
from kopilka.rewards.schemas import RedemptionCreate, Reward
from kopilka.rewards.service import reward_service
from kopilka.web.app.access import (
    MemberCaller,
    SignedInMember,
    app_url,
    member_read,
    member_transaction,
)
from kopilka.web.app.history import app_page, next_page
from kopilka.web.forms import form_of, text
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect

router = APIRouter(prefix="/app", include_in_schema=False)
CATALOG_PAGE = 24
HISTORY_PAGE = 20
# A form's own key: random, made when the confirmation is shown (see ``confirm``).
FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# A reward hidden from the member for these reasons has no page for them; one out of stock
# keeps its page, which says so.
NO_PAGE = HIDING - {Reason.OUT_OF_STOCK}

# Why a reward cannot be taken, in the member's words.
REFUSALS = {
    Reason.INSUFFICIENT_BALANCE.value: "You do not have enough points for this reward yet.",
    Reason.OUT_OF_STOCK.value: "Sorry, this reward is out of stock.",
    Reason.LIMIT_REACHED.value: "You have already taken this reward as many times as allowed.",
    Reason.MEMBER_BLOCKED.value: "Your card is blocked: rewards cannot be redeemed.",
    Reason.TIER.value: "This reward is for a higher tier.",
    Reason.ARCHIVED.value: "This reward is no longer on offer.",
    Reason.ENDED.value: "This reward is no longer on offer.",
    Reason.NOT_YET_AVAILABLE.value: "This reward is not on offer yet.",
}
RESENT = "This confirmation was already used for another reward: open the reward again."
INCOMPLETE = "This form is incomplete: open the reward again."


def refusal_text(language: str, reason: str | None, detail: str | None) -> str | None:
    """Why the member cannot take a reward, in their language (None: they can)."""
    if reason is None:
        return None
    known = REFUSALS.get(reason)
    return gettext(language, known) if known else detail


@router.get("/{slug}/rewards")
async def catalog(
    request: Request,
    member: SignedInMember,
    affordable: bool = False,
    cursor: str | None = None,
) -> Response:
    """The rewards on offer to the member at their price; ``affordable``: only those their
    points pay for now."""

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        now = clock.now()
        page = await reward_service.catalog(
            conn,
            program,
            member_id=member.member_id,
            affordable=affordable,
            category=None,
            status=None,
            limit=CATALOG_PAGE,
            cursor=cursor,
            now=now,
        )
        return page, await ledger_service.balances(conn, program, member.member_id)

    page, balances = await member_read(request, read)
    more = {"affordable": "true"} if affordable else {}
    return app_page(
        request,
        member,
        "app/rewards/catalog.html",
        {
            "rewards": page.items,
            "balances": balances,
            "affordable": affordable,
            "next_url": next_page(app_url(member.slug, "rewards"), page.next_cursor, **more),
        },
    )


async def _reward_for(request: Request, member: MemberCaller, key: str) -> tuple[Reward, Balance]:
    """The reward as the member sees it and their balance in its currency; 404 when the
    reward is not on offer to them."""

    async def read(conn: AsyncConnection, program: ProgramContext) -> tuple[Reward, Balance]:
        reward = await reward_service.get(conn, program, key, member.member_id, clock.now())
        balances = await ledger_service.balances(conn, program, member.member_id)
        return reward, balances.get(reward.currency, Balance())

    reward, balance = await member_read(request, read)
    if reward.reason is not None and Reason(reward.reason) in NO_PAGE:
        raise NotFound(f"no reward {key!r}", field="key")
    return reward, balance


def _reward_page(
    request: Request,
    member: MemberCaller,
    template: str,
    reward: Reward,
    balance: Balance,
    *,
    error: str | None = None,
    form_key: str | None = None,
    status: int = 200,
) -> Response:
    language = language_of(request)
    return app_page(
        request,
        member,
        template,
        {
            "reward": reward,
            "balance": balance,
            "refusal": refusal_text(language, reward.reason, reward.detail),
            "error": error,
            "form_key": form_key,
        },
        status=status,
    )


@router.get("/{slug}/rewards/{key}")
async def reward_page(request: Request, member: SignedInMember, key: str) -> Response:
    """A reward: what it is, the member's price, whether they can take it now (and if not,
    why), and the button to redeem it."""
    reward, balance = await _reward_for(request, member, key)
    return _reward_page(request, member, "app/rewards/reward.html", reward, balance)


@router.get("/{slug}/rewards/{key}/redeem")
async def confirm(request: Request, member: SignedInMember, key: str) -> Response:
    """The confirmation: the price and the balance after. Its form carries a key of its own,
    so a double tap or a resent form redeems once."""
    reward, balance = await _reward_for(request, member, key)
    return _reward_page(
        request,
        member,
        "app/rewards/confirm.html",
        reward,
        balance,
        form_key=secrets.token_urlsafe(24),
    )


@router.post("/{slug}/rewards/{key}/redeem")
async def redeem(request: Request, member: SignedInMember, key: str) -> Response:
    """Redeem the reward for the member; the result's page follows. Refused (not enough
    points, out of stock, a limit): the confirmation again with the reason, nothing spent."""
    form = await form_of(request)
    language = language_of(request)
    form_key = text(form, "form_key", limit=64) or ""
    if not FORM_KEY.match(form_key):
        return await _refused(request, member, key, gettext(language, INCOMPLETE))

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        body = RedemptionCreate(member=MemberRef(id=member.member_id))
        once = f"app:{member.member_id}:{form_key}"
        return await redemption_service.redeem(conn, program, key, body, once, clock.now())

    try:
        _, made, replayed = await member_transaction(request, work)
    except NotFound:
        raise
    except IdempotencyConflict:
        return await _refused(request, member, key, gettext(language, RESENT), status=409)
    except KopilkaError as exc:
        reason = exc.extra.get("reason")
        message = refusal_text(language, reason if isinstance(reason, str) else None, exc.detail)
        return await _refused(request, member, key, message or exc.detail)
    notice = None if replayed else gettext(language, "Done: the reward is yours.")
    return redirect(request, app_url(member.slug, f"my-rewards/{made['id']}"), notice)


async def _refused(
    request: Request, member: MemberCaller, key: str, message: str, *, status: int = 422
) -> Response:
    """The confirmation again, with why nothing was done and a fresh form."""
    reward, balance = await _reward_for(request, member, key)
    return _reward_page(
        request,
        member,
        "app/rewards/confirm.html",
        reward,
        balance,
        error=message,
        form_key=secrets.token_urlsafe(24),
        status=status,
    )


@router.get("/{slug}/my-rewards")
async def my_rewards(
    request: Request, member: SignedInMember, cursor: str | None = None
) -> Response:
    """The member's redemptions, newest first: what they took, for how much, its state and
    code."""
    before = decode_cursor(cursor) if cursor else None

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        return await redemption_service.history(
            conn, program, member.member_id, limit=HISTORY_PAGE, before=before
        )

    page = await member_read(request, read)
    return app_page(
        request,
        member,
        "app/rewards/mine.html",
        {
            "redemptions": page.items,
            "next_url": next_page(app_url(member.slug, "my-rewards"), page.next_cursor),
        },
    )


@router.get("/{slug}/my-rewards/{redemption_id}")
async def my_reward(request: Request, member: SignedInMember, redemption_id: UUID) -> Response:
    """One of the member's redemptions: the code or voucher it handed out, or what happens
    next, and the member's balance now. Another member's is not found."""

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        found = await redemption_service.get(conn, program, redemption_id)
        if found.member_id != member.member_id:
            raise NotFound(f"no reward redemption {redemption_id}", field="redemption_id")
        balances = await ledger_service.balances(conn, program, member.member_id)
        return found, balances.get(found.currency, Balance())

    found, balance = await member_read(request, read)
    return app_page(
        request, member, "app/rewards/redemption.html", {"redemption": found, "balance": balance}
    )
