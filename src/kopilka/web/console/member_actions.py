"""Console pages: what staff do to a member from the 360° page, each admitted by the same
permission as its API route and done through the same services — adjust points
(``POST /v1/adjustments``, idempotent by a key the form carries), set or end a manual tier,
block and unblock, merge a duplicate profile into the member, download the member's data,
erase the member's personal data.

A refused action changes nothing and shows the 360° page (or its confirmation page) again
with the reason beside the field, status 422.
"""

from collections.abc import Awaitable, Callable, Collection
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.datastructures import FormData

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.customers.merges import MergeResult, merge_service
from kopilka.errors import IdempotencyConflict, InvalidInput, KopilkaError
from kopilka.http import EngineDep, FastJSONResponse, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.ledger.adjustments import adjust_once
from kopilka.ledger.schemas import AdjustmentCreate
from kopilka.members.schemas import Member, MemberRef, MemberStatusChange
from kopilka.members.service import member_service
from kopilka.privacy.erasure import erasure_service
from kopilka.privacy.export import export_service
from kopilka.privacy.schemas import ErasureRequest
from kopilka.programs.service import ProgramContext
from kopilka.tiers.schemas import ManualTierCreate
from kopilka.tiers.service import tier_service
from kopilka.web.console.access import console_page
from kopilka.web.console.members import form_key, member_page, sent_before
from kopilka.web.forms import field_errors, form_of, integer, text, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
Adjuster = Annotated[Principal, console_page(P.POINTS_ADJUST)]
TierSetter = Annotated[Principal, console_page(P.TIERS_MANUAL)]
Blocker = Annotated[Principal, console_page(P.MEMBERS_BLOCK)]
Merger = Annotated[Principal, console_page(P.MEMBERS_MERGE)]
Exporter = Annotated[Principal, console_page(P.MEMBERS_EXPORT)]
Eraser = Annotated[Principal, console_page(P.MEMBERS_ERASE)]

# Each form's inputs carry its name as a prefix, so that one page holds them all with
# unique ids, and a refusal is shown beside the right form's field.
ADJUST_FIELDS = ("adjust_amount", "adjust_currency", "adjust_reason")
TIER_FIELDS = ("tier_tier", "tier_reason", "tier_until")
STATUS_FIELDS = ("status_reason",)
MERGE_FIELDS = ("merged", "merge_reason")
ERASE_FIELDS = ("erase_card", "erase_reason")


def form_errors(form_name: str, exc: KopilkaError, fields: Collection[str]) -> dict[str, str]:
    """The refusal's messages by the form's inputs (``amount`` → ``adjust_amount``);
    one that names no input of the form goes to the form as a whole (``adjust_form``)."""
    errors: dict[str, str] = {}
    for field, message in field_errors(exc).items():
        name = field if field in fields else f"{form_name}_{field}"
        errors.setdefault(name if name in fields else f"{form_name}_form", message)
    return errors


def sent_values(form: FormData, fields: Collection[str]) -> dict[str, str]:
    """What was typed into the form, to show it again after a refusal."""
    return {name: value for name in fields if isinstance(value := form.get(name), str)}


def member_url(member_id: UUID) -> str:
    return f"/console/members/{member_id}"


async def _act_on_member(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    member_id: UUID,
    *,
    form_name: str,
    fields: Collection[str],
    work: Callable[[FormData, AsyncConnection, ProgramContext], Awaitable[object]],
    done: str,
) -> Response:
    """Run one action of the 360° page in a transaction: back to the page with ``done``
    as the notice, or the page again with the refusal beside the form (nothing changed)."""
    form = await form_of(request)
    try:
        await in_transaction(engine, principal, lambda conn, program: work(form, conn, program))
    except KopilkaError as exc:
        # A member of another program is not found by the page either: a 404 then. A key
        # used already (with other values) is not offered again: the form gets a new one.
        errors = form_errors(form_name, exc, fields)
        kept = [*fields, "idempotency_key"]
        if isinstance(exc, IdempotencyConflict):
            errors = {f"{form_name}_form": sent_before(language_of(request))}
            kept = [*fields]
        return await member_page(
            request,
            engine,
            principal,
            member_id,
            errors=errors,
            sent=sent_values(form, kept),
            status=422,
        )
    return redirect(request, member_url(member_id), gettext(language_of(request), done))


# --- points ---------------------------------------------------------------------------------


@router.post("/members/{member_id}/adjust")
async def adjust_points(
    request: Request, member_id: UUID, engine: EngineDep, principal: Adjuster
) -> Response:
    """Credit (positive) or debit (negative) the member's points with a reason, as
    ``POST /v1/adjustments``; the form's idempotency key makes a second submission of the
    same form replay the first instead of crediting twice."""

    async def work(form: FormData, conn: AsyncConnection, program: ProgramContext) -> object:
        body = validated(
            AdjustmentCreate,
            {
                "member": MemberRef(id=member_id),
                "currency": text(form, "adjust_currency", limit=32)
                or program.settings.points_currency(),
                "amount": integer(form, "adjust_amount", required=True),
                "reason": text(form, "adjust_reason", required=True, limit=500),
            },
        )
        # Required: without its key, the form sent twice would credit twice.
        return await adjust_once(conn, program, body, form_key(form, "idempotency_key"))

    return await _act_on_member(
        request,
        engine,
        principal,
        member_id,
        form_name="adjust",
        fields=ADJUST_FIELDS,
        work=work,
        done="Points adjusted.",
    )


# --- tiers ----------------------------------------------------------------------------------


def _until(form: FormData, zone: str) -> str | None:
    """The form's last day of a manual tier as the instant it ends: the midnight after it
    in the program's time zone."""
    raw = text(form, "tier_until", limit=10)
    if raw is None:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"tier_until: a date, not {raw!r}", field="tier_until") from None
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone))
    return end.astimezone(UTC).isoformat()


@router.post("/members/{member_id}/tier")
async def set_manual_tier(
    request: Request, member_id: UUID, engine: EngineDep, principal: TierSetter
) -> Response:
    """Give the member a tier by hand until a day (or open-ended), as
    ``POST /v1/members/{id}/tier/manual``."""

    async def work(form: FormData, conn: AsyncConnection, program: ProgramContext) -> object:
        body = validated(
            ManualTierCreate,
            {
                "tier": text(form, "tier_tier", required=True, limit=32),
                "reason": text(form, "tier_reason", required=True, limit=500),
                "until": _until(form, program.settings.timezone),
            },
        )
        return await tier_service.assign_manual(
            conn, program, member_id, body.tier, body.reason, body.until, clock.now()
        )

    return await _act_on_member(
        request,
        engine,
        principal,
        member_id,
        form_name="tier",
        fields=TIER_FIELDS,
        work=work,
        done="Manual tier set.",
    )


@router.post("/members/{member_id}/tier/clear")
async def end_manual_tier(
    request: Request, member_id: UUID, engine: EngineDep, principal: TierSetter
) -> Response:
    """End the member's manual tier now, as ``DELETE /v1/members/{id}/tier/manual``."""

    async def work(_form: FormData, conn: AsyncConnection, program: ProgramContext) -> object:
        return await tier_service.end_manual(conn, program, member_id, clock.now())

    return await _act_on_member(
        request,
        engine,
        principal,
        member_id,
        form_name="tier",
        fields=TIER_FIELDS,
        work=work,
        done="Manual tier ended.",
    )


# --- block and unblock ----------------------------------------------------------------------


async def _set_status(
    request: Request, member_id: UUID, engine: AsyncEngine, principal: Principal, status: str
) -> Response:
    async def work(form: FormData, conn: AsyncConnection, program: ProgramContext) -> object:
        body = validated(
            MemberStatusChange,
            {"reason": text(form, "status_reason", required=True, limit=500)},
        )
        return await member_service.set_status(
            conn, program, member_id, status, body.reason, clock.now()
        )

    return await _act_on_member(
        request,
        engine,
        principal,
        member_id,
        form_name="status",
        fields=STATUS_FIELDS,
        work=work,
        done="Member blocked." if status == "blocked" else "Member unblocked.",
    )


@router.post("/members/{member_id}/block")
async def block_member(
    request: Request, member_id: UUID, engine: EngineDep, principal: Blocker
) -> Response:
    """Block the member with a reason: they earn and spend nothing until unblocked."""
    return await _set_status(request, member_id, engine, principal, "blocked")


@router.post("/members/{member_id}/unblock")
async def unblock_member(
    request: Request, member_id: UUID, engine: EngineDep, principal: Blocker
) -> Response:
    """Unblock the member, with a reason."""
    return await _set_status(request, member_id, engine, principal, "active")


# --- merge ----------------------------------------------------------------------------------


async def _merge_page(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    member_id: UUID,
    merged: UUID | None,
    *,
    errors: dict[str, str] | None = None,
    sent: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The merge's confirmation: both profiles side by side (404 for a member not of the
    program; the other profile left out when it is not one of the program's)."""

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[Member, Member | None, str]:
        survivor = await member_service.get(conn, program, member_id)
        other = None
        if merged is not None and await member_service.statuses(conn, program, [merged]):
            other = await member_service.get(conn, program, merged)
        return survivor, other, program.settings.timezone

    survivor, other, zone = await read_only(engine, principal, work)
    return render(
        request,
        "console/members/merge.html",
        {
            "profile": survivor,
            "other": other,
            "merged": str(merged) if merged else (sent or {}).get("merged", ""),
            "errors": errors or {},
            "sent": sent or {},
        },
        status=status,
        zone=zone,
    )


@router.get("/members/{member_id}/merge")
async def merge_confirmation(
    request: Request,
    member_id: UUID,
    engine: EngineDep,
    principal: Merger,
    merged: Annotated[UUID, Query()],
) -> Response:
    """Confirm merging the profile ``merged`` into this member (what moves, what stays)."""
    return await _merge_page(request, engine, principal, member_id, merged)


@router.post("/members/{member_id}/merge")
async def merge_member(
    request: Request, member_id: UUID, engine: EngineDep, principal: Merger
) -> Response:
    """Merge the confirmed profile into this member, as ``POST /v1/members/{id}/merge``:
    its identifiers, points, purchases and the rest move here; the merged id points here."""
    form = await form_of(request)
    language = language_of(request)
    raw = text(form, "merged", limit=64)
    merged = _uuid_or_none(raw)

    async def work(conn: AsyncConnection, program: ProgramContext) -> MergeResult:
        if merged is None:
            raise InvalidInput(
                gettext(language, "Choose the profile to merge into this member."),
                field="merged",
            )
        reason = text(form, "merge_reason", required=True, limit=500) or ""
        return await merge_service.merge(conn, program, member_id, merged, reason, clock.now())

    try:
        result = await in_transaction(engine, principal, work)
    except KopilkaError as exc:
        return await _merge_page(
            request,
            engine,
            principal,
            member_id,
            merged,
            errors=form_errors("merge", exc, MERGE_FIELDS),
            sent=sent_values(form, MERGE_FIELDS),
            status=422,
        )
    done = (
        "These profiles were merged already."
        if result.already_merged
        else "The profile was merged into this member."
    )
    return redirect(request, member_url(member_id), gettext(language, done))


def _uuid_or_none(raw: str | None) -> UUID | None:
    try:
        return UUID(raw) if raw else None
    except ValueError:
        return None


# --- export and erasure ---------------------------------------------------------------------


@router.post("/members/{member_id}/export")
async def export_member(
    request: Request, member_id: UUID, engine: EngineDep, principal: Exporter
) -> Response:
    """Download everything held about the member: the same JSON document as
    ``GET /v1/members/{id}/export``, recorded in the audit log as it is. A form's POST
    (CSRF-checked), not a link: a link on another site cannot make a signed-in staff
    member's browser export someone, nor write the entry."""
    await form_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        return await export_service.export_recorded(conn, program, member_id, clock.now())

    document = await in_transaction(engine, principal, work)
    return FastJSONResponse(
        document,
        headers={
            "Content-Disposition": f'attachment; filename="member-{member_id}.json"',
            "Cache-Control": "no-store",
        },
    )


async def _erase_page(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    member_id: UUID,
    *,
    errors: dict[str, str] | None = None,
    sent: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[Member, str]:
        return await member_service.get(conn, program, member_id), program.settings.timezone

    profile, zone = await read_only(engine, principal, work)
    return render(
        request,
        "console/members/erase.html",
        {"profile": profile, "errors": errors or {}, "sent": sent or {}},
        status=status,
        zone=zone,
    )


@router.get("/members/{member_id}/erase")
async def erase_confirmation(
    request: Request, member_id: UUID, engine: EngineDep, principal: Eraser
) -> Response:
    """Confirm erasing the member's personal data: the staff member types the member's
    card number and the reason."""
    return await _erase_page(request, engine, principal, member_id)


def _cards(profile: Member) -> set[str]:
    return {i.value for i in profile.identifiers if i.kind == "card"}


@router.post("/members/{member_id}/erase")
async def erase_member(
    request: Request, member_id: UUID, engine: EngineDep, principal: Eraser
) -> Response:
    """Erase the member's personal data, as ``POST /v1/members/{id}/erase``, once the card
    number typed is the member's."""
    form = await form_of(request)
    language = language_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> object:
        # Compared as people type card numbers: spaces and dashes aside.
        typed = text(form, "erase_card", required=True, limit=40) or ""
        typed = typed.replace(" ", "").replace("-", "")
        body = validated(
            ErasureRequest, {"reason": text(form, "erase_reason", required=True, limit=500)}
        )
        profile = await member_service.get(conn, program, member_id)
        if typed not in _cards(profile):
            raise InvalidInput(
                gettext(language, "This is not the member's card number."), field="erase_card"
            )
        done = await erasure_service.erase(conn, program, member_id, body.reason, clock.now())
        return asdict(done)

    try:
        await in_transaction(engine, principal, work)
    except KopilkaError as exc:
        return await _erase_page(
            request,
            engine,
            principal,
            member_id,
            errors=form_errors("erase", exc, ERASE_FIELDS),
            sent=sent_values(form, ERASE_FIELDS),
            status=422,
        )
    return redirect(
        request,
        member_url(member_id),
        gettext(language, "The member's personal data was erased."),
    )
