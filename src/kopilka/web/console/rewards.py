"""Console pages: the rewards shop — the catalogue with stock and visibility, a reward's
form (create, change, archive), its code pool, and its redemptions to fulfil or cancel.

Every page calls the services the API's routes call (``/v1/rewards``,
``/v1/reward-redemptions``), with the permission each of those routes requires.
"""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.coupons.service import coupon_service
from kopilka.errors import KopilkaError, NotFound
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.rewards.domain import KINDS
from kopilka.rewards.judging import ladder_ids
from kopilka.rewards.redemptions import redemption_service
from kopilka.rewards.schemas import CodesAdd, Reward
from kopilka.rewards.service import reward_service
from kopilka.web.console.access import console_page, program_of
from kopilka.web.console.catalog_fields import checked, form_errors, lines, raw
from kopilka.web.console.reward_form import (
    api_field,
    form_fields,
    new_reward,
    read_reward,
    reward_changes,
    reward_values,
    submitted_values,
)
from kopilka.web.forms import form_of, text
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50
STATUSES = ("active", "archived")
REDEMPTION_STATUSES = ("issued", "fulfilled", "cancelled")


def _one_of(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


async def _form_options(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
    """What the reward form offers to choose from: the program's currencies, tiers and
    coupon campaigns, and the kinds."""
    campaigns = await coupon_service.campaigns(conn, program)
    return {
        "currencies": program.settings.currency_codes(),
        "tiers": ladder_ids(program),
        "campaigns": [(c["key"], c["name"]) for c in campaigns],
        "kinds": KINDS,
        "money_currency": program.settings.money_currency,
    }


# --- the catalogue ---------------------------------------------------------------------------


@router.get("/rewards")
async def rewards_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    """Every reward of the shop in key order: its price (and tier prices), stock left of the
    total, who may see it (tier, window) and its status; filtered by status."""
    shown = _one_of(status, STATUSES)

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        page = await reward_service.catalog(
            conn,
            program,
            member_id=None,
            affordable=False,
            category=None,
            status=shown,
            limit=PAGE_SIZE,
            cursor=cursor,
            now=clock.now(),
        )
        redeemed = await reward_service.redeemed(conn, program, [r.id for r in page.items])
        return {"program": program, "page": page, "redeemed": redeemed}

    found = await read_only(engine, principal, work)
    next_url = None
    if found["page"].next_cursor:
        query = f"&status={shown}" if shown else ""
        next_url = f"/console/rewards?cursor={found['page'].next_cursor}{query}"
    return render(
        request,
        "console/rewards/index.html",
        {**found, "status": shown, "next_url": next_url},
        zone=found["program"].settings.timezone,
    )


# --- a new reward ----------------------------------------------------------------------------


async def _new_form(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        return {"program": program, **(await _form_options(conn, program))}

    found = await read_only(engine, principal, work)
    context = {**found, "values": values, "errors": errors, "creating": True}
    return render(
        request,
        "console/rewards/new.html",
        context,
        status=status,
        zone=found["program"].settings.timezone,
    )


@router.get("/rewards/new")
async def new_reward_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
) -> Response:
    """The form of a new reward."""
    defaults = {"currency": "points", "status": "active", "kind": "physical", "price": "0"}
    return await _new_form(request, engine, principal, defaults, {})


@router.post("/rewards/new")
async def create_reward(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
) -> Response:
    """Create a reward, as ``POST /v1/rewards``; a refusal shows the form again with each
    message beside its field, nothing created."""
    form = await form_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> Reward:
        body = new_reward(read_reward(form, program, creating=True))
        return await reward_service.create(conn, program, body, clock.now())

    try:
        reward = await in_transaction(engine, principal, work)
    except KopilkaError as exc:
        program = await program_of(engine, principal)
        values = submitted_values(form, program, creating=True)
        errors = form_errors(exc, form_fields(program, creating=True), api_field)
        return await _new_form(request, engine, principal, values, errors, status=422)
    notice = gettext(language_of(request), "Reward %(key)s created.", key=reward.key)
    return redirect(request, f"/console/rewards/{reward.key}", notice)


# --- one reward ------------------------------------------------------------------------------


async def _reward_page(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    key: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    codes_text: str = "",
    status: int = 200,
) -> Response:
    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        reward = await reward_service.get(conn, program, key, None, clock.now())
        redeemed = (await reward_service.redeemed(conn, program, [reward.id]))[reward.id]
        options = await _form_options(conn, program) if principal.can(P.CATALOG_MANAGE) else {}
        return {"program": program, "reward": reward, "redeemed": redeemed, **options}

    found = await read_only(engine, principal, work)
    shown = values or reward_values(found["reward"], found["redeemed"], found["program"])
    context = {
        **found,
        "values": shown,
        "errors": errors or {},
        "codes_text": codes_text,
        "creating": False,
    }
    return render(
        request,
        "console/rewards/show.html",
        context,
        status=status,
        zone=found["program"].settings.timezone,
    )


@router.get("/rewards/{key}")
async def reward_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
    key: str,
) -> Response:
    """A reward: its terms, stock left of the total, the free codes of its pool; with
    ``catalog.manage`` its form and the form that adds codes to its pool."""
    return await _reward_page(request, engine, principal, key)


@router.post("/rewards/{key}")
async def update_reward(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
    key: str,
) -> Response:
    """Change a reward, as ``PATCH /v1/rewards/{key}`` with the fields that differ; a new
    total stock restocks it. A refusal changes nothing and shows the form again."""
    form = await form_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> None:
        submitted = read_reward(form, program, creating=False)
        current = await reward_service.get(conn, program, key, None, clock.now())
        changes = reward_changes(current, submitted)
        if submitted.stock_changed:
            await reward_service.set_total_stock(
                conn, program, key, submitted.stock_total, clock.now()
            )
        if changes.model_fields_set:
            await reward_service.update(conn, program, key, changes, clock.now())

    try:
        await in_transaction(engine, principal, work)
    except NotFound:
        raise
    except KopilkaError as exc:
        program = await program_of(engine, principal)
        values = submitted_values(form, program, creating=False)
        errors = form_errors(exc, form_fields(program, creating=False), api_field)
        return await _reward_page(
            request, engine, principal, key, values=values, errors=errors, status=422
        )
    return redirect(request, f"/console/rewards/{key}", gettext(language_of(request), "Saved."))


@router.post("/rewards/{key}/codes")
async def add_reward_codes(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
    key: str,
) -> Response:
    """Add codes to a pooled digital reward, one per line, as ``POST
    /v1/rewards/{key}/codes``; codes the pool has already are skipped."""
    form = await form_of(request)
    typed = raw(form, "codes")

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        body = checked(CodesAdd, {"codes": lines(typed)})
        return await reward_service.add_codes(conn, program, key, body, clock.now())

    try:
        added = await in_transaction(engine, principal, work)
    except NotFound:
        raise
    except KopilkaError as exc:
        errors = {"codes": "; ".join(form_errors(exc, ["codes"], lambda _: "codes").values())}
        return await _reward_page(
            request, engine, principal, key, errors=errors, codes_text=typed, status=422
        )
    notice = gettext(
        language_of(request),
        "Codes added: %(added)s; already in the pool: %(duplicates)s; free now: %(available)s.",
        added=added.added,
        duplicates=added.duplicates,
        available=added.available,
    )
    return redirect(request, f"/console/rewards/{key}", notice)


# --- redemptions -----------------------------------------------------------------------------


@router.get("/rewards/{key}/redemptions")
async def redemptions_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MEMBERS_READ)],
    key: str,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    """A reward's redemptions, newest first (those still to hand over with ``issued``),
    with the buttons that fulfil or cancel an issued one."""
    shown = _one_of(status, REDEMPTION_STATUSES)
    before = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        reward = await reward_service.get(conn, program, key, None, clock.now())
        page = await redemption_service.of_reward(
            conn, program, key, limit=PAGE_SIZE, before=before, status=shown
        )
        return {"program": program, "reward": reward, "page": page}

    found = await read_only(engine, principal, work)
    next_url = None
    if found["page"].next_cursor:
        query = f"&status={shown}" if shown else ""
        next_url = f"/console/rewards/{key}/redemptions?cursor={found['page'].next_cursor}{query}"
    return render(
        request,
        "console/rewards/redemptions.html",
        {**found, "status": shown, "next_url": next_url, "statuses": REDEMPTION_STATUSES},
        zone=found["program"].settings.timezone,
    )


async def _redemption_of(
    conn: AsyncConnection, program: ProgramContext, key: str, redemption_id: UUID
) -> None:
    """404 unless the redemption is one of this reward's (of this program)."""
    found = await redemption_service.get(conn, program, redemption_id)
    if found.reward_key != key:
        raise NotFound(f"no reward redemption {redemption_id}", field="redemption_id")


def _back_to_redemptions(request: Request, key: str, notice: str) -> Response:
    return redirect(request, f"/console/rewards/{key}/redemptions", notice)


@router.post("/rewards/{key}/redemptions/{redemption_id}/fulfil")
async def fulfil_redemption(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.REWARDS_FULFIL)],
    key: str,
    redemption_id: UUID,
) -> Response:
    """Mark an issued redemption handed over (``POST /v1/reward-redemptions/{id}/fulfil``),
    with an optional note (a tracking number)."""
    form = await form_of(request)
    note = text(form, "note", limit=500)

    async def work(conn: AsyncConnection, program: ProgramContext) -> None:
        await _redemption_of(conn, program, key, redemption_id)
        await redemption_service.fulfil(conn, program, redemption_id, note, clock.now())

    await in_transaction(engine, principal, work)
    return _back_to_redemptions(request, key, gettext(language_of(request), "Marked handed over."))


@router.post("/rewards/{key}/redemptions/{redemption_id}/cancel")
async def cancel_redemption(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PAYMENTS_TAKE)],
    key: str,
    redemption_id: UUID,
) -> Response:
    """Cancel an issued redemption (``POST /v1/reward-redemptions/{id}/cancel``): the
    points go back to the member and a counted stock gets its item back (the service
    records it in the audit log). One cancelled already is said to be, nothing done."""
    form = await form_of(request)
    reason = text(form, "reason", limit=500)

    async def work(conn: AsyncConnection, program: ProgramContext) -> bool:
        await _redemption_of(conn, program, key, redemption_id)
        now = clock.now()
        done = await redemption_service.cancel(conn, program, redemption_id, reason, now)
        # Cancelled in this call only if at this instant: an earlier cancellation keeps its
        # own time (read under the member's lock, so a concurrent one is seen).
        return done.cancelled_at == now

    cancelled = await in_transaction(engine, principal, work)
    language = language_of(request)
    notice = (
        gettext(language, "Cancelled; the points went back to the member.")
        if cancelled
        else gettext(language, "This redemption was cancelled already: nothing was changed.")
    )
    return _back_to_redemptions(request, key, notice)
