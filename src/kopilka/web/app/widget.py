"""The web-shop widget: its script and the calls it makes.

A shop puts one tag on its pages — ``<script src="…/widget/<slug>/widget.js"
data-token="kw_…" async>`` — with a token its server asked for
(``POST /v1/members/{id}/widget-sessions``). The script draws the member's balance, tier and
rewards in a shadow root and, at checkout, puts points on hold through this module's API:

- ``GET /widget/<slug>/widget.js`` and ``widget.css``: public, cacheable (with an ``ETag``);
- ``GET /widget/<slug>/api/summary[?lang=ru|en]``: the balance, the tier's progress with the
  sentence of what is left (in the language asked), the rewards the balance pays for;
- ``POST /widget/<slug>/api/holds`` ``{"points": N}`` with an ``Idempotency-Key``: a hold,
  the one ``POST /v1/redemptions`` makes, which the shop's server captures or voids.

The API is called from the shop's pages, another origin: it takes the session's token in
``Authorization: Bearer kw_…`` (never a cookie, so no CSRF), and answers CORS — preflight
and actual requests — only to the origins the program allows (``PUT /v1/widget/settings``);
a request from any other page is a 403 without CORS headers, so the browser reads nothing.
Every answer is JSON, errors problem+json with the CORS headers (the script reads why). The
request guard does not authenticate paths outside ``/v1`` nor insist on JSON there: the
routes here do, and take a body of at most ``MAX_BODY_BYTES``.
"""

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import read_with_retry, run_in_transaction
from kopilka.errors import Forbidden, InvalidInput, KopilkaError, NotFound, Unauthorized
from kopilka.http import CHALLENGE, CONFLICT_RETRIES, PROBLEM, FastJSONResponse
from kopilka.kit.clock import clock
from kopilka.kit.types import error_location
from kopilka.programs.service import ProgramContext, program_service
from kopilka.shopwidget.schemas import WidgetHoldRequest
from kopilka.shopwidget.service import WidgetSummary, widget_service
from kopilka.tiers.schemas import MemberTierOut
from kopilka.web.app.card import tier_view
from kopilka.web.i18n import LANGUAGES, Formats, language_of
from kopilka.web.rendering import STATIC_DIR

router = APIRouter(include_in_schema=False)
T = TypeVar("T")

# {"points": 1000000000000} is 25 bytes: anything near a kilobyte is not the widget's.
MAX_BODY_BYTES = 1024
MAX_KEY_LENGTH = 200
ASSET_SECONDS = 600  # shops pick up a new release of the script within ten minutes
PREFLIGHT_SECONDS = 600
API_METHODS = ("GET", "POST")
API_HEADERS = frozenset({"authorization", "content-type", "idempotency-key"})
API_PATHS = frozenset({"summary", "holds"})
NOT_ALLOWED = (
    "this page's origin may not use the widget: the program allows it with PUT /v1/widget/settings"
)


# --- the script and its style ------------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    body: bytes
    etag: str
    media_type: str


@cache
def asset(name: str, media_type: str) -> Asset:
    body = (STATIC_DIR / name).read_bytes()
    return Asset(body, f'"{hashlib.sha256(body).hexdigest()[:20]}"', media_type)


async def _serve_asset(request: Request, slug: str, found: Asset) -> Response:
    engine: AsyncEngine = request.app.state.engine
    await read_with_retry(engine, lambda conn: program_service.get_by_slug(conn, slug))
    headers = {
        "ETag": found.etag,
        "Cache-Control": f"public, max-age={ASSET_SECONDS}",
        "X-Content-Type-Options": "nosniff",
        # Loaded by other sites' pages, also those that isolate themselves (COEP).
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Origin": "*",
    }
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


@router.get("/widget/{slug}/widget.js")
async def widget_script(request: Request, slug: str) -> Response:
    """The widget's script, the same file for every program (it reads the program's name
    and its API's address off its own ``src``)."""
    return await _serve_asset(request, slug, asset("widget.js", "text/javascript; charset=utf-8"))


@router.get("/widget/{slug}/widget.css")
async def widget_style(request: Request, slug: str) -> Response:
    """The widget's style, loaded by the script into its shadow root."""
    return await _serve_asset(request, slug, asset("widget.css", "text/css; charset=utf-8"))


# --- CORS --------------------------------------------------------------------------------


@dataclass
class Answer:
    """The CORS headers an answer carries, found out once the program's origins are read
    (so that an error after that point is readable by the page)."""

    cors: dict[str, str]


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "Idempotent-Replayed",
        "Vary": "Origin",
    }


async def admit_origin(
    conn: AsyncConnection, request: Request, slug: str, answer: Answer
) -> ProgramContext:
    """The program of ``slug``, having checked that the page calling (its ``Origin``) is
    one the program allows; a call without an ``Origin`` comes from no page (a browser
    always sends it across origins) and gets no CORS headers."""
    program = await program_service.get_by_slug(conn, slug)
    origin = request.headers.get("origin")
    if origin is not None:
        if origin not in await widget_service.allowed_origins(conn, program):
            raise Forbidden(NOT_ALLOWED)
        answer.cors = cors_headers(origin)
    return program


@router.options("/widget/{slug}/api/{name}")
async def preflight(request: Request, slug: str, name: str) -> Response:
    """The browser's question before a call from the shop's page: allowed for the program's
    origins, the widget's methods and headers only."""
    engine: AsyncEngine = request.app.state.engine
    answer = Answer({})
    try:
        if name not in API_PATHS:
            raise NotFound(f"no widget call {name!r}")
        if request.headers.get("origin") is None:
            raise Forbidden("a preflight request names its Origin")
        await read_with_retry(engine, lambda conn: admit_origin(conn, request, slug, answer))
        method = request.headers.get("access-control-request-method", "")
        asked = request.headers.get("access-control-request-headers", "")
        headers = {h.strip().lower() for h in asked.split(",") if h.strip()}
        if method not in API_METHODS or not headers <= API_HEADERS:
            raise Forbidden("the widget's API takes GET and POST with its own headers only")
    except KopilkaError as exc:
        return _problem(request, exc, {})
    return Response(
        status_code=204,
        headers={
            **answer.cors,
            "Access-Control-Allow-Methods": ", ".join(API_METHODS),
            "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key",
            "Access-Control-Max-Age": str(PREFLIGHT_SECONDS),
        },
    )


# --- the API -----------------------------------------------------------------------------


def bearer_token(request: Request) -> str:
    authorization = request.headers.get("authorization", "")
    if not authorization.lower().startswith("bearer "):
        raise Unauthorized("send 'Authorization: Bearer kw_…' (the widget's session)")
    return authorization[7:].strip()


@router.get("/widget/{slug}/api/summary")
async def summary(request: Request, slug: str, lang: str | None = None) -> Response:
    """The member's balance, tier progress (with the sentence of what is left, in ``lang``)
    and the rewards their balance pays for."""
    engine: AsyncEngine = request.app.state.engine
    language = lang if lang in LANGUAGES else language_of(request)
    answer = Answer({})
    now = clock.now()

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        program = await admit_origin(conn, request, slug, answer)
        session = await widget_service.session(conn, program, bearer_token(request), now)
        found = await widget_service.summary(conn, program, session, now)
        return summary_json(program, found, Formats(language, program.settings.timezone), now)

    try:
        body = await read_with_retry(engine, work)
    except KopilkaError as exc:
        return _problem(request, exc, answer.cors)
    return _json(body, 200, answer.cors)


@router.post("/widget/{slug}/api/holds")
async def create_hold(request: Request, slug: str) -> Response:
    """Put points on hold for the order (``{"points": N}``, once per ``Idempotency-Key``);
    the answer's ``id`` is the hold the shop's server captures or voids."""
    engine: AsyncEngine = request.app.state.engine
    answer = Answer({})
    now = clock.now()

    async def work(conn: AsyncConnection) -> tuple[int, dict[str, Any], bool]:
        program = await admit_origin(conn, request, slug, answer)
        session = await widget_service.session(conn, program, bearer_token(request), now)
        body, key = await hold_request(request)
        return await widget_service.hold(conn, program, session, body, key, now)

    try:
        status, body, replayed = await _in_transaction(engine, work)
    except KopilkaError as exc:
        return _problem(request, exc, answer.cors)
    headers = {**answer.cors, **({"Idempotent-Replayed": "true"} if replayed else {})}
    return _json(body, status, headers)


async def hold_request(request: Request) -> tuple[WidgetHoldRequest, str]:
    """The body and the ``Idempotency-Key`` of a hold: JSON only (415), small (413), strict
    (422 naming the field)."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("send the body as JSON with 'Content-Type: application/json'")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ContentTooLarge(f"the widget's request body may not exceed {MAX_BODY_BYTES} bytes")
    try:
        body = WidgetHoldRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise invalid(exc) from None
    key = request.headers.get("idempotency-key", "")
    if not (0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()):
        raise InvalidInput(
            f"send an Idempotency-Key of 1 to {MAX_KEY_LENGTH} printable characters, "
            "new for each payment",
            field="Idempotency-Key",
        )
    return body, key


class UnsupportedMediaType(KopilkaError):
    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported media type"


class ContentTooLarge(KopilkaError):
    status = 413
    type_slug = "content-too-large"
    title = "Content too large"


def invalid(exc: ValidationError) -> InvalidInput:
    """A body's validation errors as one 422 naming each field, as the API names them."""
    errors = [
        {
            "field": ".".join(str(p) for p in error_location(e)) or "body",
            "message": e["msg"],
            "code": e["type"],
        }
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return InvalidInput(detail, errors=errors)


async def _in_transaction(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]
) -> T:
    """``work`` in one committed transaction; run again if a concurrent request wrote the
    same row first (its answer is then found), as the API's transactions do."""
    for tries in range(CONFLICT_RETRIES):
        try:
            return await run_in_transaction(engine, work)
        except IntegrityError:
            if tries == CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


# --- answers -----------------------------------------------------------------------------


def summary_json(
    program: ProgramContext, found: WidgetSummary, fmt: Formats, now: datetime
) -> dict[str, Any]:
    return {
        "language": fmt.language,
        "currency": found.balance.currency,
        "balance": found.balance.model_dump(mode="json"),
        "points_left": found.points_left,
        "expires_at": found.expires_at,
        "tier": tier_json(found.tier, program.settings.money_currency, fmt, now),
        "rewards": [
            {
                "key": reward.key,
                "name": reward.name,
                "price": reward.member_price if reward.member_price is not None else reward.price,
                "currency": reward.currency,
            }
            for reward in found.rewards
        ],
    }


def tier_json(
    found: MemberTierOut | None, money_currency: str, fmt: Formats, now: datetime
) -> dict[str, Any] | None:
    """The tier and the way to the next one, with the card's sentence of what is left."""
    if found is None:
        return None
    view = tier_view(found, money_currency, now, fmt)
    upcoming = found.next
    return {
        "id": found.tier.id,
        "name": found.tier.name,
        "next": None
        if upcoming is None
        else {
            "id": upcoming.tier.id,
            "name": upcoming.tier.name,
            "share": round(view.share, 4),
            "sentence": view.sentence,
            "by": upcoming.by.isoformat() if upcoming.by else None,
            "requirements": [r.model_dump(mode="json") for r in upcoming.requirements],
        },
    }


def _json(body: Any, status: int, headers: dict[str, str]) -> Response:
    return FastJSONResponse(body, status_code=status, headers={**headers, **NO_STORE})


NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _problem(request: Request, exc: KopilkaError, cors: dict[str, str]) -> Response:
    headers = {**cors, **NO_STORE, **(CHALLENGE if exc.status == 401 else {})}
    return FastJSONResponse(
        exc.problem(request.url.path), status_code=exc.status, headers=headers, media_type=PROBLEM
    )
