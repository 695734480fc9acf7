"""The pages a message's links open, without a login: their signed token is the proof.

- ``/m/u/<token>``: unsubscribe from marketing on one channel. A GET shows a button (mail
  scanners follow links; they must not unsubscribe anyone); a POST — the button, or a mail
  client's RFC 8058 one-click POST — withdraws the consent.
- ``/m/p/<token>``: the preference page: marketing and service messages per channel.
- ``/m/confirm/<token>``: confirm the address for marketing e-mail (double opt-in), by a
  button for the same reason.
- ``/m/c/<token>``: a tracked link: the click is recorded and the browser redirected.
- ``/m/reports/<token>``: SMS delivery reports, POSTed by the provider to the URL
  ``GET /v1/messaging/callbacks`` gives (JSON, or SMS.ru's form).
- ``/m/inbound/<token>``: inbound e-mail (a raw RFC 822 message, as mail providers'
  inbound webhooks post it): an answer to a ticket reply becomes the member's reply
  (``kopilka.messaging.inbound``).

A token that does not verify gets a 404 page that says so, and changes nothing.
"""

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.db import run_in_transaction
from kopilka.errors import NotFound
from kopilka.http import EngineDep
from kopilka.kit.clock import clock
from kopilka.members.service import member_service
from kopilka.messaging import inbound, links
from kopilka.messaging.consents import CHANNELS, consent_service, own_change
from kopilka.messaging.delivery import delivery_service
from kopilka.messaging.domain import LANGUAGES, language_of
from kopilka.messaging.notifications import Purpose
from kopilka.messaging.reports import parse_report
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext, program_service

router = APIRouter(prefix="/m", include_in_schema=False)
T = TypeVar("T")

_pages = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
)
# Pages carry no script at all; styles are the page's own.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

TEXT: dict[str, dict[str, str]] = {
    "ru": {
        "unsubscribe": "Отписка от рассылки",
        "unsubscribe_ask": "Больше не присылать новости и предложения: {channel}?",
        "unsubscribe_button": "Отписаться",
        "unsubscribed": "Готово: новости и предложения ({channel}) больше не придут. "
        "Сообщения о ваших баллах и покупках приходят по-прежнему.",
        "preferences": "Какие сообщения присылать",
        "marketing": "Новости и предложения",
        "service": "Мои баллы, уровень и награды",
        "save": "Сохранить",
        "saved": "Сохранено.",
        "confirm": "Подтверждение подписки",
        "confirm_ask": "Подтвердите, что хотите получать новости и предложения на этот адрес.",
        "confirm_button": "Подтвердить",
        "confirmed": "Спасибо, адрес подтверждён.",
        "not_pending": "Подтверждать нечего: подписка уже подтверждена или отменена.",
        "bad": "Ссылка недействительна",
        "bad_note": "Эта ссылка повреждена или устарела.",
        "email": "e-mail",
        "sms": "SMS",
        "push": "push-уведомления",
    },
    "en": {
        "unsubscribe": "Unsubscribe",
        "unsubscribe_ask": "Stop news and offers by {channel}?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed": "Done: no more news and offers by {channel}. Messages about your "
        "points and purchases still come.",
        "preferences": "Which messages to send you",
        "marketing": "News and offers",
        "service": "My points, tier and rewards",
        "save": "Save",
        "saved": "Saved.",
        "confirm": "Confirm your subscription",
        "confirm_ask": "Confirm that you want news and offers at this address.",
        "confirm_button": "Confirm",
        "confirmed": "Thank you, your address is confirmed.",
        "not_pending": "Nothing to confirm: the subscription is already confirmed or cancelled.",
        "bad": "This link does not work",
        "bad_note": "The link is damaged or out of date.",
        "email": "e-mail",
        "sms": "SMS",
        "push": "push notifications",
    },
}


class _Bad(Exception):
    pass


# The channels a link of each action may name.
CONSENT_CHANNELS: dict[str, frozenset[str]] = {
    "unsubscribe": frozenset({"email", "sms", "push"}),
    "confirm": frozenset({"email"}),
    "report": frozenset({"sms"}),
}


def _page(lang: str, program: str, title: str, status: int = 200, **values: Any) -> HTMLResponse:
    body = _pages.get_template("page.html").render(
        lang=lang, program=program, title=title, **values
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _bad_page() -> HTMLResponse:
    text = TEXT["ru"]
    return _page("ru", "Kopilka", text["bad"], status=404, note=text["bad_note"])


async def _verified(
    conn: AsyncConnection, token: str, action: str
) -> tuple[ProgramContext, links.LinkData, str]:
    """The program, the link's data and the language of the page; ``_Bad`` if the link
    does not verify or names a member no longer there."""
    data = await messaging_service.verified_link(conn, token, action)
    if data is None or (
        data.channel is not None and data.channel not in CONSENT_CHANNELS.get(action, ())
    ):
        raise _Bad
    try:
        program = await program_service.get(conn, data.program_id)
    except NotFound:
        raise _Bad from None
    setup = await messaging_service.setup(conn, program)
    member_language = None
    if data.member_id is not None:
        try:
            member_language = (await member_service.get(conn, program, data.member_id)).language
        except NotFound:
            raise _Bad from None
    return program, data, language_of(member_language, LANGUAGES, setup.settings.language)


async def _run(engine: Any, work: Callable[[AsyncConnection], Awaitable[Response]]) -> Response:
    try:
        return await run_in_transaction(engine, work)
    except _Bad:
        return _bad_page()


@router.get("/u/{token}")
async def unsubscribe_page(token: str, engine: EngineDep) -> Response:
    async def work(conn: AsyncConnection) -> Response:
        program, data, lang = await _verified(conn, token, "unsubscribe")
        text = TEXT[lang]
        channel = text.get(data.channel or "", data.channel or "")
        return _page(
            lang,
            program.name,
            text["unsubscribe"],
            note=text["unsubscribe_ask"].format(channel=channel),
            submit=text["unsubscribe_button"],
        )

    return await _run(engine, work)


@router.post("/u/{token}")
async def unsubscribe(token: str, engine: EngineDep) -> Response:
    """The button, or a mail client's one-click POST (``List-Unsubscribe=One-Click``)."""

    async def work(conn: AsyncConnection) -> Response:
        program, data, lang = await _verified(conn, token, "unsubscribe")
        assert data.member_id is not None and data.channel is not None
        await consent_service.withdraw(
            conn, program, data.member_id, data.channel, "unsubscribe", clock.now()
        )
        text = TEXT[lang]
        channel = text.get(data.channel, data.channel)
        return _page(
            lang,
            program.name,
            text["unsubscribe"],
            note=text["unsubscribed"].format(channel=channel),
        )

    return await _run(engine, work)


def _form(text: dict[str, str], allowed: dict[tuple[str, str], bool]) -> list[dict[str, Any]]:
    return [
        {
            "legend": text[str(purpose)],
            "boxes": [
                {
                    "name": f"{purpose}.{channel}",
                    "label": text[str(channel)],
                    "checked": allowed[(str(channel), str(purpose))],
                }
                for channel in CHANNELS
            ],
        }
        for purpose in (Purpose.MARKETING, Purpose.SERVICE)
    ]


async def _preferences(conn: AsyncConnection, token: str, form: dict[str, str] | None) -> Response:
    program, data, lang = await _verified(conn, token, "preferences")
    assert data.member_id is not None
    text = TEXT[lang]
    if form is not None:
        changes = [
            own_change(
                str(channel),
                purpose,
                form.get(f"{purpose}.{channel}") == "on",
                "preferences",
            )
            for purpose in (Purpose.MARKETING, Purpose.SERVICE)
            for channel in CHANNELS
        ]
        now = clock.now()
        await consent_service.change(conn, program, data.member_id, changes, now, confirm_at=now)
    views, _ = await consent_service.of(conn, program, data.member_id)
    allowed = {(v.channel, v.purpose): v.allowed or v.status == "pending" for v in views}
    return _page(
        lang,
        program.name,
        text["preferences"],
        note=text["saved"] if form is not None else None,
        form=_form(text, allowed),
        submit=text["save"],
    )


@router.get("/p/{token}")
async def preferences_page(token: str, engine: EngineDep) -> Response:
    async def work(conn: AsyncConnection) -> Response:
        return await _preferences(conn, token, None)

    return await _run(engine, work)


@router.post("/p/{token}")
async def save_preferences(token: str, request: Request, engine: EngineDep) -> Response:
    raw = (await request.body())[:10_000].decode(errors="replace")
    form = dict(parse_qsl(raw))

    async def work(conn: AsyncConnection) -> Response:
        return await _preferences(conn, token, form)

    return await _run(engine, work)


@router.get("/confirm/{token}")
async def confirm_page(token: str, engine: EngineDep) -> Response:
    async def work(conn: AsyncConnection) -> Response:
        program, _, lang = await _verified(conn, token, "confirm")
        text = TEXT[lang]
        return _page(
            lang,
            program.name,
            text["confirm"],
            note=text["confirm_ask"],
            submit=text["confirm_button"],
        )

    return await _run(engine, work)


@router.post("/confirm/{token}")
async def confirm(token: str, engine: EngineDep) -> Response:
    async def work(conn: AsyncConnection) -> Response:
        program, data, lang = await _verified(conn, token, "confirm")
        assert data.member_id is not None
        done = await consent_service.confirm(conn, program, data.member_id, clock.now())
        text = TEXT[lang]
        return _page(
            lang, program.name, text["confirm"], note=text["confirmed" if done else "not_pending"]
        )

    return await _run(engine, work)


@router.get("/c/{token}")
async def click(token: str, engine: EngineDep) -> Response:
    async def work(conn: AsyncConnection) -> Response:
        program, data, _ = await _verified(conn, token, "click")
        if data.message_id is None or not data.url:
            raise _Bad
        await delivery_service.clicked(conn, program.id, data.message_id, data.url, clock.now())
        return RedirectResponse(data.url, status_code=302, headers={"Cache-Control": "no-store"})

    return await _run(engine, work)


@router.post("/reports/{token}")
async def delivery_report(token: str, request: Request, engine: EngineDep) -> Response:
    """Delivery reports of the SMS provider; answers ``100``, as SMS.ru expects."""
    raw = (await request.body())[:1_000_000]
    content_type = request.headers.get("content-type", "")

    async def work(conn: AsyncConnection) -> int | None:
        # The URL is checked before the body is read: a stranger learns nothing of it.
        data = await messaging_service.verified_link(conn, token, "report")
        if data is None or data.channel not in CONSENT_CHANNELS["report"]:
            return None
        reports = parse_report(content_type, raw)
        return await delivery_service.accept_reports(conn, data, reports, clock.now())

    if await run_in_transaction(engine, work) is None:
        raise NotFound("no such callback", field="token")
    return Response("100", media_type="text/plain")


MAX_INBOUND_BYTES = 10_000_000


@router.post("/inbound/{token}")
async def inbound_mail(token: str, request: Request, engine: EngineDep) -> Response:
    """A raw e-mail posted by the mail provider; answers what was done with it."""
    raw = (await request.body())[:MAX_INBOUND_BYTES]

    async def work(conn: AsyncConnection) -> str | None:
        return await inbound.accept(conn, token, raw, clock.now())

    done = await run_in_transaction(engine, work)
    if done is None:
        raise NotFound("no such inbound address", field="token")
    return Response(done, media_type="text/plain")
