"""The member's card: QR code and number, balance with pending and expiring points, the tier
and what is left to reach the next one; only the signed-in member's own; and what makes the
app installable (manifest, icons, service worker) and the front door."""

import struct
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext, program_service
from kopilka.web.app.card import grouped, qr_data_url
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import purchase_body
from tests.web.conftest import Browser, app_as

T0 = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)
LADDER = {
    "levels": [
        {"id": "silver", "name": "Silver"},
        {"id": "gold", "name": "Gold", "qualify": {"spend": 400_000}},
    ],
    "window": {"kind": "calendar_year"},
}


def plain(text: str) -> str:
    """Text with Babel's no-break spaces as spaces."""
    return text.replace("\xa0", " ").replace("\u202f", " ")


async def member(api: Api, **fields: Any) -> dict[str, Any]:
    answer = await api.post("/v1/members", fields)
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = answer.json()
    return found


def card_of(found: dict[str, Any]) -> str:
    return next(str(i["value"]) for i in found["identifiers"] if i["kind"] == "card")


async def buy(api: Api, external_id: str, roubles: int, days_ago: int) -> None:
    body = purchase_body(
        external_id, roubles * 100, occurred_at=(T0 - timedelta(days=days_ago)).isoformat()
    )
    answer = await api.post("/v1/purchases", body)
    assert answer.status_code in (200, 201), answer.text


async def api_for(engine: AsyncEngine, program: ProgramContext, http: httpx.AsyncClient) -> Api:
    return Api(http, await make_key(engine, program))


async def test_the_card_shows_its_qr_code_and_number(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    anna = await member(api, name="Anna Petrova", external_id="anna-card")
    await app_as(browser, engine, program, UUID(anna["id"]))
    page = await browser.get(f"/app/{program.slug}/")
    assert page.status_code == 200
    number = card_of(anna)
    assert grouped(number) in page.text and len(grouped(number).split()) == len(number) // 4
    assert f'src="{qr_data_url(number)}"' in page.text.replace("&#39;", "'")
    assert "data:image/svg+xml" in page.text and f"QR code of card {grouped(number)}" in page.text
    assert "Anna Petrova" in page.text and "Add to Home screen" in page.text
    assert f'<link rel="manifest" href="/app/{program.slug}/manifest.webmanifest">' in page.text
    assert "<script>" not in page.text and " style=" not in page.text


async def test_the_balance_shows_pending_and_expiring_points_with_their_dates(
    browser: Browser, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program = await make_program(
        engine, pending_days=14, expiry={"policy": "days", "days": 45}, tiers=LADDER
    )
    api = await api_for(engine, program, http)
    with clock.frozen(T0):
        vera = await member(api, name="Vera", external_id=f"vera-{program.slug}")
        external = f"vera-{program.slug}"
        await buy(api, external, 1000, days_ago=20)  # available; expires T0 + 25 days
        await buy(api, external, 700, days_ago=14)  # available; expires T0 + 31 days
        await buy(api, external, 500, days_ago=2)  # pending until T0 + 12 days
        await buy(api, external, 300, days_ago=0)  # pending until T0 + 14 days
        balance = (await api.get(f"/v1/members/{vera['id']}/balance")).json()
        points = next(b for b in balance["balances"] if b["currency"] == "points")
        assert (points["available"], points["pending"]) == (1700, 800)
        await app_as(browser, engine, program, UUID(vera["id"]))
        page = plain((await browser.get(f"/app/{program.slug}/")).text)
    assert '<p class="balance-figure">1,700</p>' in page
    arriving = page[page.index("On their way") : page.index("Expiring soon")]
    assert 'June 27, 2031</td><td class="num">+500' in arriving
    assert 'June 29, 2031</td><td class="num">+300' in arriving
    expiring = page[page.index("Expiring soon") : page.index("Tier")]
    assert 'July 10, 2031</td><td class="num">1,000' in expiring
    assert "July 16" not in expiring and "700" not in expiring  # beyond 30 days
    # The tier: 2,500 roubles spent this year of the 4,000 Gold asks for.
    assert "Tier: Silver" in page
    assert "Spend RUB1,500 more by 31 December to reach Gold" in page
    assert 'class="progress"' in page and "62% of the way to Gold" in page
    assert '<td>Spent</td><td class="num">RUB2,500</td><td class="num">RUB4,000</td>' in page


async def test_the_tier_sentence_speaks_russian(
    browser: Browser, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program = await make_program(engine, tiers=LADDER)
    api = await api_for(engine, program, http)
    with clock.frozen(T0):
        ivan = await member(api, name="Ivan", external_id=f"ivan-{program.slug}")
        await buy(api, f"ivan-{program.slug}", 1700, days_ago=1)
        await app_as(browser, engine, program, UUID(ivan["id"]))
        page = await browser.client.get(f"/app/{program.slug}/", headers={"accept-language": "ru"})
    text = plain(page.text)
    assert "Потратьте ещё 2 300 ₽ до 31 декабря, чтобы получить уровень «Gold»" in text
    assert "Уровень: Silver" in text


async def test_the_highest_tier_has_no_next_step(
    browser: Browser, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program = await make_program(engine, tiers=LADDER)
    api = await api_for(engine, program, http)
    with clock.frozen(T0):
        rich = await member(api, name="Rich", external_id=f"rich-{program.slug}")
        await buy(api, f"rich-{program.slug}", 5000, days_ago=1)
        await app_as(browser, engine, program, UUID(rich["id"]))
        page = (await browser.get(f"/app/{program.slug}/")).text
    assert "Tier: Gold" in page and "You have the highest tier." in page
    assert 'class="progress"' not in page


async def test_a_member_sees_only_their_own_card(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    anna = await member(api, name="Anna Petrova", external_id=f"a-{program.slug}")
    boris = await member(api, name="Boris Orlov", external_id=f"b-{program.slug}")
    await api.post("/v1/purchases", purchase_body(f"b-{program.slug}", 777_700))
    first, second = browsers(), browsers()
    await app_as(first, engine, program, UUID(anna["id"]))
    await app_as(second, engine, program, UUID(boris["id"]))
    annas = (await first.get(f"/app/{program.slug}/")).text
    boris_page = (await second.get(f"/app/{program.slug}/")).text
    assert grouped(card_of(anna)) in annas and grouped(card_of(boris)) not in annas
    assert "Boris" not in annas and "7,777" not in annas
    assert grouped(card_of(boris)) in boris_page and "7,777" in boris_page
    # A page of the app without a session asks to sign in, and comes back after.
    stranger = browsers()
    away = await stranger.get(f"/app/{program.slug}/")
    assert away.status_code == 303
    assert (
        away.headers["location"] == f"/app/{program.slug}/sign-in?next=%2Fapp%2F{program.slug}%2F"
    )


async def test_the_manifest_makes_the_app_installable(
    browser: Browser, program: ProgramContext
) -> None:
    answer = await browser.get(f"/app/{program.slug}/manifest.webmanifest")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/manifest+json")
    manifest = answer.json()
    scope = f"/app/{program.slug}/"
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == (
        scope,
        scope,
        "standalone",
    )
    assert manifest["name"] == program.name and len(manifest["short_name"]) <= 12
    assert manifest["theme_color"].startswith("#") and manifest["background_color"]
    icons = {i["sizes"]: i for i in manifest["icons"]}
    assert icons["192x192"]["src"] == f"{scope}icon-192.png"
    assert icons["512x512"]["type"] == "image/png"
    assert icons["any"]["type"] == "image/svg+xml"
    svg = await browser.get(icons["any"]["src"])
    assert svg.status_code == 200 and "<svg" in svg.text


def png_size(data: bytes) -> tuple[int, int]:
    """The size of a PNG, after checking its signature, chunks and their checksums."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, kinds, size = 8, [], (0, 0)
    pixels = b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        kinds.append(kind)
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 6)
            size = (width, height)
        elif kind == b"IDAT":
            pixels += body
        at += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert len(zlib.decompress(pixels)) == size[1] * (size[0] * 4 + 1)
    return size


async def test_the_icons_are_pngs_of_their_size(browser: Browser, program: ProgramContext) -> None:
    for size in (192, 512):
        answer = await browser.get(f"/app/{program.slug}/icon-{size}.png")
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        assert png_size(answer.content) == (size, size)
    assert (await browser.get(f"/app/{program.slug}/icon-64.png")).status_code == 404
    assert (await browser.get("/app/no-such-program/icon-192.png")).status_code == 404


async def test_the_service_worker_covers_the_app_and_keeps_only_the_card(
    browser: Browser, program: ProgramContext
) -> None:
    scope = f"/app/{program.slug}/"
    answer = await browser.get(f"{scope}sw.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["service-worker-allowed"] == scope
    assert f'var SCOPE = "{scope}";' in answer.text and "__KOPILKA_SCOPE__" not in answer.text
    assert "caches.delete" in answer.text and "sign-out" in answer.text
    # The page registers it from a file (no inline script): kopilka.js reads this tag.
    page = await browser.get(f"{scope}sign-in")
    assert f'content="{scope}sw.js" data-scope="{scope}"' in page.text


async def test_the_front_door_leads_to_the_program_or_lists_them(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, monkeypatch: Any
) -> None:
    """The test database holds many programs: the server's list of them is stood in for."""

    async def only_one(conn: Any) -> list[UUID]:
        return [program.id]

    monkeypatch.setattr(program_service, "ids", only_one)
    for path in ("/app", "/app/"):
        answer = await browser.get(path)
        assert answer.status_code == 307 and answer.headers["location"] == f"/app/{program.slug}/"
    other = await make_program(engine)

    async def two(conn: Any) -> list[UUID]:
        return [program.id, other.id]

    monkeypatch.setattr(program_service, "ids", two)
    listed = await browser.get("/app")
    assert listed.status_code == 200 and "Loyalty programs" in listed.text
    assert (
        f'href="/app/{program.slug}/"' in listed.text
        and f'href="/app/{other.slug}/"' in listed.text
    )
