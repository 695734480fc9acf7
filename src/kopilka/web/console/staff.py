"""Console pages: the team — staff accounts with their role, stores, status and last
sign-in; adding someone, changing their role or stores, disabling and enabling an
account, and ending a person's sessions (a lost laptop), as ``/v1/staff`` does. The
service refuses to demote or disable the program's last owner, and anyone's disabling of
their own account; the page shows why."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.datastructures import FormData

from kopilka.access.domain import ROLE_PERMISSIONS, Principal, Role
from kopilka.access.domain import Permission as P
from kopilka.errors import KopilkaError
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, next_cursor
from kopilka.programs.service import ProgramContext
from kopilka.staff.domain import MIN_PASSWORD
from kopilka.staff.schemas import StaffCreate, StaffOut, StaffUpdate
from kopilka.staff.service import staff_service
from kopilka.web.console.access import console_page
from kopilka.web.forms import field_errors, form_of, text, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
Manager = Annotated[Principal, console_page(P.STAFF_MANAGE)]
PAGE_SIZE = 100


def next_url(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    url = request.url.include_query_params(cursor=cursor)
    return f"{url.path}?{url.query}"


def _stores(form: FormData) -> list[str] | None:
    """Store codes separated by commas or lines; none typed: every store."""
    raw = text(form, "stores", limit=20000) or ""
    codes = [code.strip() for code in raw.replace(",", "\n").splitlines() if code.strip()]
    return codes or None


def _roles() -> list[tuple[str, int]]:
    """Each role with how many permissions it holds (the form explains them)."""
    return [(str(role), len(ROLE_PERMISSIONS[role])) for role in Role]


@router.get("/staff")
async def staff_list(
    request: Request,
    engine: EngineDep,
    principal: Manager,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The team: each account's role, stores, status, authenticator and last sign-in."""
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[list[StaffOut], str]:
        items = await staff_service.page(conn, program.id, limit=PAGE_SIZE, after=after)
        return items, program.settings.timezone

    items, zone = await read_only(engine, principal, work)
    return render(
        request,
        "console/staff/index.html",
        {"people": items, "next_url": next_url(request, next_cursor(items, PAGE_SIZE))},
        zone=zone,
    )


# --- adding someone -------------------------------------------------------------------------


def _new_form(
    request: Request,
    person: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "console/staff/new.html",
        {
            "person": person,
            "roles": _roles(),
            "min_password": MIN_PASSWORD,
            "errors": errors or {},
        },
        status=status,
    )


@router.get("/staff/new")
async def new_staff(request: Request, principal: Manager) -> Response:
    """The form of a new account."""
    return _new_form(request, {"name": "", "email": "", "role": "support", "stores": ""})


@router.post("/staff/new")
async def create_staff(request: Request, engine: EngineDep, principal: Manager) -> Response:
    """Add someone with a role (and maybe some stores only) and a first password; a
    refusal (a short password, an e-mail taken) shows the form again with its message."""
    form = await form_of(request)
    password = form.get("password")
    sent = {
        "name": text(form, "name", limit=200) or "",
        "email": text(form, "email", limit=320) or "",
        "role": text(form, "role", limit=40) or "",
        "stores": _stores(form),
    }
    try:
        body = validated(
            StaffCreate, {**sent, "password": password if isinstance(password, str) else ""}
        )
        created = await in_transaction(
            engine,
            principal,
            lambda conn, program: staff_service.create(conn, program.id, body, clock.now()),
        )
    except KopilkaError as exc:
        if exc.status in (401, 403):
            raise
        shown = {**sent, "stores": ", ".join(sent["stores"] or [])}
        return _new_form(request, shown, errors=field_errors(exc), status=exc.status)
    notice = gettext(language_of(request), "%(name)s can sign in now.", name=created.name)
    return redirect(request, f"/console/staff/{created.id}", notice)


# --- someone's account ----------------------------------------------------------------------


async def _person_page(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    staff_id: UUID,
    *,
    errors: dict[str, str] | None = None,
    sent: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[StaffOut, str]:
        person = await staff_service.get(conn, program.id, staff_id)
        return person, program.settings.timezone

    person, zone = await read_only(engine, principal, work)
    shown = sent or {
        "name": person.name,
        "role": str(person.role),
        "stores": ", ".join(person.stores or []),
    }
    return render(
        request,
        "console/staff/person.html",
        {
            "person": person,
            "form": shown,
            "roles": _roles(),
            "errors": errors or {},
            "myself": person.id == principal.staff_id,
        },
        status=status,
        zone=zone,
    )


@router.get("/staff/{staff_id}")
async def person_page(
    request: Request, staff_id: UUID, engine: EngineDep, principal: Manager
) -> Response:
    """A staff member's account: who they are, their role and stores (a form), and the
    buttons to disable or enable the account and to end their sessions."""
    return await _person_page(request, engine, principal, staff_id)


async def _update(
    request: Request,
    engine: AsyncEngine,
    principal: Principal,
    staff_id: UUID,
    data: dict[str, Any],
    shown: dict[str, Any] | None,
) -> Response | StaffOut:
    """Apply a change of the account (``data``, as ``PATCH /v1/staff/{id}`` takes it); a
    refusal is the page again with the service's message (``shown``: the form sent, or
    None for a button)."""
    try:
        body = validated(StaffUpdate, data)
        return await in_transaction(
            engine,
            principal,
            lambda conn, program: staff_service.update(
                conn, program.id, staff_id, body, clock.now(), by=principal.staff_id
            ),
        )
    except KopilkaError as exc:
        if exc.status in (401, 403, 404):
            raise
        # A form's refusal is shown beside its field; the buttons' above the page.
        errors = field_errors(exc) if shown is not None else {"status": exc.detail}
        return await _person_page(
            request, engine, principal, staff_id, errors=errors, sent=shown, status=exc.status
        )


@router.post("/staff/{staff_id}/edit")
async def update_staff(
    request: Request, staff_id: UUID, engine: EngineDep, principal: Manager
) -> Response:
    """Change the name, role or stores (a changed role applies from the next request)."""
    form = await form_of(request)
    stores = _stores(form)
    data = {
        "name": text(form, "name", limit=200) or "",
        "role": text(form, "role", limit=40) or "",
        "stores": stores,
    }
    shown = {**data, "stores": ", ".join(stores or [])}
    done = await _update(request, engine, principal, staff_id, data, shown)
    if isinstance(done, Response):
        return done
    notice = gettext(language_of(request), "The account of %(name)s is saved.", name=done.name)
    return redirect(request, f"/console/staff/{staff_id}", notice)


@router.post("/staff/{staff_id}/status")
async def set_status(
    request: Request,
    staff_id: UUID,
    engine: EngineDep,
    principal: Manager,
) -> Response:
    """Disable the account (it signs in no more, its sessions end at once) or enable it.
    The status sent is checked as the API checks it: another word than ``active`` or
    ``disabled`` is a 422, not an enabling."""
    form = await form_of(request)
    status = text(form, "status", limit=20) or ""
    done = await _update(request, engine, principal, staff_id, {"status": status}, None)
    if isinstance(done, Response):
        return done
    language = language_of(request)
    notice = (
        gettext(language, "The account of %(name)s is disabled.", name=done.name)
        if done.status == "disabled"
        else gettext(language, "The account of %(name)s is enabled.", name=done.name)
    )
    return redirect(request, f"/console/staff/{staff_id}", notice)


@router.post("/staff/{staff_id}/end-sessions")
async def end_sessions(
    request: Request, staff_id: UUID, engine: EngineDep, principal: Manager
) -> Response:
    """Sign the person out everywhere (a lost phone or laptop)."""
    ended = await in_transaction(
        engine,
        principal,
        lambda conn, program: staff_service.end_sessions(conn, program.id, staff_id, clock.now()),
    )
    notice = gettext(language_of(request), "Sessions ended: %(count)s.", count=ended)
    target = "/console/sign-in" if staff_id == principal.staff_id else f"/console/staff/{staff_id}"
    return redirect(request, target, notice)
