"""The member's invitations in the app (their tier's events, accepted or declined with the
app's CSRF-protected forms, a full event refused with a reason) and the offers page showing
every kind of personal offer they can still use, and none they cannot."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body
from tests.web.conftest import Browser, app_as

T = datetime(2031, 5, 4, 10, 0, tzinfo=UTC)
LADDER: dict[str, Any] = {
    "levels": [
        {"id": "base", "name": "Base"},
        {
            "id": "gold",
            "name": "Gold",
            "qualify": {"spend": 500_000},
            "benefits": {"events": ["gala"]},
        },
    ],
    "window": {"kind": "rolling", "months": 12},
}


async def club(engine: AsyncEngine, client: httpx.AsyncClient) -> tuple[Api, ProgramContext]:
    program = await make_program(engine, tiers=LADDER)
    return Api(client, await make_key(engine, program, "admin")), program


async def enrol(api: Api, tier: str | None = None) -> tuple[UUID, str]:
    body = member_body()
    made = await api.post("/v1/members", body)
    assert made.status_code == 201, made.text
    member_id = made.json()["id"]
    if tier is not None:
        manual = await api.post(
            f"/v1/members/{member_id}/tier/manual", {"tier": tier, "reason": "test"}
        )
        assert manual.status_code == 200, manual.text
    return UUID(member_id), body["external_id"]


async def new_event(api: Api, key: str, name: str, **fields: Any) -> None:
    starts = T + timedelta(days=7)
    body = {
        "key": key,
        "name": name,
        "place": "Tverskaya 1, Moscow",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=3)).isoformat(),
        **fields,
    }
    made = await api.post("/v1/program-events", body)
    assert made.status_code == 201, made.text


def card_of(page: str, key: str) -> str:
    """The part of the invitations page about one event ('' if it is not listed)."""
    found = re.search(rf'<li class="card event" id="event-{key}">(.*?)</li>', page, re.S)
    return found.group(1) if found else ""


async def follow(browser: Browser, answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    page = await browser.get(answer.headers["location"])
    assert page.status_code == 200, page.text
    return page.text


async def test_a_member_accepts_and_declines_their_tiers_invitations(
    engine: AsyncEngine, http: httpx.AsyncClient, browsers: Any
) -> None:
    api, program = await club(engine, http)
    slug = program.slug
    with clock.frozen(T):
        await new_event(api, "gala", "Winter gala", capacity=1, description="Black tie.")
        await new_event(api, "open-day", "Open day", tiers=["base", "gold"])
        gold, _ = await enrol(api, "gold")
        rival, _ = await enrol(api, "gold")
        plain, _ = await enrol(api)
        ann = await app_as(browsers(), engine, program, gold)
        page = await ann.get(f"/app/{slug}/events")
        assert page.status_code == 200, page.text
        gala = card_of(page.text, "gala")
        assert "Winter gala" in gala and "Tverskaya 1, Moscow" in gala and "Black tie." in gala
        assert "Places left" in gala and "I will come" in gala and 'name="csrf_token"' in gala
        assert card_of(page.text, "open-day")
        # Offers link the invitations, and so does the app's menu.
        offers = await ann.get(f"/app/{slug}/offers")
        assert f'href="/app/{slug}/events"' in offers.text

        # A form without this browser's token is refused and changes nothing.
        forged = await ann.client.post(f"/app/{slug}/events/gala/accept", data={})
        assert forged.status_code == 403
        assert (await api.get("/v1/program-events/gala")).json()["accepted"] == 0

        shown = await follow(ann, await ann.post(f"/app/{slug}/events/gala/accept"))
        assert "See you there: you are on the guest list." in shown
        gala = card_of(shown, "gala")
        assert "You are coming" in gala and "I will not come" in gala and "I will come<" not in gala
        # Sent again (a double tap): still one place taken.
        again = await follow(ann, await ann.post(f"/app/{slug}/events/gala/accept"))
        assert "You are coming" in card_of(again, "gala")
        guests = (await api.get("/v1/program-events/gala/guests")).json()
        assert guests["accepted"] == 1 and guests["items"][0]["member_id"] == str(gold)

        # The last place is taken: another gold member is told so, and cannot take it.
        bob = await app_as(browsers(), engine, program, rival)
        full = card_of((await bob.get(f"/app/{slug}/events")).text, "gala")
        assert "Sorry, there are no places left." in full and "I will come" not in full
        refused = await bob.post(f"/app/{slug}/events/gala/accept")
        assert refused.status_code == 409
        assert "Sorry, there are no places left." in refused.text

        # A member of a tier not invited does not see the gala, nor can take it.
        carl = await app_as(browsers(), engine, program, plain)
        theirs = (await carl.get(f"/app/{slug}/events")).text
        assert not card_of(theirs, "gala") and card_of(theirs, "open-day")
        assert (await carl.post(f"/app/{slug}/events/gala/accept")).status_code == 403

        # Ann gives her place back: Bob may take it now.
        gone = await follow(ann, await ann.post(f"/app/{slug}/events/gala/decline"))
        assert "Thank you for letting us know." in gone
        assert "You declined" in card_of(gone, "gala") and "I will come" in card_of(gone, "gala")
        taken = await follow(bob, await bob.post(f"/app/{slug}/events/gala/accept"))
        assert "You are coming" in card_of(taken, "gala")

        # In Russian.
        bob.client.headers["accept-language"] = "ru"
        russian = (await bob.get(f"/app/{slug}/events")).text
        assert "Приглашения" in russian and "Вы идёте" in card_of(russian, "gala")
    # A visitor is sent to sign in.
    visitor = await browsers().get(f"/app/{slug}/events")
    assert visitor.status_code == 303 and "/sign-in" in visitor.headers["location"]


async def test_the_offers_page_shows_each_kind_of_offer_and_nothing_used_or_expired(
    engine: AsyncEngine, http: httpx.AsyncClient, browsers: Any
) -> None:
    api, program = await club(engine, http)
    slug = program.slug
    with clock.frozen(T):
        mug = {"key": "club-mug", "name": "Club mug", "kind": "physical", "price": 400}
        assert (await api.post("/v1/rewards", mug)).status_code == 201
        anna, anna_ext = await enrol(api)
        boris, _ = await enrol(api)
        await grant(api, anna, "old-sample", "free_sample", {"sku": "CH-1", "name": "Old cheese"})
        await grant(
            api,
            anna,
            "weekend",
            "boost",
            {"factor_percent": 150},
            title="Weekend boost",
            expires_at=(T + timedelta(days=1)).isoformat(),
        )
    with clock.frozen(T + timedelta(hours=1)):
        bought = purchase_body(anna_ext, 10_000, occurred_at=clock.now().isoformat())
        spent = await api.post("/v1/purchases", bought)
        assert spent.status_code == 201, spent.text
        # The purchase used the sample (and the boost, which is used up with it).
        assert {b["kind"] for b in spent.json()["applied_benefits"]} >= {"free_sample"}
    now = T + timedelta(days=2)
    with clock.frozen(now):
        until = (now + timedelta(days=7)).isoformat()
        await grant(
            api,
            anna,
            "triple",
            "boost",
            {"factor_percent": 300},
            title="Triple points week",
            expires_at=until,
        )
        await grant(api, anna, "bites", "free_sample", {"sku": "CH-2", "name": "Cheese bites"})
        await grant(api, anna, "ship", "free_delivery", {}, title="Free shipping")
        await grant(api, anna, "mug-150", "reward", {"reward": "club-mug", "price": 150})
        annas = await app_as(browsers(), engine, program, anna)
        page = await annas.get(f"/app/{slug}/offers")
        boriss = await app_as(browsers(), engine, program, boris)
        theirs = (await boriss.get(f"/app/{slug}/offers")).text
        annas.client.headers["accept-language"] = "ru"
        russian = (await annas.get(f"/app/{slug}/offers")).text
    assert page.status_code == 200, page.text
    text = page.text
    # A boost: its factor, its title and until when.
    assert "×3 points on your next purchase" in text and "Triple points week" in text
    assert text.count("Until ") == 1 and "No end date" in text
    # A free sample: what, and where to get it.
    assert "A free sample: Cheese bites" in text
    assert "At the till on your next visit: show your card and it is yours." in text
    # Free delivery, titled.
    assert "Free delivery of your next order" in text and "Free shipping" in text
    # A personal price: the reward, the member's price and the usual one.
    assert "A personal price: Club mug" in text
    assert "Your price: 150 points" in text and "instead of 400 points" in text
    assert f'href="/app/{slug}/rewards/club-mug"' in text
    # Nothing used or expired is offered.
    assert "Old cheese" not in text and "Weekend boost" not in text and "×1.5" not in text
    # Boris has none of Anna's offers.
    assert "Cheese bites" not in theirs and "No personal offers right now." in theirs
    assert "Бесплатный образец: Cheese bites" in russian and "Ваша цена" in russian


async def grant(
    api: Api, member: UUID, key: str, kind: str, payload: dict[str, Any], **extra: Any
) -> None:
    body = {"kind": kind, "payload": payload, "grant_key": key, **extra}
    made = await api.post(f"/v1/members/{member}/benefits", body)
    assert made.status_code == 201, made.text
