"""Console pages: gift cards — look a card up by its code, see its balance, journal and QR
code, issue one card or a batch, top a card up, disable or enable it, change its expiry.

Every page calls the services the API's routes call (``/v1/gift-cards``), with the
permission each of those routes requires: reading a card is ``members.read`` (a card may be
a member's), issuing and changing it ``catalog.manage``, topping it up ``payments.take``.
Issuing and topping up are named by a random token the form carries, as the API's
``external_id`` / ``Idempotency-Key``: a form sent twice (a double click, a reload) does its
work once, and is in the audit log once.
"""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.audit.service import audit_service
from kopilka.errors import KopilkaError, NotFound
from kopilka.giftcards.schemas import GiftCardBatchCreate, GiftCardCreate, GiftCardOut
from kopilka.giftcards.service import gift_card_service
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.idempotency.service import idempotency_store
from kopilka.kit import pagination
from kopilka.kit.clock import clock
from kopilka.kit.codes import normalise_code
from kopilka.programs.service import ProgramContext
from kopilka.web.console.access import console_page, program_of
from kopilka.web.console.catalog_fields import (
    FieldReader,
    checked,
    form_errors,
    new_token,
    qr_data_url,
    raw_values,
)
from kopilka.web.forms import FormInvalid, flag, form_of, text
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
JOURNAL_PAGE = 50
EXPIRY_FIELDS = ("valid_days", "expires_at", "never_expires")
ISSUE_FIELDS = ("amount", "member_id", "code", *EXPIRY_FIELDS, "token")
BATCH_FIELDS = ("count", "amount", "pattern", *EXPIRY_FIELDS, "token")
TOP_UP_FIELDS = ("amount", "reference", "token")


def _card_url(code: str) -> str:
    return f"/console/gift-cards/{quote(code)}"


# --- the front page: look up, issue ----------------------------------------------------------


async def _front_page(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    *,
    issue: dict[str, str] | None = None,
    batch: dict[str, str] | None = None,
    errors: dict[str, dict[str, str]] | None = None,
    lookup: str = "",
    status: int = 200,
) -> Response:
    program = await program_of(engine, principal)
    context = {
        "program": program,
        "issue": issue or {"token": new_token()},
        "batch": batch or {"token": new_token(), "pattern": "GC-####-####-####"},
        "errors": errors or {},
        "lookup": lookup,
    }
    return render(
        request,
        "console/giftcards/index.html",
        context,
        status=status,
        zone=program.settings.timezone,
    )


@router.get("/gift-cards")
async def gift_cards_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
) -> Response:
    """Gift cards: find a card by its code (with ``members.read``); issue one card or a
    batch (with ``catalog.manage``)."""
    return await _front_page(request, engine, principal)


@router.get("/gift-cards/lookup")
async def look_up_card(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MEMBERS_READ)],
    code: str = "",
) -> Response:
    """Find a card as a till would (case and blanks aside): its page, or the front page
    saying there is no such card."""
    typed = code.strip()

    async def work(conn: AsyncConnection, program: ProgramContext) -> str | None:
        try:
            card = await gift_card_service.get(conn, program, typed, clock.now())
        except NotFound:
            return None
        return str(card["code"])

    found = await read_only(engine, principal, work) if typed else None
    if found is not None:
        return redirect(request, _card_url(found))
    message = gettext(language_of(request), "No gift card has this code.")
    return await _front_page(
        request, engine, principal, errors={"lookup": {"code": message}}, lookup=typed, status=404
    )


def _expiry(reader: FieldReader, form: Any, zone: str) -> dict[str, Any]:
    return {
        "valid_days": reader.integer("valid_days"),
        "expires_at": reader.instant("expires_at", zone),
        "never_expires": flag(form, "never_expires"),
    }


def _read_issue(form: Any, program: ProgramContext) -> GiftCardCreate:
    reader = FieldReader(form)
    currency = program.settings.money_currency
    values: dict[str, Any] = {
        "amount": reader.money("amount", currency),
        "member_id": text(form, "member_id", limit=100),
        "code": text(form, "code", limit=200),
        "external_id": f"console-{text(form, 'token', required=True, limit=100)}",
        **_expiry(reader, form, program.settings.timezone),
    }
    reader.done()
    return checked(GiftCardCreate, {k: v for k, v in values.items() if v is not None})


@router.post("/gift-cards/new")
async def issue_card(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
) -> Response:
    """Issue one card (a generated code, or an existing card number), optionally in a
    member's name, as ``POST /v1/gift-cards``; then its page."""
    form = await form_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        body = _read_issue(form, program)

        async def operation() -> dict[str, Any]:
            card = await gift_card_service.issue_card(
                conn,
                program,
                amount=body.amount,
                now=clock.now(),
                member_id=body.member_id,
                valid_days=body.valid_days,
                expires_at=body.expires_at,
                never_expires=body.never_expires,
                code=body.code,
                external_id=body.external_id,
            )
            return GiftCardOut.model_validate(card).model_dump(mode="json")

        key = f"gift-card:issue:id:{body.external_id}"
        _, card, replayed = await idempotency_store.run_once(
            conn, program.id, key, body, operation, _no_lock, external_id=body.external_id
        )
        if replayed:
            audit_service.nothing_changed()  # the first sending has its entry
        return card

    try:
        card = await in_transaction(engine, principal, work)
    except KopilkaError as exc:
        errors = {"issue": form_errors(exc, ISSUE_FIELDS)}
        issue = raw_values(form, ISSUE_FIELDS)
        return await _front_page(request, engine, principal, issue=issue, errors=errors, status=422)
    notice = gettext(language_of(request), "Gift card %(code)s issued.", code=card["code"])
    return redirect(request, _card_url(card["code"]), notice)


async def _no_lock() -> None:
    # Two copies of one issue at once: the second's idempotency record collides with the
    # first's, and its transaction runs again to replay the first (as for the API).
    return None


def _read_batch(form: Any, program: ProgramContext) -> GiftCardBatchCreate:
    reader = FieldReader(form)
    currency = program.settings.money_currency
    values: dict[str, Any] = {
        "count": reader.integer("count", required=True),
        "amount": reader.money("amount", currency),
        "pattern": text(form, "pattern", limit=200),
        **_expiry(reader, form, program.settings.timezone),
    }
    reader.done()
    return checked(GiftCardBatchCreate, {k: v for k, v in values.items() if v is not None})


@router.post("/gift-cards/batch")
async def issue_batch(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
) -> Response:
    """Issue ``count`` cards of one amount from a pattern, as ``POST /v1/gift-cards/batch``,
    and list their codes (sending the same form again lists the same cards)."""
    form = await form_of(request)
    token = text(form, "token", limit=100) or new_token()

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        body = _read_batch(form, program)

        async def operation() -> dict[str, Any]:
            cards = await gift_card_service.issue_many(
                conn,
                program,
                count=body.count,
                amount=body.amount,
                now=clock.now(),
                pattern=body.pattern,
                valid_days=body.valid_days,
                expires_at=body.expires_at,
                never_expires=body.never_expires,
            )
            return {"cards": [GiftCardOut.model_validate(c).model_dump(mode="json") for c in cards]}

        key = f"gift-card:batch:key:console-{token}"
        _, made, replayed = await idempotency_store.run_once(
            conn, program.id, key, body, operation, _no_lock
        )
        if replayed:
            audit_service.nothing_changed()  # the first sending has its entry
        return {"program": program, "cards": made["cards"]}

    try:
        found = await in_transaction(engine, principal, work)
    except KopilkaError as exc:
        errors = {"batch": form_errors(exc, BATCH_FIELDS)}
        batch = raw_values(form, BATCH_FIELDS)
        return await _front_page(request, engine, principal, batch=batch, errors=errors, status=422)
    return render(
        request,
        "console/giftcards/batch.html",
        {**found, "cards": [GiftCardOut.model_validate(c) for c in found["cards"]]},
        status=201,
        zone=found["program"].settings.timezone,
    )


# --- one card --------------------------------------------------------------------------------


async def _card_page(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    code: str,
    cursor: str | None = None,
    *,
    top_up: dict[str, str] | None = None,
    errors: dict[str, dict[str, str]] | None = None,
    status: int = 200,
) -> Response:
    before = pagination.decode_number_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        card = await gift_card_service.get(conn, program, code, clock.now())
        journal = await gift_card_service.transactions(
            conn, program, code, limit=JOURNAL_PAGE, before_seq=before
        )
        return {"program": program, "card": GiftCardOut.model_validate(card), "journal": journal}

    found = await read_only(engine, principal, work)
    journal = found["journal"]
    next_url = None
    if len(journal) == JOURNAL_PAGE:
        last = pagination.encode_cursor(journal[-1]["seq"])
        next_url = f"{_card_url(found['card'].code)}?cursor={last}"
    context = {
        **found,
        "qr": qr_data_url(found["card"].code),
        "next_url": next_url,
        "top_up": top_up or {"token": new_token()},
        "errors": errors or {},
    }
    return render(
        request,
        "console/giftcards/show.html",
        context,
        status=status,
        zone=found["program"].settings.timezone,
    )


@router.get("/gift-cards/{code}")
async def card_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.MEMBERS_READ)],
    code: str,
    cursor: str | None = None,
) -> Response:
    """A card: balance, what a payment can take now, status, expiry, its QR code and its
    journal (newest first); the forms that top it up, disable or enable it and change its
    expiry, each to the roles allowed to."""
    return await _card_page(request, engine, principal, normalise_code(code), cursor)


@router.post("/gift-cards/{code}/top-up")
async def top_up_card(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PAYMENTS_TAKE)],
    code: str,
) -> Response:
    """Add money to an active card, as ``POST /v1/gift-cards/{code}/top-ups`` (the form's
    token is the movement's ``external_id``)."""
    form = await form_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        currency = program.settings.money_currency
        reader = FieldReader(form)
        amount = reader.money("amount", currency)
        reference = reader.text("reference", limit=200)
        reader.done()
        if amount is None:
            raise FormInvalid({"amount": "required"})
        token = text(form, "token", required=True, limit=100)
        return await gift_card_service.top_up(
            conn,
            program,
            code,
            amount=amount,
            now=clock.now(),
            external_id=f"console-{token}",
            reference=reference,
        )

    try:
        await in_transaction(engine, principal, work)
    except NotFound:
        raise
    except KopilkaError as exc:
        errors = {"top_up": form_errors(exc, TOP_UP_FIELDS)}
        typed = raw_values(form, TOP_UP_FIELDS)
        return await _card_page(
            request, engine, principal, code, top_up=typed, errors=errors, status=exc.status
        )
    notice = gettext(language_of(request), "Topped up.")
    return redirect(request, _card_url(normalise_code(code)), notice)


@router.post("/gift-cards/{code}/status")
async def set_card_status(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
    code: str,
) -> Response:
    """Disable a card (lost, stolen, disputed) or enable it again, as ``PATCH
    /v1/gift-cards/{code}``; a disabled card keeps its balance."""
    form = await form_of(request)
    wanted = text(form, "status", limit=20)

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        return await gift_card_service.update(conn, program, code, now=clock.now(), status=wanted)

    return await _change(request, engine, principal, code, work)


@router.post("/gift-cards/{code}/expiry")
async def set_card_expiry(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
    code: str,
) -> Response:
    """Give a card another expiry, or none, as ``PATCH /v1/gift-cards/{code}``."""
    form = await form_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        zone = program.settings.timezone
        reader = FieldReader(form)
        expires_at = reader.instant("expires_at", zone)
        reader.done()
        never = flag(form, "never_expires")
        if expires_at is None and not never:
            raise FormInvalid({"expires_at": "give a date, or tick never expires"})
        return await gift_card_service.update(
            conn, program, code, now=clock.now(), expires_at=expires_at, never_expires=never
        )

    return await _change(request, engine, principal, code, work)


async def _change(
    request: Request, engine: EngineDep, principal: Principal, code: str, work: Any
) -> Response:
    """A change of a card's status or expiry; a refusal shows the card's page again with
    the reason."""
    try:
        await in_transaction(engine, principal, work)
    except NotFound:
        raise
    except KopilkaError as exc:
        errors = {"change": form_errors(exc, ("expires_at", "never_expires"))}
        return await _card_page(request, engine, principal, code, errors=errors, status=exc.status)
    return redirect(
        request, _card_url(normalise_code(code)), gettext(language_of(request), "Saved.")
    )
