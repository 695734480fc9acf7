"""Console pages of the program document: the version in force in plain words, the draft
editor (errors shown at their line), and the simulation of the draft on past purchases.
Publishing, the versions and rollback are ``program_versions`` (included here).

Every page does what the matching ``/v1/program`` route does, through the same service
calls and with the same permission: ``program.read`` to read, ``program.edit`` to save the
draft and simulate it.
"""

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import InvalidInput
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext, program_service
from kopilka.programs.version_schemas import Draft, ProgramInForce, SimulationReport, Version
from kopilka.purchases.simulation import simulate_draft
from kopilka.web.console import program_versions
from kopilka.web.console.access import console_page
from kopilka.web.console.draft_text import (
    DraftSyntaxError,
    LocatedError,
    located_errors,
    parse_draft,
    pretty,
)
from kopilka.web.console.program_versions import changes_between, page_words
from kopilka.web.console.simulation_view import simulation_view
from kopilka.web.forms import field_errors, form_of, integer, text
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import gettext, redirect, render
from kopilka.web.words.program_words import describe_program

router = APIRouter(prefix="/console", include_in_schema=False)
router.include_router(program_versions.router)

DRAFT = "/console/program/draft"
SIMULATION_DAYS = 90


@dataclass(frozen=True)
class Overview:
    program: ProgramContext
    live: ProgramInForce
    version: Version
    draft: Draft


@router.get("/program")
async def overview(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
) -> Response:
    """The version in force: its number, when it was published, and every rule and term of
    its document in plain words."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Overview:
        live = await program_service.in_force(conn, program.id)
        version = await program_service.version(conn, program.id, live.version)
        return Overview(program, live, version, await program_service.draft(conn, program.id))

    seen = await read_only(engine, principal, work)
    view = describe_program(
        page_words(request, seen.program, seen.live.document), seen.live.document
    )
    return render(
        request,
        "console/program/overview.html",
        {"live": seen.live, "version": seen.version, "draft": seen.draft, "view": view},
        zone=seen.program.settings.timezone,
    )


# --- the draft ------------------------------------------------------------------------------


@router.get("/program/draft")
async def draft_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_READ)],
) -> Response:
    """The draft as JSON in an editor (read-only without ``program.edit``) and what it
    changes from the version in force, rule by rule."""
    return await _draft_page(request, engine, principal)


@router.post("/program/draft")
async def save_draft(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_EDIT)],
) -> Response:
    """Save the draft (``PUT /v1/program/draft``). Text that is not JSON, or a document
    that does not validate, is shown again with each error at its line; nothing is saved."""
    form = await form_of(request)
    raw = form.get("document")
    submitted = raw if isinstance(raw, str) else ""
    try:
        document = parse_draft(submitted)
    except DraftSyntaxError as syntax:
        return await _draft_page(request, engine, principal, submitted, syntax=syntax)
    try:
        await in_transaction(
            engine,
            principal,
            lambda conn, program: program_service.put_draft(
                conn, program.id, document, clock.now()
            ),
        )
    except InvalidInput as invalid:
        errors = invalid.extra.get("errors") or [
            {"field": invalid.field or "document", "message": invalid.detail}
        ]
        located = located_errors(submitted, errors)
        return await _draft_page(request, engine, principal, submitted, errors=located)
    return redirect(request, DRAFT, gettext(language_of(request), "The draft is saved."))


@dataclass(frozen=True)
class DraftSeen:
    program: ProgramContext
    live: ProgramInForce
    draft: Draft


async def _draft_page(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    submitted: str | None = None,
    *,
    syntax: DraftSyntaxError | None = None,
    errors: list[LocatedError] | None = None,
) -> Response:
    async def work(conn: AsyncConnection, program: ProgramContext) -> DraftSeen:
        live = await program_service.in_force(conn, program.id)
        return DraftSeen(program, live, await program_service.draft(conn, program.id))

    seen = await read_only(engine, principal, work)
    refused = syntax is not None or bool(errors)
    return render(
        request,
        "console/program/draft.html",
        {
            "draft": seen.draft,
            "live": seen.live,
            "text": submitted if submitted is not None else pretty(seen.draft.document),
            "syntax": syntax,
            "errors": errors or [],
            "diff": changes_between(request, seen.program, seen.live.document, seen.draft.document),
        },
        status=422 if refused else 200,
        zone=seen.program.settings.timezone,
    )


# --- simulation -----------------------------------------------------------------------------


@router.get("/program/simulate")
async def simulation_form(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_EDIT)],
) -> Response:
    """The form of a simulation: which past purchases to replay."""
    program = await read_only(engine, principal, _program)
    return _simulation_page(request, program, {"days": SIMULATION_DAYS, "since": ""})


@router.post("/program/simulate")
async def simulate(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.PROGRAM_EDIT)],
) -> Response:
    """Replay past purchases under the draft next to the version in force
    (``POST /v1/program/simulate``, writes nothing): per rule, what each would have issued,
    how often it fired and for how many members; per currency, the totals."""
    form = await form_of(request)
    values = {"days": text(form, "days", limit=40) or "", "since": text(form, "since") or ""}

    async def work(
        conn: AsyncConnection, program: ProgramContext
    ) -> tuple[ProgramContext, dict[str, Any]]:
        days = integer(form, "days", minimum=1, maximum=3660) or SIMULATION_DAYS
        since = _local_midnight(text(form, "since", limit=20), program.settings.timezone)
        return program, await simulate_draft(conn, program, None, since, days, clock.now())

    try:
        # One snapshot for the whole replay, as the API's: nothing is half-counted.
        program, report = await read_only(engine, principal, work, snapshot=True)
    except InvalidInput as refused:
        program = await read_only(engine, principal, _program)
        return _simulation_page(request, program, values, errors=field_errors(refused))
    result = SimulationReport.model_validate(report)
    return _simulation_page(request, program, values, result)


async def _program(conn: AsyncConnection, program: ProgramContext) -> ProgramContext:
    return program


def _local_midnight(value: str | None, zone: str) -> datetime | None:
    """The start of a day typed as YYYY-MM-DD, in the program's time zone."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"since: a date (YYYY-MM-DD), not {value!r}", field="since") from None
    if not 1970 <= day.year <= 2999:
        raise InvalidInput("since: a date between 1970 and 2999", field="since")
    return datetime.combine(day, time(), ZoneInfo(zone))


def _simulation_page(
    request: Request,
    program: ProgramContext,
    values: dict[str, Any],
    report: SimulationReport | None = None,
    *,
    errors: dict[str, str] | None = None,
) -> Response:
    language = language_of(request)
    fmt = Formats(language, program.settings.timezone)
    context: dict[str, Any] = {"values": values, "errors": errors or {}, "report": None}
    if report is not None:
        context["report"] = simulation_view(report, program.settings, fmt, language)
    return render(
        request,
        "console/program/simulate.html",
        context,
        status=422 if errors else 200,
        zone=program.settings.timezone,
    )
