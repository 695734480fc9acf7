"""Console pages: stores — the list (code, name, region, address, hours, status), a store's
form with its opening hours in words, closing and reopening a store, and importing a CSV
file of stores (all or nothing, every bad line named).

Every page calls the services the API's routes call (``/v1/stores``), with the permission
each of those routes requires; a staff member limited to some stores sees and changes only
those, as in the API.
"""

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import UploadFile

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import InvalidInput, KopilkaError, NotFound
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_key_cursor, encode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.stores.schemas import ImportResult, StoreImport, StoreUpdate
from kopilka.stores.service import store_service
from kopilka.web.console.access import console_page, form_page, program_of
from kopilka.web.console.catalog_fields import checked, form_errors
from kopilka.web.console.store_form import (
    EDIT_FIELDS,
    NEW_FIELDS,
    api_field,
    hours_text,
    read_new_store,
    read_store_changes,
    store_values,
    submitted,
)
from kopilka.web.forms import flag, form_of, text
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50
STATUSES = ("open", "closed")


def _store_url(code: str) -> str:
    return f"/console/stores/{quote(code, safe='')}"


# --- the list --------------------------------------------------------------------------------


@router.get("/stores")
async def stores_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.STORES_READ)],
    cursor: str | None = None,
    region: str | None = None,
    status: str | None = None,
) -> Response:
    """The program's stores in code order (a staff member limited to some stores: theirs):
    code, name, region, address, opening hours, whether open now, status; filtered by
    region and status."""
    shown = status if status in STATUSES else None
    where = (region or "").strip()[:100] or None
    after = decode_key_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        page = await store_service.page(
            conn,
            program,
            clock.now(),
            limit=PAGE_SIZE,
            after=after,
            region=where,
            status=shown,
            visible=principal.stores,
        )
        return {"program": program, "page": page}

    found = await read_only(engine, principal, work)
    next_url = None
    if found["page"].next_cursor:
        query = {"cursor": encode_cursor(found["page"].next_cursor)}
        query |= {k: v for k, v in (("region", where), ("status", shown)) if v}
        next_url = f"/console/stores?{urlencode(query)}"
    return render(
        request,
        "console/stores/index.html",
        {
            **found,
            "status": shown,
            "region": where or "",
            "next_url": next_url,
            "hours_text": hours_text,
        },
        zone=found["program"].settings.timezone,
    )


# --- a new store -----------------------------------------------------------------------------


async def _new_form(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return await form_page(
        request, engine, principal, "console/stores/new.html", values, errors, status
    )


@router.get("/stores/new")
async def new_store_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.STORES_MANAGE)],
) -> Response:
    """The form of a new store."""
    return await _new_form(request, engine, principal, {"status": "open"}, {})


@router.post("/stores/new")
async def create_store(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.STORES_MANAGE)],
) -> Response:
    """Create a store, as ``POST /v1/stores``; a refusal shows the form again with each
    message beside its field, nothing created."""
    form = await form_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        body = read_new_store(form)
        return await store_service.create(
            conn, program, body, clock.now(), allowed=principal.stores
        )

    try:
        store = await in_transaction(engine, principal, work)
    except KopilkaError as exc:
        errors = form_errors(exc, NEW_FIELDS, api_field)
        values = submitted(form, NEW_FIELDS)
        return await _new_form(request, engine, principal, values, errors, status=422)
    notice = gettext(language_of(request), "Store %(code)s created.", code=store.code)
    return redirect(request, _store_url(store.code), notice)


# --- importing a file ------------------------------------------------------------------------


def _import_page(
    request: Request,
    program: ProgramContext,
    *,
    result: ImportResult | None = None,
    problems: list[dict[str, Any]] | None = None,
    problem_count: int = 0,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "console/stores/import.html",
        {
            "program": program,
            "result": result,
            "problems": problems or [],
            "problem_count": problem_count,
            "errors": errors or {},
        },
        status=status,
        zone=program.settings.timezone,
    )


@router.get("/stores/import")
async def import_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.STORES_MANAGE)],
) -> Response:
    """The form that imports a CSV file of stores (the columns of ``docs/stores.md``)."""
    return _import_page(request, await program_of(engine, principal))


async def _file_text(form: Any) -> str:
    """The uploaded file's text (UTF-8, a byte-order mark ignored), else the text typed."""
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        content = await upload.read()
        if content:
            try:
                return content.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise InvalidInput("the file is not UTF-8 text", field="file") from None
    typed = form.get("csv")
    if isinstance(typed, str) and typed.strip():
        return typed
    raise InvalidInput("choose a CSV file (or paste its text)", field="file")


@router.post("/stores/import")
async def import_stores(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.STORES_MANAGE)],
) -> Response:
    """Create or change stores by code from a CSV file, as ``POST /v1/stores/import``: all
    or nothing, every bad line listed with its number; a check only (``dry_run``) lists
    what each line would do."""
    form = await form_of(request)
    dry_run = flag(form, "dry_run")

    async def work(conn: AsyncConnection, program: ProgramContext) -> ImportResult:
        body = checked(StoreImport, {"csv": await _file_text(form), "dry_run": dry_run})
        assert body.csv is not None
        return await store_service.import_csv(
            conn, program, body.csv, clock.now(), dry_run=dry_run, allowed=principal.stores
        )

    try:
        result = await in_transaction(engine, principal, work)
    except KopilkaError as exc:
        program = await program_of(engine, principal)
        problems = exc.extra.get("errors")
        if isinstance(problems, list):
            count = int(exc.extra.get("error_count", len(problems)))
            return _import_page(
                request, program, problems=problems, problem_count=count, status=exc.status
            )
        errors = form_errors(exc, ("file",), lambda _: "file")
        return _import_page(request, program, errors=errors, status=exc.status)
    if dry_run:
        return _import_page(request, await program_of(engine, principal), result=result)
    notice = gettext(
        language_of(request),
        "Imported: %(created)s created, %(updated)s changed, %(unchanged)s unchanged.",
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
    )
    return redirect(request, "/console/stores", notice)


# --- one store -------------------------------------------------------------------------------


async def _store_page(
    request: Request,
    engine: EngineDep,
    principal: Principal,
    code: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        store = await store_service.get(
            conn, program, code, now=clock.now(), visible=principal.stores
        )
        return {"program": program, "store": store}

    found = await read_only(engine, principal, work)
    context = {
        **found,
        "values": values or store_values(found["store"]),
        "errors": errors or {},
        "hours_text": hours_text,
    }
    return render(
        request,
        "console/stores/show.html",
        context,
        status=status,
        zone=found["program"].settings.timezone,
    )


@router.get("/stores/{code}")
async def store_page(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.STORES_READ)],
    code: str,
) -> Response:
    """A store: where it is, its hours, special dates, tags, status; with
    ``stores.manage`` its form and the button that closes or reopens it."""
    return await _store_page(request, engine, principal, code)


@router.post("/stores/{code}")
async def update_store(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.STORES_MANAGE)],
    code: str,
) -> Response:
    """Change a store, as ``PATCH /v1/stores/{code}``; an emptied optional field is
    cleared. A refusal changes nothing and shows the form again."""
    form = await form_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        body = read_store_changes(form)
        return await store_service.update(
            conn, program, code, body, clock.now(), visible=principal.stores
        )

    try:
        await in_transaction(engine, principal, work)
    except NotFound:
        raise
    except KopilkaError as exc:
        errors = form_errors(exc, EDIT_FIELDS, api_field)
        values = submitted(form, EDIT_FIELDS)
        return await _store_page(
            request, engine, principal, code, values=values, errors=errors, status=422
        )
    return redirect(request, _store_url(code), gettext(language_of(request), "Saved."))


@router.post("/stores/{code}/status")
async def set_store_status(
    request: Request,
    engine: EngineDep,
    principal: Annotated[Principal, console_page(P.STORES_MANAGE)],
    code: str,
) -> Response:
    """Close a store (it stops trading; its code and history stay) or reopen it."""
    form = await form_of(request)
    body = checked(StoreUpdate, {"status": text(form, "status", limit=20)})

    async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
        return await store_service.update(
            conn, program, code, body, clock.now(), visible=principal.stores
        )

    store = await in_transaction(engine, principal, work)
    language = language_of(request)
    notice = (
        gettext(language, "The store is closed.")
        if store.status == "closed"
        else gettext(language, "The store is open again.")
    )
    return redirect(request, _store_url(code), notice)
