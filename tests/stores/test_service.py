"""Stores on SQLite and PostgreSQL: create, change, import all or nothing, the nearest
search against brute force, and the codes the purchase path accepts."""

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.errors import Conflict, Forbidden, InvalidInput, NotFound
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.models import OutboxEvent
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from kopilka.purchases.schemas import PurchaseCreate
from kopilka.purchases.service import purchase_service
from kopilka.stores import geo
from kopilka.stores.schemas import StoreCreate, StoreUpdate
from kopilka.stores.service import KnownStores, StoreService, store_service
from tests.conftest import make_program
from tests.fixtures.factories import purchase_body

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)  # a Monday: 12:30 in Moscow
outbox_t = table(OutboxEvent)


def body(code: str, **fields: Any) -> StoreCreate:
    return StoreCreate.model_validate({"code": code, "name": f"Store {code}", **fields})


async def create(engine: AsyncEngine, program: ProgramContext, code: str, **fields: Any) -> Any:
    async with transaction(engine) as conn:
        return await store_service.create(conn, program, body(code, **fields), T0)


async def store_events(engine: AsyncEngine, program: ProgramContext) -> list[Any]:
    async with reading(engine) as conn:
        rows = await conn.execute(
            select(outbox_t)
            .where(outbox_t.c.program_id == program.id, outbox_t.c.topic.like("store.%"))
            .order_by(outbox_t.c.id)
        )
        return list(rows.all())


async def test_a_store_is_created_read_and_changed_with_its_events(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    created = await create(
        engine,
        program,
        "MSK-1",
        latitude=55.765,
        longitude=37.605,
        timezone="Europe/Moscow",
        hours={"mon": ["09:00-21:00"]},
        tags=["coffee", "24h", "coffee"],
        region="moscow",
    )
    assert created.tags == ["24h", "coffee"] and created.status == "open"
    assert created.open_now is True and created.closed_at is None
    # Without a time zone a store keeps the program's.
    plain = await create(engine, program, "P-1")
    assert plain.timezone == program.settings.timezone and plain.open_now is None
    with pytest.raises(Conflict):
        await create(engine, program, "MSK-1")
    async with transaction(engine) as conn:
        changed = await store_service.update(
            conn,
            program,
            "MSK-1",
            StoreUpdate.model_validate({"status": "closed", "name": "Old Tverskaya"}),
            T0,
        )
    assert changed.status == "closed" and changed.closed_at == T0 and changed.open_now is False
    async with transaction(engine) as conn:
        same = await store_service.update(
            conn, program, "MSK-1", StoreUpdate.model_validate({"status": "closed"}), T0
        )
    assert same.updated_at == changed.updated_at  # nothing changed, nothing written
    events = await store_events(engine, program)
    assert [e.topic for e in events] == ["store.created", "store.created", "store.updated"]
    assert events[0].member_id is None and events[0].payload["code"] == "MSK-1"
    assert events[0].payload["values"]["hours"]["mon"] == ["09:00-21:00"]
    assert events[2].payload["changed"] == ["name", "status"]
    assert events[2].payload["previous"] == {"name": "Store MSK-1", "status": "open"}
    async with reading(engine) as conn:
        with pytest.raises(NotFound):
            await store_service.get(conn, program, "nope")
        with pytest.raises(NotFound):
            await store_service.get(conn, program, "MSK-1", visible=frozenset({"P-1"}))
        assert await store_service.codes(conn, program) == {"MSK-1", "P-1"}
        assert await store_service.exists(conn, program, "P-1")
        assert not await store_service.exists(conn, program, "P-2")


async def test_another_programs_stores_are_not_seen(engine: AsyncEngine) -> None:
    mine, theirs = await make_program(engine), await make_program(engine)
    await create(engine, theirs, "S-1", latitude=1.0, longitude=1.0)
    async with reading(engine) as conn:
        assert await store_service.find(conn, mine, "S-1") is None
        assert not await store_service.exists(conn, mine, "S-1")
        near = await store_service.nearest(conn, mine, 1.0, 1.0, T0)
        assert near.items == []
    await create(engine, mine, "S-1")  # the same code in another program is another store


async def test_one_coordinate_without_the_other_is_refused_after_a_change(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    await create(engine, program, "C-1", latitude=10.0, longitude=20.0)
    async with transaction(engine) as conn:
        with pytest.raises(InvalidInput) as caught:
            await store_service.update(
                conn, program, "C-1", StoreUpdate.model_validate({"latitude": None}), T0
            )
    assert caught.value.field == "latitude"


ROWS = [
    {"code": "A", "name": "Alpha", "latitude": 55.0, "longitude": 37.0, "tags": ["x"]},
    {"code": "B", "name": "Beta", "hours": {"mon": ["09:00-18:00"]}},
]


async def test_import_creates_updates_and_is_idempotent(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    async with transaction(engine) as conn:
        first = await store_service.import_rows(conn, program, list(enumerate(ROWS)), T0)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    async with transaction(engine) as conn:
        again = await store_service.import_rows(conn, program, list(enumerate(ROWS)), T0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    changed = [{"code": "A", "region": "north"}, {"code": "C", "name": "Gamma"}]
    async with transaction(engine) as conn:
        third = await store_service.import_rows(conn, program, list(enumerate(changed)), T0)
    assert [(r.code, r.outcome) for r in third.rows] == [("A", "updated"), ("C", "created")]
    async with reading(engine) as conn:
        alpha = await store_service.get(conn, program, "A")
    # Fields a row leaves out keep their value.
    assert alpha.region == "north" and alpha.tags == ["x"] and alpha.latitude == 55.0
    topics = [e.topic for e in await store_events(engine, program)]
    assert topics == ["store.created"] * 2 + ["store.updated", "store.created"]


async def test_a_bad_row_refuses_the_whole_import(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    rows = [
        {"code": "OK-1", "name": "Fine"},
        {"code": "BAD", "name": "Lat", "latitude": 91.0, "longitude": 0.0},
        {"code": "NEW"},  # a new store needs a name
        {"code": "OK-1", "name": "Twice"},
    ]
    async with transaction(engine) as conn:
        with pytest.raises(InvalidInput) as caught:
            await store_service.import_rows(conn, program, list(enumerate(rows)), T0)
    fields = [e["field"] for e in caught.value.extra["errors"]]
    assert fields == ["stores.1.latitude", "stores.2.name", "stores.3.code"]
    assert "nothing was written" in caught.value.detail
    async with reading(engine) as conn:
        assert await store_service.codes(conn, program) == set()
    assert await store_events(engine, program) == []


async def test_a_csv_file_is_imported_or_refused_by_line(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    text = "code,name,lat,lon,hours\nA,Alpha,55,37,Mo-Fr 09:00-21:00\nB,Beta,,,24/7\n"
    async with transaction(engine) as conn:
        done = await store_service.import_csv(conn, program, text, T0)
    assert [(r.row, r.outcome) for r in done.rows] == [(2, "created"), (3, "created")]
    bad = "code,name,lat,lon\nA,Alpha,55,37\nC,Gamma,95,1\nD,Delta,x,1\nE,,1,1\n"
    async with transaction(engine) as conn:
        with pytest.raises(InvalidInput) as caught:
            await store_service.import_csv(conn, program, bad, T0)
    errors = caught.value.extra["errors"]
    assert [(e["line"], e["column"]) for e in errors] == [
        (3, "latitude"),
        (4, "latitude"),
        (5, "name"),
    ]
    assert caught.value.detail.startswith("line 3: latitude: ")
    async with transaction(engine) as conn:
        dry = await store_service.import_csv(conn, program, text + "Z,Zeta,,,\n", T0, dry_run=True)
    assert [r.outcome for r in dry.rows] == ["unchanged", "unchanged", "created"] and dry.dry_run
    async with reading(engine) as conn:
        assert await store_service.codes(conn, program) == {"A", "B"}


async def test_a_store_limited_caller_manages_only_their_stores(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    async with transaction(engine) as conn:
        with pytest.raises(Forbidden):
            await store_service.create(conn, program, body("X"), T0, allowed=frozenset({"Y"}))
        with pytest.raises(Forbidden):
            await store_service.import_rows(
                conn, program, [(0, {"code": "X", "name": "x"})], T0, allowed=frozenset({"Y"})
            )


# --- the nearest ---------------------------------------------------------------------------


def brute_force(
    stores: list[tuple[str, float, float]], lat: float, lon: float, limit: int, radius: float
) -> list[tuple[int, str]]:
    measured = sorted(
        (round(geo.distance_m(lat, lon, a, b)), code)
        for code, a, b in stores
        if geo.distance_m(lat, lon, a, b) <= radius
    )
    return measured[:limit]


async def test_the_nearest_search_matches_brute_force_everywhere(engine: AsyncEngine) -> None:
    """Stores around the antimeridian, both poles, a city and scattered over the globe;
    queries from everywhere: the answer is exactly the brute-force one."""
    program = await make_program(engine)
    rng = random.Random(7)
    points = [
        *(
            (rng.uniform(-10, 10), rng.choice([rng.uniform(175, 180), rng.uniform(-180, -175)]))
            for _ in range(40)
        ),
        *((rng.uniform(85, 90), rng.uniform(-180, 180)) for _ in range(20)),
        *((rng.uniform(-90, -85), rng.uniform(-180, 180)) for _ in range(20)),
        *((rng.uniform(55.5, 56.0), rng.uniform(37.3, 37.9)) for _ in range(60)),
        *((rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(60)),
        (0.0, 180.0),
        (0.0, -180.0),
    ]
    stores = [(f"S{i:03d}", lat, lon) for i, (lat, lon) in enumerate(points)]
    async with transaction(engine) as conn:
        await store_service.import_rows(
            conn,
            program,
            [
                (i, {"code": c, "name": c, "latitude": a, "longitude": b})
                for i, (c, a, b) in enumerate(stores)
            ],
            T0,
        )
    queries = [
        (0.0, 179.99, 5, None),
        (0.0, -179.99, 5, 300_000.0),
        (89.99, 0.0, 7, None),
        (-89.5, 120.0, 3, 200_000.0),
        (55.75, 37.62, 10, 5_000.0),
        (55.75, 37.62, 10, None),
        (30.0, 60.0, 4, None),
        *((rng.uniform(-90, 90), rng.uniform(-180, 180), 6, None) for _ in range(15)),
    ]
    async with reading(engine) as conn:
        for lat, lon, limit, radius in queries:
            found = await store_service.nearest(
                conn, program, lat, lon, T0, limit=limit, radius_m=radius
            )
            expected = brute_force(stores, lat, lon, limit, radius or geo.MAX_DISTANCE_M)
            assert [(s.distance_m, s.code) for s in found.items] == expected, (lat, lon)


async def test_nearest_filters_by_open_now_tag_and_visibility(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    moscow = {"timezone": "Europe/Moscow"}
    await create(
        engine,
        program,
        "NEAR",
        latitude=55.7500,
        longitude=37.6200,
        hours={"mon": ["13:00-22:00"]},
        **moscow,
    )
    await create(
        engine,
        program,
        "MID",
        latitude=55.7600,
        longitude=37.6200,
        hours={"mon": ["09:00-21:00"]},
        tags=["coffee"],
        **moscow,
    )
    await create(
        engine,
        program,
        "FAR",
        latitude=55.8500,
        longitude=37.6200,
        hours={"mon": ["00:00-24:00"]},
        **moscow,
    )
    await create(
        engine,
        program,
        "SHUT",
        latitude=55.7501,
        longitude=37.6200,
        hours={"mon": ["00:00-24:00"]},
        status="closed",
        **moscow,
    )
    await create(engine, program, "NOHOURS", latitude=55.7502, longitude=37.6200)
    async with reading(engine) as conn:
        every = await store_service.nearest(conn, program, 55.75, 37.62, T0)
        assert [s.code for s in every.items] == ["NEAR", "SHUT", "NOHOURS", "MID", "FAR"]
        assert every.items[0].distance_m == 0 and every.items[0].open_now is False
        assert every.items[3].open_now is True and every.items[3].distance_m == 1112
        open_ = await store_service.nearest(conn, program, 55.75, 37.62, T0, open_now=True)
        assert [s.code for s in open_.items] == ["MID", "FAR"]
        tagged = await store_service.nearest(conn, program, 55.75, 37.62, T0, tag="coffee")
        assert [s.code for s in tagged.items] == ["MID"]
        near = await store_service.nearest(conn, program, 55.75, 37.62, T0, radius_m=2_000)
        assert [s.code for s in near.items] == ["NEAR", "SHUT", "NOHOURS", "MID"]
        mine = await store_service.nearest(
            conn, program, 55.75, 37.62, T0, visible=frozenset({"FAR"})
        )
        assert [s.code for s in mine.items] == ["FAR"]
        nobody = await store_service.nearest(conn, program, 55.75, 37.62, T0, visible=frozenset())
        assert nobody.items == []
        one = await store_service.nearest(conn, program, 55.75, 37.62, T0, limit=1)
        assert [s.code for s in one.items] == ["NEAR"] and one.searched_m == 2_000


# --- the codes purchases may name -----------------------------------------------------------


async def test_codes_known_to_one_process_and_made_by_another(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    here = StoreService(known=KnownStores(empty_recheck_seconds=3600))
    elsewhere = StoreService(known=KnownStores())
    async with reading(engine) as conn:
        # No stores yet: any name is accepted, and that is remembered for a while.
        assert await here.unknown_stores(conn, program, {"anything"}) == set()
    async with transaction(engine) as conn:
        await elsewhere.create(conn, program, body("S-1"), T0)
    async with reading(engine) as conn:
        # Within the re-check interval this process still takes the program for storeless.
        assert await here.unknown_stores(conn, program, {"S-9"}) == set()
        here.known.forget(program.id)
        assert await here.unknown_stores(conn, program, {"S-1", "S-9"}) == {"S-9"}
    async with transaction(engine) as conn:
        await elsewhere.create(conn, program, body("S-2"), T0)
    async with reading(engine) as conn:
        # A code made elsewhere after this process loaded its codes is accepted at once.
        assert await here.unknown_stores(conn, program, {"S-2"}) == set()
        assert await here.unknown_stores(conn, program, {"S-2", "S-3"}) == {"S-3"}


async def test_free_form_stores_accept_any_name(engine: AsyncEngine) -> None:
    program = await make_program(engine, free_form_stores=True)
    await create(engine, program, "S-1")
    async with reading(engine) as conn:
        assert await store_service.unknown_stores(conn, program, {"S-1", "elsewhere"}) == set()


async def test_an_import_registers_no_member_for_a_purchase_at_an_unknown_store(
    engine: AsyncEngine,
) -> None:
    program = await make_program(engine)
    await create(engine, program, "store-01")
    store_service.known.forget(program.id)
    purchases = [
        PurchaseCreate.model_validate(purchase_body("new-at-01")),
        PurchaseCreate.model_validate(purchase_body("new-elsewhere", store="pop-up")),
    ]
    async with transaction(engine) as conn:
        await purchase_service.enrol_members(conn, program, purchases, datetime.now(UTC))
        outcomes = await purchase_service.ingest(conn, program, purchases, datetime.now(UTC))
    assert [o.status for o in outcomes] == [201, 422]
    assert outcomes[1].error is not None and outcomes[1].error.field == "store"
    async with reading(engine) as conn:
        found = await member_service.resolve_many(
            conn,
            program,
            [MemberRef(external_id="new-at-01"), MemberRef(external_id="new-elsewhere")],
        )
    assert found[0] is not None and found[1] is None
