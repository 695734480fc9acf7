"""Console pages: coupon campaigns — the list, a campaign's form, its codes page by page,
generating and importing codes, the codes as a CSV file, and one code looked up with its
QR code (disable or enable it).

Every page calls the services the API's routes call (``/v1/coupon-campaigns``,
``/v1/coupons``), with the permission each of those routes requires.
"""

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.audit.service import audit_service
from kopilka.coupons.schemas import CodesCreate, CodeUpdate
from kopilka.coupons.service import coupon_service
from kopilka.errors import IdempotencyConflict, KopilkaError, NotFound
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.idempotency.service import idempotency_store
from kopilka.kit.clock import clock
from kopilka.kit.csvcells import safe_cell
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.web.console.access import console_page, form_page
from kopilka.web.console.catalog_fields import (
    checked,
    form_errors,
    lines,
    qr_data_url,
    raw,
)
from kopilka.web.console.coupon_form import (
    EDITABLE,
    NEW_FIELDS,
    campaign_values,
    discount_field,
    new_campaign_values,
    read_campaign_changes,
    read_new_campaign,
    submitted,
)
from kopilka.web.console.members import form_key, form_key_again, new_form_key, sent_before
from kopilka.web.forms import form_of, integer, text
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50
EXPORT_CHUNK = 1000
EXPORT_COLUMNS = (
    "code",
    "campaign",
    "member_id",
    "uses",
    "max_uses",
    "status",
    "valid_until",
    "issued_at",
)


# --- campaigns -------------------------------------------------------------------------------


@router.get("/coupons")
async def campaigns_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
) -> Response:
    """Every coupon campaign: what it takes off, when, its limits, how many codes it has
    and how many uses were redeemed; and a form to look a code up."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        return {"program": program, "campaigns": await coupon_service.campaigns(conn, program)}

    found = await read_only(engine, principal, work)
    return render(
        request,
        "console/coupons/index.html",
        {**found, "lookup": "", "lookup_error": None},
        zone=found["program"].settings.timezone,
    )


async def _new_form(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return await form_page(
        request, engine, principal, "console/coupons/new.html", values, errors, status
    )


@router.get("/coupons/new")
async def new_campaign_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
) -> Response:
    """The form of a new coupon campaign."""
    return await _new_form(request, engine, principal, new_campaign_values(), {})


@router.post("/coupons/new")
async def create_campaign(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
) -> Response:
    """Create a campaign, as ``POST /v1/coupon-campaigns``; a refusal shows the form again
    with each message beside its field, nothing created."""
    form = await form_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        body = read_new_campaign(form, program)
        return await coupon_service.create_campaign(conn, program, body, clock.now())

    try:
        campaign = await in_transaction(engine, principal, work)
    except KopilkaError as exc:
        rename = discount_field(text(form, "discount_kind", limit=50))
        errors = form_errors(exc, NEW_FIELDS, rename)
        values = submitted(form, NEW_FIELDS)
        return await _new_form(request, engine, principal, values, errors, status=422)
    notice = gettext(language_of(request), "Campaign %(key)s created.", key=campaign["key"])
    return redirect(request, f"/console/coupons/{campaign['key']}", notice)


async def _campaign_page(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    key: str,
    cursor: str | None = None,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    keys: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        campaign = await coupon_service.campaign(conn, program, key)
        codes = await coupon_service.codes_page(
            conn, program, campaign_key=key, limit=PAGE_SIZE, after=after
        )
        return {"program": program, "campaign": campaign, "codes": codes}

    found = await read_only(engine, principal, work)
    codes = found["codes"]
    next_url = None
    if len(codes) == PAGE_SIZE:
        last = encode_cursor(codes[-1]["issued_at"], codes[-1]["id"])
        next_url = f"/console/coupons/{quote(key)}?cursor={last}"
    context = {
        **found,
        "values": values or campaign_values(found["campaign"], found["program"]),
        "errors": errors or {},
        "typed": typed or {},
        # The one-time keys of the forms that add codes (``add_codes``).
        "keys": {"generate": new_form_key(), "import": new_form_key(), **(keys or {})},
        "next_url": next_url,
    }
    return render(
        request,
        "console/coupons/show.html",
        context,
        status=status,
        zone=found["program"].settings.timezone,
    )


@router.get("/coupons/{key}")
async def campaign_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
    key: str,
    cursor: str | None = None,
) -> Response:
    """A campaign: its terms, its codes page by page (each linked to its QR code), the CSV
    file of all of them; with ``catalog.manage`` its form and the forms that generate or
    import codes."""
    return await _campaign_page(request, engine, principal, key, cursor)


@router.post("/coupons/{key}")
async def update_campaign(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
    key: str,
) -> Response:
    """Change a campaign, as ``PATCH /v1/coupon-campaigns/{key}`` with the fields that
    differ (the discount is fixed once created)."""
    form = await form_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> None:
        current = await coupon_service.campaign(conn, program, key)
        changes = read_campaign_changes(form, program, current)
        if changes.model_fields_set:
            await coupon_service.update_campaign(conn, program, key, changes, clock.now())

    try:
        await in_transaction(engine, principal, work)
    except NotFound:
        raise
    except KopilkaError as exc:
        errors = form_errors(exc, EDITABLE)
        values = submitted(form, EDITABLE)
        return await _campaign_page(
            request, engine, principal, key, values=values, errors=errors, status=422
        )
    return redirect(
        request, f"/console/coupons/{quote(key)}", gettext(language_of(request), "Saved.")
    )


@router.post("/coupons/{key}/codes")
async def add_codes(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
    key: str,
) -> Response:
    """Generate ``count`` codes (from the campaign's pattern or another), or import codes
    typed one per line, as ``POST /v1/coupon-campaigns/{key}/codes``: all or nothing.

    Each form carries a one-time key (as the API's ``Idempotency-Key``): sent twice (a
    double click, a reload), it adds its codes once and the second sending answers as the
    first."""
    form = await form_of(request)
    generating = "count" in form
    which = "generate" if generating else "import"

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        if generating:
            count = integer(form, "count", required=True)
            body: dict[str, Any] = {"count": count}
            if pattern := text(form, "pattern", limit=200):
                body["pattern"] = pattern
        else:
            body = {"codes": lines(raw(form, "codes")) or None}
        wanted = checked(CodesCreate, body)
        once = form_key(form, "idempotency_key")

        async def operation() -> dict[str, Any]:
            return await coupon_service.add_codes(
                conn, program, key, wanted, clock.now(), answer_limit=0
            )

        _, made, replayed = await idempotency_store.run_once(
            conn, program.id, f"coupon-codes:{key}:{once}", wanted, operation, _no_lock
        )
        if replayed:
            audit_service.nothing_changed()  # the first sending has its entry
        return made

    try:
        made = await in_transaction(engine, principal, work)
    except NotFound:
        raise
    except KopilkaError as exc:
        fields = ("count", "pattern") if generating else ("codes",)
        sent = raw(form, "idempotency_key")
        if isinstance(exc, IdempotencyConflict):
            # Sent before with other values, and done then: the form gets a new key.
            errors = {_codes_field("form", generating): sent_before(language_of(request))}
            sent = ""
        else:
            errors = form_errors(exc, fields, lambda name: _codes_field(name, generating))
        typed = {name: raw(form, name) for name in ("count", "pattern", "codes")}
        return await _campaign_page(
            request,
            engine,
            principal,
            key,
            errors=errors,
            typed=typed,
            keys={which: form_key_again(sent or None)},
            status=422,
        )
    notice = gettext(language_of(request), "Codes created: %(count)s.", count=made["created"])
    return redirect(request, f"/console/coupons/{quote(key)}", notice)


async def _no_lock() -> None:
    # The same form twice at once: the second's stored answer collides with the first's,
    # and its transaction runs again to replay the first (as the gift cards' forms do).
    return None


def _codes_field(name: str, generating: bool) -> str:
    """Where a refusal of codes is shown: the pattern's field, else the count's (or the
    imported codes')."""
    if not generating:
        return "codes"
    return "pattern" if name in ("pattern", "charset") else "count"


# --- the codes as a file ---------------------------------------------------------------------


def _csv_line(cells: Sequence[Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([safe_cell(_cell(c)) for c in cells])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@router.get("/coupons/{key}/codes.csv")
async def export_codes(
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
    key: str,
) -> Response:
    """Every code of the campaign as a CSV file (a header, then one line per code, oldest
    first), read page by page through the service that lists them. A cell a spreadsheet
    would run as a formula is written as text."""

    async def head(conn: AsyncConnection, program: ProgramContext) -> None:
        await coupon_service.campaign(conn, program, key)  # a 404 before the file starts

    await read_only(engine, principal, head)

    async def chunk(after: tuple[datetime, UUID] | None) -> list[dict[str, Any]]:
        async def work(conn: AsyncConnection, program: ProgramContext) -> list[dict[str, Any]]:
            return await coupon_service.codes_page(
                conn, program, campaign_key=key, limit=EXPORT_CHUNK, after=after
            )

        return await read_only(engine, principal, work)

    async def lines_of_file() -> AsyncIterator[str]:
        yield _csv_line(EXPORT_COLUMNS)
        after: tuple[datetime, UUID] | None = None
        while True:
            codes = await chunk(after)
            yield "".join(_csv_line([code[c] for c in EXPORT_COLUMNS]) for code in codes)
            if len(codes) < EXPORT_CHUNK:
                return
            after = (codes[-1]["issued_at"], codes[-1]["id"])

    filename = f"coupons-{key}.csv"
    return StreamingResponse(
        lines_of_file(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- one code --------------------------------------------------------------------------------


@router.get("/coupon-codes")
async def look_up_code(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
    code: str = "",
) -> Response:
    """Find a code as a till would (case and blanks aside): its page, or the campaigns'
    page saying there is no such code."""
    typed = code.strip()

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        found = None
        if typed:
            try:
                found = await coupon_service.code_out(conn, program, typed)
            except NotFound:
                found = None
        campaigns = [] if found else await coupon_service.campaigns(conn, program)
        return {"program": program, "found": found, "campaigns": campaigns}

    result = await read_only(engine, principal, work)
    if result["found"] is not None:
        return redirect(request, f"/console/coupon-codes/{quote(result['found']['code'])}")
    language = language_of(request)
    message = gettext(language, "No such code.") if typed else gettext(language, "Type a code.")
    return render(
        request,
        "console/coupons/index.html",
        {
            "program": result["program"],
            "campaigns": result["campaigns"],
            "lookup": typed,
            "lookup_error": message,
        },
        status=404 if typed else 422,
        zone=result["program"].settings.timezone,
    )


@router.get("/coupon-codes/{code}")
async def code_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
    code: str,
) -> Response:
    """One code: its campaign, member, uses of its maximum, status, expiry and QR code
    (the SVG ``/v1/coupons/{code}/qr.svg`` serves); with ``catalog.manage`` the button that
    disables or enables it."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        return {"program": program, "code": await coupon_service.code_out(conn, program, code)}

    found = await read_only(engine, principal, work)
    return render(
        request,
        "console/coupons/code.html",
        {**found, "qr": qr_data_url(found["code"]["code"])},
        zone=found["program"].settings.timezone,
    )


@router.post("/coupon-codes/{code}/status")
async def set_code_status(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.CATALOG_MANAGE)],
    code: str,
) -> Response:
    """Disable a code (lost, leaked) or enable it again, as ``PATCH /v1/coupons/{code}``."""
    form = await form_of(request)
    body = checked(CodeUpdate, {"status": text(form, "status", limit=20)})

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        return await coupon_service.set_code_status(conn, program, code, body.status, clock.now())

    changed = await in_transaction(engine, principal, work)
    language = language_of(request)
    notice = (
        gettext(language, "The code is disabled.")
        if changed["status"] == "disabled"
        else gettext(language, "The code is enabled.")
    )
    return redirect(request, f"/console/coupon-codes/{quote(changed['code'])}", notice)
