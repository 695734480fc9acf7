"""App pages: the member's profile — the fields they may change themselves (as ``PATCH
/v1/members/{id}``), their consents per channel and purpose (as ``/consents``, source
``app``), their data as a JSON download (as ``/export``) and deleting their account (the
erasure of ``/erase``: the session ends with it)."""

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from kopilka.audit.domain import Actor, ActorKind, acting
from kopilka.errors import KopilkaError
from kopilka.kit.clock import clock
from kopilka.members.schemas import Member, MemberUpdate
from kopilka.members.service import member_service
from kopilka.messaging.consents import consent_service
from kopilka.messaging.schemas import ConsentChange
from kopilka.privacy.erasure import erasure_service
from kopilka.privacy.export import export_service
from kopilka.programs.service import ProgramContext
from kopilka.stores.service import store_service
from kopilka.web.app.access import (
    APP_COOKIE,
    MemberCaller,
    SignedInMember,
    app_url,
    cookie_path,
    member_read,
    member_transaction,
    program_of,
)
from kopilka.web.app.history import app_page
from kopilka.web.forms import FormInvalid, field_errors, flag, form_of, text, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/app", include_in_schema=False)
# What a member may change of their own profile; tags, attributes and status are staff's.
OWN_FIELDS = ("name", "phone", "email", "birthday", "preferred_store", "preferred_channel")
CHANNELS = ("email", "sms", "push")
PURPOSES = ("service", "marketing")
CONSENT_SOURCE = "app"
ERASURE_REASON = "the member's own request in the app"
# A store list longer than this is typed as a code rather than chosen from.
STORES_LISTED = 300


def act_as_member(request: Request, member: MemberCaller) -> None:
    """The member is who acts in this request: the audit entries of their own changes,
    export and erasure name them."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    acting.set(
        Actor(
            ActorKind.MEMBER,
            member.member_id,
            "member",
            route=f"{request.method} {route}",
            subject={"member_id": str(member.member_id)},
        )
    )


async def _profile_page(
    request: Request,
    member: MemberCaller,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The profile page: the form (with ``values`` sent and ``errors`` when it was refused),
    consents, export, deletion and signing out."""

    async def read(conn: AsyncConnection, program: ProgramContext) -> Any:
        profile = await member_service.get(conn, program, member.member_id)
        consents, _ = await consent_service.of(conn, program, member.member_id)
        stores = await store_service.page(conn, program, clock.now(), limit=STORES_LISTED)
        return profile, consents, stores

    profile, consents, stores = await member_read(request, read)
    # A short list is chosen from; a chain with very many stores types the code.
    options = [(s.code, s.name) for s in stores.items] if stores.next_cursor is None else None
    return app_page(
        request,
        member,
        "app/profile/profile.html",
        {
            "profile": profile,
            "values": values if values is not None else _values_of(profile),
            "errors": errors or {},
            "consents": {(c.channel, c.purpose): c for c in consents},
            "channels": CHANNELS,
            "purposes": PURPOSES,
            "store_options": options if options else None,
        },
        status=status,
    )


def _values_of(profile: Member) -> dict[str, Any]:
    values = {name: getattr(profile, name) for name in OWN_FIELDS}
    values["birthday"] = profile.birthday.isoformat() if profile.birthday else None
    return values


@router.get("/{slug}/profile")
async def profile(request: Request, member: SignedInMember) -> Response:
    """The member's profile, consents and privacy: what they may change themselves."""
    return await _profile_page(request, member)


def _sent_profile(form: FormData) -> dict[str, Any]:
    """The member's own fields as sent: an empty field clears its value."""
    return {name: text(form, name, limit=320) for name in OWN_FIELDS}


@router.post("/{slug}/profile")
async def change_profile(request: Request, member: SignedInMember) -> Response:
    """Change the member's own fields, as ``PATCH /v1/members/{id}`` does; refused: the
    form again with each field's message, nothing changed."""
    form = await form_of(request)
    sent = _sent_profile(form)
    act_as_member(request, member)
    language = language_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> Member:
        current = await member_service.get(conn, program, member.member_id)
        if (current.phone or current.email) and not (sent["phone"] or sent["email"]):
            message = gettext(language, "Keep a phone number or an e-mail: you sign in with it.")
            raise FormInvalid({"phone": message, "email": message})
        changes = validated(MemberUpdate, sent)
        return await member_service.update(conn, program, member.member_id, changes, clock.now())

    try:
        await member_transaction(request, work)
    except KopilkaError as exc:
        return await _profile_page(
            request, member, values=sent, errors=field_errors(exc), status=422
        )
    return redirect(request, app_url(member.slug, "profile"), gettext(language, "Saved."))


@router.post("/{slug}/profile/consents")
async def change_consents(request: Request, member: SignedInMember) -> Response:
    """Grant or withdraw messages per channel and purpose (source ``app``), as ``POST
    /v1/members/{id}/consents`` does. Marketing e-mail may wait for the member to confirm
    the address, as the program asks."""
    form = await form_of(request)
    act_as_member(request, member)

    async def work(conn: AsyncConnection, program: ProgramContext) -> int:
        now = clock.now()
        views, _ = await consent_service.of(conn, program, member.member_id)
        changes = [
            ConsentChange.model_validate(
                {
                    "channel": view.channel,
                    "purpose": view.purpose,
                    "granted": wanted,
                    "source": CONSENT_SOURCE,
                }
            )
            for view in views
            if (wanted := flag(form, f"{view.channel}.{view.purpose}")) != _ticked(view)
        ]
        if not changes:
            return 0
        return await consent_service.change(
            conn, program, member.member_id, changes, now, confirm_at=now
        )

    await member_transaction(request, work)
    notice = gettext(language_of(request), "Your choices are saved.")
    return redirect(request, app_url(member.slug, "profile") + "#consents", notice)


def _ticked(view: Any) -> bool:
    """Whether the page showed the box ticked: messages allowed, or a marketing e-mail
    consent waiting for the address to be confirmed."""
    return bool(view.allowed or view.status == "pending")


@router.post("/{slug}/profile/export")
async def export(request: Request, member: SignedInMember) -> Response:
    """Everything held about the member, as one JSON file to download (the same document
    as ``GET /v1/members/{id}/export``; the export is in the audit log)."""
    await form_of(request)
    act_as_member(request, member)

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        return await export_service.export_recorded(conn, program, member.member_id, clock.now())

    document = await member_transaction(request, work)
    name = f"my-data-{member.slug}-{clock.now().date().isoformat()}.json"
    return Response(
        _json(document),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


def _json(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z)


@router.get("/{slug}/profile/delete")
async def delete_page(request: Request, member: SignedInMember) -> Response:
    """What deleting the account does, and the button that does it."""
    return app_page(request, member, "app/profile/delete.html", {"error": None})


@router.post("/{slug}/profile/delete")
async def delete_account(request: Request, member: SignedInMember) -> Response:
    """Erase the member's personal data (as ``POST /v1/members/{id}/erase``) once they
    confirmed: their sessions end with it and this browser forgets its cookie."""
    form = await form_of(request)
    language = language_of(request)
    if not flag(form, "confirm"):
        error = gettext(language, "Tick the box to confirm that you want your account deleted.")
        return app_page(request, member, "app/profile/delete.html", {"error": error}, status=422)
    act_as_member(request, member)

    async def work(conn: AsyncConnection, program: ProgramContext) -> None:
        await erasure_service.erase(conn, program, member.member_id, ERASURE_REASON, clock.now())

    await member_transaction(request, work)
    response = redirect(
        request, app_url(member.slug, "goodbye"), gettext(language, "Your account is deleted.")
    )
    response.delete_cookie(APP_COOKIE, path=cookie_path(member.slug))
    return response


@router.get("/{slug}/goodbye")
async def goodbye(request: Request, slug: str) -> Response:
    """After deleting an account: a plain page, no session needed."""
    program = await program_of(request, slug)
    return render(
        request,
        "app/profile/goodbye.html",
        {"slug": program.slug, "program_name": program.name, "member": None},
        zone=program.settings.timezone,
    )
