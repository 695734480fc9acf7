"""App pages: the program's stores, nearest first from where the member is, or found by a
typed city or address, or all of them by region; each with its distance, opening hours,
whether it is open now, and links that open it in the phone's map app.

Stores are public information (an address, hours, a phone), as on any shop's website: the
page works signed in or not, so a link to it can be shared and a visitor can find a shop
before joining. A signed-in member gets the app's tab bar; the data is the same.
"""

import math
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from babel import dates
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import read_with_retry
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.stores.hours import DAY_KEYS
from kopilka.stores.schemas import NearStore, Store
from kopilka.stores.service import store_service
from kopilka.web.app.access import MemberCaller, optional_member
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, render

router = APIRouter(prefix="/app", include_in_schema=False)

NEAREST = 20  # stores shown nearest first
FOUND = 50  # stores shown for typed words
LISTED = 100  # stores a page of the whole list shows
MAX_WORDS_LENGTH = 100


@dataclass(frozen=True, slots=True)
class DayHours:
    label: str
    intervals: list[str]  # empty: closed that day
    today: bool


@dataclass(frozen=True, slots=True)
class StoreCard:
    """A store as the page shows it."""

    store: Store
    distance_m: int | None
    week: list[DayHours] | None  # None: hours not known
    today_special: list[str] | None  # today's hours when a special date overrides the week
    geo_url: str | None
    map_url: str | None


@dataclass(frozen=True, slots=True)
class Position:
    latitude: float
    longitude: float


class PositionInvalid(Exception):
    """The position sent is not one (a field left out, not a number, out of range)."""


def _coordinate(raw: str | None, low: float, high: float) -> float:
    try:
        value = float((raw or "").strip().replace(",", "."))
    except ValueError:
        raise PositionInvalid from None
    if not math.isfinite(value) or not low <= value <= high:
        raise PositionInvalid
    return value


def position_of(lat: str | None, lon: str | None) -> Position | None:
    """The position of the query (both coordinates, or neither)."""
    if not (lat or "").strip() and not (lon or "").strip():
        return None
    return Position(_coordinate(lat, -90, 90), _coordinate(lon, -180, 180))


def _coordinate_text(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def map_links(store: Store) -> tuple[str | None, str | None]:
    """A ``geo:`` link (the phone's map app) and an OpenStreetMap link to the store; the page
    loads nothing from either."""
    if store.latitude is None or store.longitude is None:
        return None, None
    lat, lon = _coordinate_text(store.latitude), _coordinate_text(store.longitude)
    geo = f"geo:{lat},{lon}?q={lat},{lon}({quote(store.name, safe='')})"
    osm = "https://www.openstreetmap.org/?" + urlencode({"mlat": lat, "mlon": lon})
    return geo, f"{osm}#map=17/{lat}/{lon}"


def store_card(store: Store, now: datetime, day_names: list[str]) -> StoreCard:
    """The store with its week laid out from Monday, today (on its own clock) marked."""
    local_today = now.astimezone(ZoneInfo(store.timezone)).date()
    week = None
    if store.hours is not None:
        week = [
            DayHours(day_names[i], list(getattr(store.hours, key)), i == local_today.weekday())
            for i, key in enumerate(DAY_KEYS)
        ]
    special = store.special_hours.get(local_today.isoformat())
    geo, osm = map_links(store)
    distance = store.distance_m if isinstance(store, NearStore) else None
    return StoreCard(store, distance, week, special, geo, osm)


def by_region(cards: list[StoreCard]) -> list[tuple[str | None, list[StoreCard]]]:
    """Consecutive cards of one region together, in the order given (stores by place)."""
    groups: list[tuple[str | None, list[StoreCard]]] = []
    for card in cards:
        if groups and groups[-1][0] == card.store.region:
            groups[-1][1].append(card)
        else:
            groups.append((card.store.region, [card]))
    return groups


async def visiting_program(request: Request, slug: str) -> ProgramContext:
    """The program of this app; the member too when one is signed in (for the layout)."""
    member = await optional_member(request, slug)
    if member is not None:
        return member.program
    program: ProgramContext = request.state.program
    return program


@dataclass(frozen=True, slots=True)
class Found:
    stores: list[Store]
    next_after: str | None = None


async def _find(
    conn: AsyncConnection,
    program: ProgramContext,
    now: datetime,
    position: Position | None,
    words: str | None,
    after: str | None,
) -> Found:
    if position is not None:
        near = await store_service.nearest(
            conn,
            program,
            position.latitude,
            position.longitude,
            now,
            limit=NEAREST,
            trading_only=True,
        )
        return Found(list(near.items))
    if words is not None:
        return Found(await store_service.search(conn, program, words, now, limit=FOUND))
    page = await store_service.by_place(conn, program, now, limit=LISTED, after=after)
    return Found(list(page.items), page.next_cursor)


@router.get("/{slug}/stores")
async def stores_page(
    request: Request,
    slug: str,
    lat: str | None = None,
    lon: str | None = None,
    q: str | None = None,
    after: str | None = None,
) -> Response:
    """The stores nearest to a position (``lat``, ``lon``: the browser's, by the "Use my
    location" button), or those whose name, address or region hold the words ``q``, or all
    of them by region (paged by ``after``)."""
    program = await visiting_program(request, slug)
    language = language_of(request)
    words = (q or "").strip()[:MAX_WORDS_LENGTH] or None
    errors: dict[str, str] = {}
    try:
        position = position_of(lat, lon)
    except PositionInvalid:
        position = None
        errors["position"] = gettext(
            language, "Your position could not be read. Try again or type a city."
        )
    now = clock.now()
    engine: AsyncEngine = request.app.state.engine
    found = await read_with_retry(
        engine, lambda conn: _find(conn, program, now, position, words, after)
    )
    names = dates.get_day_names("abbreviated", locale=language)
    day_names = [str(names[i]) for i in range(7)]
    member: MemberCaller | None = getattr(request.state, "member", None)
    cards = [store_card(s, now, day_names) for s in found.stores]
    context = {
        "slug": slug,
        "program_name": program.name,
        "cards": cards,
        "groups": by_region(cards),
        "mode": "near" if position else ("words" if words else "all"),
        "q": words or "",
        "next_url": (
            f"/app/{slug}/stores?" + urlencode({"after": found.next_after})
            if found.next_after
            else None
        ),
        "errors": errors,
        "signed_in": member is not None,
    }
    status = 422 if errors else 200
    return render(
        request, "app/stores/index.html", context, status=status, zone=program.settings.timezone
    )
