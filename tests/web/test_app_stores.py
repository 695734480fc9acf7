"""The app's stores page on both databases: the nearest stores in order with their
distances, open now at frozen times (a day off, hours past midnight), a typed city, the
whole list by region, map links, and the page for visitors who are not signed in."""

import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body
from tests.web.conftest import Browser, app_as

MONDAY_NOON = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)  # Monday 12:30 in Moscow
SUNDAY_2AM = datetime(2026, 12, 12, 23, 0, tzinfo=UTC)  # Sunday 02:00 in Moscow
HERE = (55.7558, 37.6173)  # Red Square
WEEKDAYS = ["09:00-21:00"]

STORES: list[dict[str, Any]] = [
    {
        "code": "MSK-1",
        "name": "Tverskaya",
        "address": "Тверская ул., 1, Москва",
        "region": "moscow",
        "latitude": 55.765,
        "longitude": 37.605,
        "timezone": "Europe/Moscow",
        "hours": {d: WEEKDAYS for d in ("mon", "tue", "wed", "thu", "fri")},
    },
    {
        "code": "MSK-2",
        "name": "Arbat",
        "address": "Арбат, 10, Москва",
        "region": "moscow",
        "latitude": 55.752,
        "longitude": 37.593,
        "timezone": "Europe/Moscow",
        # Closed on Mondays; Saturday night runs into Sunday.
        "hours": {"tue": WEEKDAYS, "sat": ["22:00-04:00"]},
    },
    {
        "code": "SPB-1",
        "name": "Nevsky",
        "address": "Невский пр., 20, Санкт-Петербург",
        "region": "north-west",
        "latitude": 59.935,
        "longitude": 30.325,
        "timezone": "Europe/Moscow",
        "hours": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    },
    {
        "code": "MSK-OLD",
        "name": "Old Kitay-gorod",
        "address": "Китай-город, Москва",
        "region": "moscow",
        "latitude": 55.7559,
        "longitude": 37.6174,
        "status": "closed",
    },
    {"code": "POP-UP", "name": "Pop-up kiosk"},  # no place, no hours
]


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance on the mean-radius sphere, computed here independently."""
    (lat1, lon1), (lat2, lon2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def shown_distance(metres: int) -> str:
    """How the page writes a distance in English."""
    if metres < 1000:
        return f"{metres:,} m"
    if metres < 10_000:
        return f"{round(metres / 1000, 1):g} km"
    return f"{round(metres / 1000):,} km"


def cards(html: str) -> dict[str, str]:
    """Each store's card on the page, by the store's name."""
    found: dict[str, str] = {}
    for chunk in html.split('<article class="card store-card"')[1:]:
        name = re.search(r"<h[34] id=\"store-[^\"]+\">([^<]+)</h[34]>", chunk)
        assert name, chunk
        found[name.group(1)] = chunk.split("</article>")[0]
    return found


async def stores_made(api: Api) -> None:
    for body in STORES:
        made = await api.post("/v1/stores", body)
        assert made.status_code == 201, made.text


async def test_the_nearest_stores_in_order_with_their_distances(
    browser: Browser, api: Api, program: ProgramContext
) -> None:
    await stores_made(api)
    with clock.frozen(MONDAY_NOON):
        page = await browser.get(f"/app/{program.slug}/stores", lat=HERE[0], lon=HERE[1])
        near = await api.get("/v1/stores/nearest", lat=HERE[0], lon=HERE[1])
    assert page.status_code == 200, page.text
    shown = cards(page.text)
    # Nearest first; a store closed for good and a store without a place are not shown.
    assert list(shown) == ["Tverskaya", "Arbat", "Nevsky"]
    by_distance = sorted(
        STORES[:3], key=lambda s: haversine_m(HERE, (s["latitude"], s["longitude"]))
    )
    assert list(shown) == [s["name"] for s in by_distance]
    api_distances = {s["code"]: s["distance_m"] for s in near.json()["items"]}
    for store in STORES[:3]:
        metres = round(haversine_m(HERE, (store["latitude"], store["longitude"])))
        assert api_distances[store["code"]] == metres  # the same service as the API
        assert shown_distance(metres) in shown[store["name"]], (store["name"], metres)
    assert "MSK-OLD" in api_distances  # the API lists it (closed); the app does not
    assert "Nearest to you" in page.text


async def test_open_now_follows_the_hours_in_the_stores_time_zone(
    browser: Browser, api: Api, program: ProgramContext
) -> None:
    await stores_made(api)
    with clock.frozen(MONDAY_NOON):
        monday = cards((await browser.get(f"/app/{program.slug}/stores")).text)
    assert "Open now" in monday["Tverskaya"]
    assert "Closed now" in monday["Arbat"]  # closed on Mondays
    assert "Open now" in monday["Nevsky"]
    assert "Hours not known" in monday["Pop-up kiosk"]
    # Today is marked in the week's table.
    assert re.search(r'<tr class="today">\s*<th scope="row">Mon', monday["Tverskaya"])
    with clock.frozen(SUNDAY_2AM):
        sunday = cards((await browser.get(f"/app/{program.slug}/stores")).text)
    assert "Open now" in sunday["Arbat"]  # Saturday's 22:00-04:00 runs into Sunday
    assert "Closed now" in sunday["Tverskaya"]  # no hours on Sundays
    assert re.search(r'<tr class="today">\s*<th scope="row">Sun', sunday["Arbat"])
    assert "22:00-04:00" in sunday["Arbat"]


async def test_a_typed_city_or_street_finds_its_stores(
    browser: Browser, api: Api, program: ProgramContext
) -> None:
    await stores_made(api)
    moscow = await browser.get(f"/app/{program.slug}/stores", q="москва")
    assert list(cards(moscow.text)) == ["Arbat", "Tverskaya"]  # by place, then name
    assert "Distance" not in moscow.text
    street = await browser.get(f"/app/{program.slug}/stores", q="ТВЕРСКАЯ москва")
    assert list(cards(street.text)) == ["Tverskaya"]
    spb = await browser.get(f"/app/{program.slug}/stores", q="Петербург")
    assert list(cards(spb.text)) == ["Nevsky"]
    nothing = await browser.get(f"/app/{program.slug}/stores", q="Владивосток")
    assert not cards(nothing.text) and "No store matches these words" in nothing.text
    gone = await browser.get(f"/app/{program.slug}/stores", q="Китай-город")
    assert not cards(gone.text)  # closed for good


async def test_without_a_position_every_trading_store_by_region(
    browser: Browser, api: Api, program: ProgramContext
) -> None:
    await stores_made(api)
    page = await browser.get(f"/app/{program.slug}/stores")
    assert page.status_code == 200
    text = page.text
    headings = re.findall(r'<h3 id="region-\d+" class="region-heading">([^<]+)</h3>', text)
    assert headings == ["moscow", "north-west", "Other places"]
    assert list(cards(text)) == ["Arbat", "Tverskaya", "Nevsky", "Pop-up kiosk"]
    assert "Old Kitay-gorod" not in text


async def test_map_links_open_the_phones_map_and_nothing_is_loaded_from_outside(
    browser: Browser, api: Api, program: ProgramContext
) -> None:
    await stores_made(api)
    page = await browser.get(f"/app/{program.slug}/stores")
    card = cards(page.text)["Tverskaya"]
    assert 'href="geo:55.765,37.605?q=55.765,37.605(Tverskaya)"' in card
    assert (
        'href="https://www.openstreetmap.org/?mlat=55.765&amp;mlon=37.605#map=17/55.765/37.605"'
        in card
    )
    assert "geo:" not in cards(page.text)["Pop-up kiosk"]
    # Links only: no image, frame or script from another site.
    assert not re.search(r'(src|srcset)="https?://', page.text)
    assert "data-locate" in page.text and 'id="f-lat"' in page.text and 'id="f-lon"' in page.text
    assert "geolocation=(self)" in page.headers["permissions-policy"]


async def test_visitors_see_the_stores_members_get_the_tab_bar(
    browsers: Any, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    await stores_made(api)
    visitor = await browsers().get(f"/app/{program.slug}/stores")
    assert visitor.status_code == 200 and "Tverskaya" in visitor.text
    assert (
        'class="tabbar"' not in visitor.text and "Write to us about this store" not in visitor.text
    )
    body = member_body()
    member_id = uuid.UUID((await api.post("/v1/members", body)).json()["id"])
    signed_in = await app_as(browsers(), engine, program, member_id)
    page = await signed_in.get(f"/app/{program.slug}/stores")
    assert 'class="tabbar"' in page.text
    assert f"/app/{program.slug}/support/new?store=MSK-1" in page.text
    assert (await browsers().get("/app/no-such-program/stores")).status_code == 404


async def test_a_position_that_is_not_one_is_said_so(
    browser: Browser, api: Api, program: ProgramContext
) -> None:
    await stores_made(api)
    for lat, lon in (("abc", "37.6"), ("91", "37.6"), ("55.7", ""), ("nan", "1")):
        page = await browser.get(f"/app/{program.slug}/stores", lat=lat, lon=lon)
        assert page.status_code == 422, (lat, lon)
        assert "Your position could not be read" in page.text


async def test_another_programs_stores_are_not_shown(
    browser: Browser, engine: AsyncEngine, api: Api, http: Any, program: ProgramContext
) -> None:
    await stores_made(api)
    other = await make_program(engine)
    other_api = Api(http, await make_key(engine, other, "admin"))
    made = await other_api.post("/v1/stores", {"code": "X-1", "name": "Elsewhere"})
    assert made.status_code == 201
    page = await browser.get(f"/app/{program.slug}/stores")
    assert "Elsewhere" not in page.text
    near = await browser.get(f"/app/{other.slug}/stores", q="Tverskaya")
    assert not cards(near.text)


async def test_the_page_is_in_russian_with_russian_distances(
    browser: Browser, api: Api, program: ProgramContext
) -> None:
    await stores_made(api)
    with clock.frozen(MONDAY_NOON):
        page = await browser.client.get(
            f"/app/{program.slug}/stores",
            params={"lat": HERE[0], "lon": HERE[1]},
            headers={"accept-language": "ru"},
        )
    tverskaya = cards(page.text)["Tverskaya"]
    metres = round(haversine_m(HERE, (55.765, 37.605)))
    assert f"{round(metres / 1000, 1):g}".replace(".", ",") + " км" in tverskaya
    assert "Открыто сейчас" in tverskaya and "пн" in tverskaya
