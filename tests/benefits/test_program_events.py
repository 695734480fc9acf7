"""Program events over the API: staff define them (create, list, get, change, cancel, the
guest list), members are invited by their tier and accept or decline (idempotently), bad
input is refused naming the field, another program's event is not found, and a capacity
holds under concurrent acceptances on PostgreSQL."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.app import create_app
from kopilka.benefits import event_domain, event_service
from kopilka.benefits.event_domain import EventTerms, Refusal
from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.models import OutboxEvent
from kopilka.models.base import table
from kopilka.programs.ladder import TierLadder
from tests.benefits.test_till import field_of
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, unique

T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STARTS = T + timedelta(days=10)
outbox_t = table(OutboxEvent)

# Gold's ladder benefits invite it to the gala, whatever the gala's own list says.
LADDER: dict[str, Any] = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "silver", "name": "Silver", "qualify": {"spend": 100_000}},
        {
            "id": "gold",
            "name": "Gold",
            "qualify": {"spend": 500_000},
            "benefits": {"events": ["gala"]},
        },
    ],
    "window": {"kind": "rolling", "months": 12},
}


async def club(engine: AsyncEngine, client: httpx.AsyncClient) -> Api:
    program = await make_program(engine, tiers=LADDER)
    return Api(client, await make_key(engine, program, "admin"))


async def member(api: Api, tier: str | None = None) -> str:
    response = await api.post("/v1/members", member_body())
    assert response.status_code == 201, response.text
    member_id: str = response.json()["id"]
    if tier is not None:
        manual = {"tier": tier, "reason": "test"}
        response = await api.post(f"/v1/members/{member_id}/tier/manual", manual)
        assert response.status_code == 200, response.text
    return member_id


def event_body(key: str | None = None, starts: datetime = STARTS, **extra: Any) -> dict[str, Any]:
    """An event of three hours from ``starts``; ``extra`` overrides any field."""
    return {
        "key": key or unique("ev"),
        "name": "Spring tasting",
        "description": "Wines of the season with the sommelier.",
        "place": "Tverskaya 1",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=3)).isoformat(),
        **extra,
    }


async def create(api: Api, **extra: Any) -> dict[str, Any]:
    response = await api.post("/v1/program-events", event_body(**extra))
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def invitations(api: Api, member_id: str) -> dict[str, dict[str, Any]]:
    response = await api.get(f"/v1/members/{member_id}/events")
    assert response.status_code == 200, response.text
    return {item["key"]: item for item in response.json()["items"]}


async def answer(api: Api, member_id: str, key: str, what: str) -> httpx.Response:
    return await api.post(f"/v1/members/{member_id}/events/{key}/{what}")


async def topics(engine: AsyncEngine, program_event_id: str) -> list[str]:
    """The outbox's events about one program event, in the order they were written."""
    async with reading(engine) as conn:
        rows = (
            await conn.execute(
                select(outbox_t.c.topic, outbox_t.c.payload)
                .where(outbox_t.c.topic.like("program_event.%"))
                .order_by(outbox_t.c.id)
            )
        ).all()
    return [r.topic for r in rows if (r.payload or {}).get("program_event_id") == program_event_id]


# --- the pure rules ----------------------------------------------------------------------------


def test_who_is_invited_and_why_an_answer_is_refused() -> None:
    ladder = TierLadder.model_validate(LADDER)
    gala = EventTerms("gala", STARTS, None, 2, ["silver"], "scheduled")
    assert event_domain.invited_tiers(ladder, "gala", ["silver"]) == ["silver", "gold"]
    assert event_domain.invited_tiers(None, "gala", ["silver"]) == []
    assert [event_domain.is_invited(gala, ladder, t) for t in ("base", "silver", "gold")] == [
        False,
        True,
        True,
    ]
    assert not event_domain.is_invited(replace(gala, status="cancelled"), ladder, "gold")

    def refusal(terms: EventTerms, invited: bool, taken: int, at: datetime) -> Any:
        return event_domain.acceptance_refusal(
            terms, invited=invited, taken=taken, answer=None, now=at
        )

    assert refusal(gala, True, 1, T) is None
    assert refusal(gala, True, 2, T) is Refusal.FULL
    assert refusal(gala, True, 0, STARTS) is Refusal.STARTED
    assert refusal(gala, False, 0, T) is Refusal.NOT_INVITED
    assert refusal(replace(gala, status="cancelled"), True, 0, T) is Refusal.CANCELLED
    # Whoever holds a place may accept again, full or started.
    assert (
        event_domain.acceptance_refusal(gala, invited=False, taken=5, answer="accepted", now=STARTS)
        is None
    )
    # A member who accepted may decline though no longer invited; nobody once it starts.
    assert event_domain.declining_refusal(gala, invited=False, answer="accepted", now=T) is None
    assert (
        event_domain.declining_refusal(gala, invited=False, answer=None, now=T)
        is Refusal.NOT_INVITED
    )
    assert (
        event_domain.declining_refusal(gala, invited=True, answer="accepted", now=STARTS)
        is Refusal.STARTED
    )
    assert event_domain.places_left(2, 3) == 0 and event_domain.places_left(None, 3) is None


# --- staff -----------------------------------------------------------------------------------


async def test_staff_create_list_get_change_and_cancel_an_event(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    api = await club(engine, http)
    with clock.frozen(T):
        tasting = await create(api, tiers=["silver"], capacity=30)
        assert tasting["status"] == "scheduled" and tasting["accepted"] == 0
        assert tasting["places_left"] == 30 and tasting["invited_tiers"] == ["silver"]
        assert tasting["starts_at"] == "2026-03-12T12:00:00Z"
        gala = await create(api, key="gala", starts=STARTS + timedelta(days=1))
        # The gala lists no tier, yet Gold's ladder benefits invite it.
        assert gala["tiers"] == [] and gala["invited_tiers"] == ["gold"]
        assert gala["capacity"] is None and gala["places_left"] is None
        again = await api.post("/v1/program-events", event_body(key="gala"))
        assert again.status_code == 409 and field_of(again) == "key"
        got = await api.get(f"/v1/program-events/{tasting['key']}")
        assert got.status_code == 200 and got.json() == tasting
        first = await api.get("/v1/program-events", limit=1)
        assert [e["key"] for e in first.json()["items"]] == [tasting["key"]]
        second = await api.get("/v1/program-events", limit=1, cursor=first.json()["next_cursor"])
        assert [e["key"] for e in second.json()["items"]] == ["gala"]
        changed = await api.patch(
            f"/v1/program-events/{tasting['key']}",
            {"name": "Big tasting", "place": None, "capacity": 40, "tiers": ["silver", "gold"]},
        )
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert (body["name"], body["place"], body["capacity"]) == ("Big tasting", None, 40)
        assert body["invited_tiers"] == ["silver", "gold"] and body["updated_at"] is not None
        cancelled = await api.post(f"/v1/program-events/{tasting['key']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        twice = await api.post(f"/v1/program-events/{tasting['key']}/cancel")
        assert twice.status_code == 200 and twice.json() == cancelled.json()
        late = await api.patch(f"/v1/program-events/{tasting['key']}", {"name": "Back on"})
        assert late.status_code == 409 and field_of(late) == "status"
        listed = await api.get("/v1/program-events", status="cancelled")
        assert [e["key"] for e in listed.json()["items"]] == [tasting["key"]]
    with clock.frozen(STARTS + timedelta(hours=4)):
        # The tasting is over; the gala (a day later) is still to come.
        upcoming = await api.get("/v1/program-events", upcoming="true")
        assert [e["key"] for e in upcoming.json()["items"]] == ["gala"]
    assert await topics(engine, tasting["id"]) == ["program_event.cancelled"]


async def test_bad_input_is_refused_naming_the_field(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    api = await club(engine, http)
    with clock.frozen(T):
        cases: list[tuple[dict[str, Any], str]] = [
            (event_body(ends_at=STARTS.isoformat()), "ends_at"),
            (event_body(ends_at=(STARTS - timedelta(hours=1)).isoformat()), "ends_at"),
            (event_body(tiers=["silver", "platinum"]), "tiers.1"),
            (event_body(tiers=["gold", "gold"]), "tiers.1"),
            (event_body(starts_at=(T - timedelta(days=1)).isoformat()), "starts_at"),
            (event_body(starts_at=1775000000), "starts_at"),
            (event_body(capacity=0), "capacity"),
            (event_body(capacity="5"), "capacity"),
            (event_body(capacity=True), "capacity"),
            (event_body(key="has space"), "key"),
            (event_body(name=""), "name"),
            (event_body(colour="red"), "colour"),
        ]
        for body, field in cases:
            refused = await api.post("/v1/program-events", body)
            assert refused.status_code == 422, (body, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert field_of(refused) == field, (body, refused.json())
        assert (await api.get("/v1/program-events")).json()["items"] == []
        made = await create(api, tiers=["silver"], capacity=2)
        key = made["key"]
        for patch, field in [
            ({"name": None}, "name"),
            ({"starts_at": None}, "starts_at"),
            ({"ends_at": (STARTS - timedelta(minutes=1)).isoformat()}, "ends_at"),
            ({"tiers": ["nope"]}, "tiers.0"),
            ({"starts_at": (T - timedelta(hours=1)).isoformat()}, "starts_at"),
        ]:
            refused = await api.patch(f"/v1/program-events/{key}", patch)
            assert refused.status_code == 422, (patch, refused.text)
            assert field_of(refused) == field, (patch, refused.json())
        guest = await member(api, "silver")
        assert (await answer(api, guest, key, "accept")).status_code == 200
        other = await member(api, "silver")
        assert (await answer(api, other, key, "accept")).status_code == 200
        lower = await api.patch(f"/v1/program-events/{key}", {"capacity": 1})
        assert lower.status_code == 409 and field_of(lower) == "capacity"
        after = (await api.get(f"/v1/program-events/{key}")).json()
        assert after == made | {"accepted": 2, "places_left": 0}
        missing = await api.get("/v1/program-events/no-such-event")
        assert missing.status_code == 404 and field_of(missing) == "key"
        bad_cursor = await api.get("/v1/program-events", cursor="not-ours")
        assert bad_cursor.status_code == 422 and field_of(bad_cursor) == "cursor"


async def test_another_programs_event_is_not_found(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    ours = await club(engine, http)
    theirs = await club(engine, http)
    with clock.frozen(T):
        made = await create(theirs, key="shared-key", tiers=["base"])
        mine = await member(ours, "base")
        assert (await ours.get("/v1/program-events/shared-key")).status_code == 404
        assert (await ours.patch("/v1/program-events/shared-key", {"name": "x"})).status_code == 404
        assert (await ours.post("/v1/program-events/shared-key/cancel")).status_code == 404
        assert (await ours.get("/v1/program-events/shared-key/guests")).status_code == 404
        assert (await answer(ours, mine, "shared-key", "accept")).status_code == 404
        assert (await ours.get("/v1/program-events")).json()["items"] == []
        # Their member is not ours either.
        stranger = await member(theirs, "base")
        assert (await answer(ours, stranger, "shared-key", "accept")).status_code == 404
        assert (await ours.get(f"/v1/members/{stranger}/events")).status_code == 404
        # A program may use a key another program uses.
        assert (await create(ours, key="shared-key"))["id"] != made["id"]


# --- members' invitations --------------------------------------------------------------------


async def test_members_are_invited_by_their_tier_now(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    api = await club(engine, http)
    with clock.frozen(T):
        tasting = await create(api, tiers=["silver"], capacity=10)
        await create(api, key="gala")
        everyone = await create(
            api, tiers=["base", "silver", "gold"], starts=STARTS - timedelta(days=1)
        )
        base, silver, gold = (
            await member(api),
            await member(api, "silver"),
            await member(api, "gold"),
        )
        assert set(await invitations(api, base)) == {everyone["key"]}
        assert set(await invitations(api, silver)) == {tasting["key"], everyone["key"]}
        golds = await invitations(api, gold)
        assert set(golds) == {"gala", everyone["key"]}
        seen = golds["gala"]
        assert seen["invited"] and seen["answer"] is None and seen["can_accept"]
        assert seen["places_left"] is None and seen["accept_refusal"] is None
        listing = (await api.get(f"/v1/members/{gold}/events")).json()
        assert listing["tier"] == "gold"
        # Soonest first.
        assert [i["key"] for i in listing["items"]] == [everyone["key"], "gala"]
        # Silver accepts, then loses the tier: the event stays on their list as accepted.
        assert (await answer(api, silver, tasting["key"], "accept")).status_code == 200
        ended = await api.delete(f"/v1/members/{silver}/tier/manual")
        assert ended.status_code == 200, ended.text
        after = await invitations(api, silver)
        assert after[tasting["key"]]["answer"] == "accepted"
        assert not after[tasting["key"]]["invited"]
        # A cancelled event is no invitation; one the member accepted shows as cancelled.
        await api.post(f"/v1/program-events/{tasting['key']}/cancel")
        await api.post("/v1/program-events/gala/cancel")
        assert (await invitations(api, silver))[tasting["key"]]["status"] == "cancelled"
        assert "gala" not in await invitations(api, gold)
    with clock.frozen(STARTS + timedelta(hours=3)):
        # Over: on nobody's list.
        assert await invitations(api, gold) == {}
    missing = await api.get("/v1/members/00000000-0000-7000-8000-000000000001/events")
    assert missing.status_code == 404 and field_of(missing) == "member_id"


async def test_accept_and_decline_are_idempotent(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    api = await club(engine, http)
    with clock.frozen(T):
        made = await create(api, tiers=["silver"], capacity=3)
        key = made["key"]
        guest = await member(api, "silver")
    with clock.frozen(T + timedelta(hours=1)):
        first = await answer(api, guest, key, "accept")
        assert first.status_code == 200, first.text
        assert first.json()["answer"] == "accepted" and first.json()["places_left"] == 2
        assert not first.json()["can_accept"] and first.json()["can_decline"]
    with clock.frozen(T + timedelta(hours=2)):
        again = await answer(api, guest, key, "accept")
        # The same answer: nothing changed, not even when it was given.
        assert again.status_code == 200 and again.json() == first.json()
        guests = (await api.get(f"/v1/program-events/{key}/guests")).json()
        assert guests["accepted"] == 1
        assert guests["items"] == [{"member_id": guest, "accepted_at": "2026-03-02T13:00:00Z"}]
        no = await answer(api, guest, key, "decline")
        assert no.status_code == 200 and no.json()["answer"] == "declined"
        assert no.json()["places_left"] == 3 and no.json()["can_accept"]
        assert (await answer(api, guest, key, "decline")).json() == no.json()
        assert (await api.get(f"/v1/program-events/{key}/guests")).json()["accepted"] == 0
        # Changing one's mind back is an acceptance like the first.
        yes = await answer(api, guest, key, "accept")
        assert yes.status_code == 200 and yes.json()["answered_at"] == "2026-03-02T14:00:00Z"
        # Declining without accepting first is an answer too.
        other = await member(api, "silver")
        declined = await answer(api, other, key, "decline")
        assert declined.status_code == 200 and declined.json()["answer"] == "declined"
    assert await topics(engine, made["id"]) == [
        "program_event.accepted",
        "program_event.declined",
        "program_event.accepted",
        "program_event.declined",
    ]


async def test_answers_refused_when_not_invited_full_started_or_cancelled(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    api = await club(engine, http)
    with clock.frozen(T):
        small = await create(api, tiers=["silver"], capacity=1)
        key = small["key"]
        first, second = await member(api, "silver"), await member(api, "silver")
        outsider = await member(api, "base")
        for what in ("accept", "decline"):
            refused = await answer(api, outsider, key, what)
            assert refused.status_code == 403, refused.text
            assert refused.json()["reason"] == "not_invited" and field_of(refused) == "key"
        assert (await answer(api, first, key, "accept")).status_code == 200
        full = await answer(api, second, key, "accept")
        assert full.status_code == 409 and full.json()["reason"] == "full"
        listed = (await invitations(api, second))[key]
        assert listed["places_left"] == 0 and not listed["can_accept"]
        assert listed["accept_refusal"] == "full"
        # The member who holds the place may still accept again (it changes nothing).
        assert (await answer(api, first, key, "accept")).status_code == 200
        missing = await answer(api, first, "no-such-event", "accept")
        assert missing.status_code == 404 and field_of(missing) == "key"
        blocked = await member(api, "silver")
        await api.post(f"/v1/members/{blocked}/block", {"reason": "test"})
        assert (await answer(api, blocked, key, "accept")).status_code == 403
        # Their list says so rather than offering a button that is refused.
        shown = (await invitations(api, blocked))[key]
        assert not shown["can_accept"] and shown["accept_refusal"] == "member_blocked"
        later = await create(api, tiers=["silver"], starts=STARTS + timedelta(days=5))
        assert (await answer(api, first, later["key"], "accept")).status_code == 200
    with clock.frozen(STARTS):
        started = await answer(api, second, key, "accept")
        assert started.status_code == 409 and started.json()["reason"] == "started"
        leaving = await answer(api, first, key, "decline")
        assert leaving.status_code == 409 and leaving.json()["reason"] == "started"
        await api.post(f"/v1/program-events/{later['key']}/cancel")
        gone = await answer(api, second, later["key"], "accept")
        assert gone.status_code == 409 and gone.json()["reason"] == "cancelled"
        too_late = await answer(api, first, later["key"], "decline")
        assert too_late.status_code == 409 and too_late.json()["reason"] == "cancelled"
        # The member who had accepted it cannot accept a cancelled event again either.
        again = await answer(api, first, later["key"], "accept")
        assert again.status_code == 409 and again.json()["reason"] == "cancelled"
    assert (await api.get(f"/v1/program-events/{key}/guests")).json()["accepted"] == 1


async def test_the_guest_list_pages_in_the_order_members_accepted(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    api = await club(engine, http)
    with clock.frozen(T):
        key = (await create(api, tiers=["base"]))["key"]
        guests = [await member(api) for _ in range(3)]
    for minute, guest in enumerate(guests):
        with clock.frozen(T + timedelta(minutes=minute)):
            assert (await answer(api, guest, key, "accept")).status_code == 200
    first = (await api.get(f"/v1/program-events/{key}/guests", limit=2)).json()
    rest = (
        await api.get(f"/v1/program-events/{key}/guests", limit=2, cursor=first["next_cursor"])
    ).json()
    assert [g["member_id"] for g in first["items"] + rest["items"]] == guests
    assert rest["next_cursor"] is None and first["accepted"] == rest["accepted"] == 3


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_concurrent_acceptances_never_overbook(engine: AsyncEngine) -> None:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(engine=engine)),
        base_url="http://kopilka.test",
    )
    async with client:
        api = await club(engine, client)
        with clock.frozen(T):
            key = (await create(api, tiers=["silver"], capacity=5))["key"]
            members = [await member(api, "silver") for _ in range(16)]
            answers = await asyncio.gather(*(answer(api, m, key, "accept") for m in members))
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [200] * 5 + [409] * 11, [a.text for a in answers]
            assert {a.json()["reason"] for a in answers if a.status_code == 409} == {"full"}
            guests = (await api.get(f"/v1/program-events/{key}/guests")).json()
            winners = {m for a, m in zip(answers, members, strict=True) if a.status_code == 200}
            assert guests["accepted"] == 5 and {g["member_id"] for g in guests["items"]} == winners
            # A place given back goes to exactly one of many who want it.
            assert (await answer(api, sorted(winners)[0], key, "decline")).status_code == 200
            losers = [m for m in members if m not in winners]
            second = await asyncio.gather(*(answer(api, m, key, "accept") for m in losers))
            assert sorted(a.status_code for a in second) == [200] + [409] * 10
            event = (await api.get(f"/v1/program-events/{key}")).json()
            assert event["accepted"] == 5 and event["places_left"] == 0


async def test_an_accepted_event_stays_listed_however_many_come_sooner(
    engine: AsyncEngine, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The member's list is chosen from the first events not over (here 2 of them); the
    events they accepted are listed whatever their place among them."""
    monkeypatch.setattr(event_service, "NOT_OVER_READ", 2)
    api = await club(engine, http)
    with clock.frozen(T):
        anna = await member(api, "gold")
        late = await create(api, tiers=["gold"], starts=STARTS + timedelta(days=60))
        assert (await answer(api, anna, late["key"], "accept")).status_code == 200
        sooner = [await create(api, tiers=["gold"]) for _ in range(3)]
        listed = await invitations(api, anna)
    assert late["key"] in listed and listed[late["key"]]["answer"] == "accepted"
    assert len(listed) == 3  # the first two not over, and the accepted one
    assert sum(s["key"] in listed for s in sooner) == 2
