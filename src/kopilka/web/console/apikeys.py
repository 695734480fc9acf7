"""Console pages: API keys — the program's keys with their scopes, when each was made and
revoked, revoking one, and making one (as ``kopilka keys create`` does: the secret is
shown once, only its hash is kept).

Listing and revoking need ``integrations.manage``, as ``/v1/api-keys`` does. Making a key
needs ``staff.manage``: an ``admin`` key holds every permission, so whoever makes one can
give a machine more than their own integrations — as much as whoever makes an owner, which
``staff.manage`` already guards.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.apikeys.service import SCOPES, KeyInfo, api_key_service
from kopilka.errors import InvalidInput, KopilkaError
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, encode_cursor
from kopilka.programs.service import ProgramContext
from kopilka.web.console.access import console_page
from kopilka.web.forms import choices, field_errors, form_of, text
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
Integrator = Annotated[Principal, console_page(P.INTEGRATIONS_MANAGE)]
KeyMaker = Annotated[Principal, console_page(P.STAFF_MANAGE)]
PAGE_SIZE = 100


def next_url(request: Request, keys: list[KeyInfo]) -> str | None:
    """This page's address with the next page's cursor (after a full page)."""
    if len(keys) < PAGE_SIZE:
        return None
    url = request.url.include_query_params(cursor=encode_cursor(keys[-1].created_at, keys[-1].id))
    return f"{url.path}?{url.query}"


@router.get("/api-keys")
async def api_keys(
    request: Request,
    engine: EngineDep,
    principal: Integrator,
    revoked: bool = False,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The program's keys, oldest first: name, the secret's first characters, scopes, when
    made and revoked (never a secret); revoked keys on request."""
    after = decode_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> tuple[list[KeyInfo], str]:
        keys = await api_key_service.page(
            conn, program.id, limit=PAGE_SIZE, after=after, include_revoked=revoked
        )
        return keys, program.settings.timezone

    keys, zone = await read_only(engine, principal, work)
    return render(
        request,
        "console/apikeys/index.html",
        {"keys": keys, "revoked": revoked, "next_url": next_url(request, keys)},
        zone=zone,
    )


def _form_page(
    request: Request,
    name: str,
    scopes: list[str],
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "console/apikeys/form.html",
        {
            "name": name,
            "chosen": scopes,
            "scopes": SCOPES,
            "errors": errors or {},
        },
        status=status,
    )


@router.get("/api-keys/new")
async def new_api_key(request: Request, principal: KeyMaker) -> Response:
    """The form of a new key: a name and its scopes."""
    return _form_page(request, "", [])


@router.post("/api-keys/new")
async def create_api_key(request: Request, engine: EngineDep, principal: KeyMaker) -> Response:
    """Make a key and show its secret, once: only its hash is stored."""
    form = await form_of(request)
    language = language_of(request)
    name = text(form, "name", limit=200) or ""
    scopes = choices(form, "scopes")
    try:
        if not name:
            raise InvalidInput(gettext(language, "Name the key: what is it for?"), field="name")
        secret, key_id = await in_transaction(
            engine,
            principal,
            lambda conn, program: api_key_service.create(
                conn, program.id, name=name, scopes=scopes, now=clock.now()
            ),
        )
    except KopilkaError as exc:
        if exc.status in (401, 403):
            raise
        errors = {("scopes" if k == "scope" else k): v for k, v in field_errors(exc).items()}
        return _form_page(request, name, scopes, errors=errors, status=exc.status)
    return render(
        request,
        "console/apikeys/secret.html",
        {"secret": secret, "key_id": key_id, "name": name, "scopes": sorted(set(scopes))},
    )


@router.post("/api-keys/{key_id}/revoke")
async def revoke_api_key(
    request: Request, key_id: UUID, engine: EngineDep, principal: Integrator
) -> Response:
    """Revoke a key: from now on no request with it is served, by any process."""
    revoked = await in_transaction(
        engine,
        principal,
        lambda conn, program: api_key_service.revoke(conn, program.id, key_id, clock.now()),
    )
    notice = gettext(language_of(request), "The key %(prefix)s… is revoked.", prefix=revoked.prefix)
    return redirect(request, "/console/api-keys", notice)
