"""App pages: the member's profile — the fields they may change themselves (as ``PATCH
/v1/members/{id}``), their consents per channel and purpose (as ``/consents``, source
``app``), their data as a JSON download (as ``/export``) and deleting their account (the
erasure of ``/erase``: the session ends with it).

The e-mail and the phone are what the member signs in with: a new one becomes theirs only
when the member enters the one-time code sent to it (``profile/address``); until then
nothing changes, so a session left open on someone else's phone cannot move the account to
an address of theirs, nor a typo lock the member out."""

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from kopilka.audit.domain import Actor, ActorKind, acting
from kopilka.errors import KopilkaError
from kopilka.kit.clock import clock
from kopilka.memberaccess.domain import (
    CODE_MINUTES,
    Address,
    addresses_of,
    clean_code,
    parse_address,
)
from kopilka.memberaccess.service import member_access_service
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
from kopilka.web.app.signin import (
    allow_codes,
    channels_of,
    tries_refusal,
    unavailable_text,
)
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


def _new_address(current: Member, sent: dict[str, Any], language: str) -> Address | None:
    """The e-mail or phone sent that is not the member's now (one at a time), in its stored
    form; None if neither is new (the same, or cleared). ``FormInvalid`` naming the field
    if one is not valid, or if both are new."""
    try:
        typed = addresses_of(sent["email"], sent["phone"])
    except KopilkaError as exc:
        raise FormInvalid(field_errors(exc)) from None
    new = [a for a in typed if a.value != getattr(current, a.kind)]
    if len(new) > 1:
        message = gettext(language, "Change your e-mail and your phone one at a time.")
        raise FormInvalid({"email": message, "phone": message})
    return new[0] if new else None


@router.post("/{slug}/profile")
async def change_profile(request: Request, member: SignedInMember) -> Response:
    """Change the member's own fields, as ``PATCH /v1/members/{id}`` does — but a new
    e-mail or phone, which only a code sent to it makes theirs: the other fields are saved
    and the page asks for that code. Refused: the form again with each field's message,
    nothing changed."""
    form = await form_of(request)
    sent = _sent_profile(form)
    act_as_member(request, member)
    language = language_of(request)
    channels = channels_of(request)

    async def current_of(conn: AsyncConnection, program: ProgramContext) -> Member:
        return await member_service.get(conn, program, member.member_id)

    try:
        new = _new_address(await member_read(request, current_of), sent, language)
        if new is not None and new.channel not in channels:
            raise FormInvalid({new.kind: unavailable_text(language, new.channel)})
    except FormInvalid as exc:
        return await _profile_page(request, member, values=sent, errors=exc.errors, status=422)
    if new is not None and (refusal := allow_codes(request, member.program, [new])) is not None:
        page = await _profile_page(
            request, member, values=sent, errors={new.kind: refusal.text}, status=429
        )
        page.headers.update(refusal.headers)
        return page

    async def work(conn: AsyncConnection, program: ProgramContext) -> None:
        now = clock.now()
        current = await member_service.get(conn, program, member.member_id)
        if (current.phone or current.email) and not (sent["phone"] or sent["email"]):
            message = gettext(language, "Keep a phone number or an e-mail: you sign in with it.")
            raise FormInvalid({"phone": message, "email": message})
        # The new address waits for its code: the member's own stays until then.
        kept = sent | ({new.kind: getattr(current, new.kind)} if new is not None else {})
        changes = validated(MemberUpdate, kept)
        await member_service.update(conn, program, member.member_id, changes, now)
        if new is not None:
            await member_access_service.request_address_change(
                conn, program, member.member_id, new, now, channels=channels
            )

    try:
        await member_transaction(request, work)
    except KopilkaError as exc:
        return await _profile_page(
            request, member, values=sent, errors=field_errors(exc), status=422
        )
    if new is not None:
        return _address_page(request, member, new)
    return redirect(request, app_url(member.slug, "profile"), gettext(language, "Saved."))


def _address_page(
    request: Request,
    member: MemberCaller,
    address: Address,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The code sent to a new e-mail or phone, to type (the rest of the profile is saved)."""
    return app_page(
        request,
        member,
        "app/profile/address.html",
        {
            "address": address.value,
            "kind": address.kind,
            "minutes": CODE_MINUTES,
            "errors": {"code": error} if error else {},
        },
        status=status,
    )


@router.post("/{slug}/profile/address")
async def confirm_address(request: Request, member: SignedInMember) -> Response:
    """The code sent to a new e-mail or phone: right, it becomes the member's (as ``PATCH
    /v1/members/{id}`` changes it); refused, the page again with one message whatever the
    reason. Tries are limited per client, as when signing in."""
    form = await form_of(request)
    language = language_of(request)
    try:
        address = parse_address(text(form, "address", limit=320) or "")
    except KopilkaError:
        return redirect(request, app_url(member.slug, "profile"))
    act_as_member(request, member)
    refusal = tries_refusal(request, member.program)
    if refusal is not None:
        page = _address_page(request, member, address, error=refusal.text, status=429)
        page.headers.update(refusal.headers)
        return page
    code = clean_code(text(form, "code", limit=40) or "")
    if code is None:
        error = gettext(language, "The code is six digits.")
        return _address_page(request, member, address, error=error, status=422)

    async def work(conn: AsyncConnection, program: ProgramContext) -> bool:
        check = await member_access_service.confirm_address_change(
            conn, program, member.member_id, address, code, clock.now()
        )
        return check.accepted

    try:
        accepted = await member_transaction(request, work)
    except KopilkaError:
        # Taken by another member since the code was sent: this address cannot be used.
        error = gettext(language, "This address cannot be used. Check it, or give another.")
        return _address_page(request, member, address, error=error, status=409)
    if not accepted:
        error = gettext(
            language, "This code is wrong or no longer valid. Check it, or ask for a new one."
        )
        return _address_page(request, member, address, error=error, status=422)
    notice = (
        gettext(language, "Your e-mail is changed.")
        if address.kind == "email"
        else gettext(language, "Your phone number is changed.")
    )
    return redirect(request, app_url(member.slug, "profile"), notice)


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
