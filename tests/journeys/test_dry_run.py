"""A journey's dry run over past days (SQLite and PostgreSQL): who would have entered from
the events the outbox keeps (or the feature tables once it no longer does), on their dates,
from a segment or a schedule; who the holdout keeps out; each step walked without effect —
branches as of now, waits for events from history, the goal ending runs —; messages by the
channels that reach each member; points and their cost; and nothing changed. Bad ranges
are a 422 naming the field; the command prints the same answer."""

import asyncio
from datetime import timedelta
from typing import Any
from unittest import mock

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from kopilka.cli import common
from kopilka.cli import journeys as journeys_cli
from kopilka.db import reading
from kopilka.journeys import domain
from kopilka.journeys.dryrun_service import dry_run_service
from kopilka.journeys.repository import journey_repository
from kopilka.kit.clock import clock
from tests.crm.support import worker
from tests.fixtures.factories import purchase_body
from tests.journeys.support import T0, Setup, setup

# The program values a point at a quarter of a rouble (analytics.point_value): 25 kopecks.
POINT_VALUE = {"point_value": {"points": 4, "money": 100}}
WELCOME: dict[str, Any] = {
    "name": "Welcome",
    "entry": {"type": "event", "event": "member.registered"},
    "steps": [
        {"id": "gift", "type": "points", "amount": 100},
        {"id": "pause", "type": "wait", "days": 3},
        {
            "id": "check",
            "type": "branch",
            "condition": {"type": "tags", "tags": ["vip"]},
            "then": "vip",
        },
        {
            "id": "hello",
            "type": "send",
            "kind": "birthday",
            "variables": {"bonus": "a coffee"},
            "channels": ["email", "sms"],
        },
        {"id": "done", "type": "exit"},
        {"id": "vip", "type": "points", "amount": 500},
    ],
}


async def dry_run(s: Setup, key: str, **span: str) -> httpx.Response:
    body = {("from" if k == "start" else "to"): v for k, v in span.items()}
    with clock.frozen(T0):
        return await s.api.post(f"/v1/journeys/{key}/dry-run", body or None)


def steps_of(answer: dict[str, Any]) -> dict[str, tuple[int, dict[str, int]]]:
    return {s["id"]: (s["reached"], s["outcomes"]) for s in answer["steps"]}


async def test_an_event_journey_is_walked_over_the_last_30_days_and_nothing_changes(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http, analytics=POINT_VALUE)
    key = await s.journey(WELCOME)
    await s.member(T0 - timedelta(days=40), email="old@example.com")  # before the range
    anna = await s.member(
        T0 - timedelta(days=10), tags=["vip"], email="anna@example.com", phone="+79161110001"
    )
    boris = await s.member(T0 - timedelta(days=5), email="boris@example.com")
    clara = await s.member(T0 - timedelta(days=2))  # no address: only the inbox would do
    await worker(engine, "messaging").drain()  # the members' consents
    response = await dry_run(s, key)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["journey"], answer["document"], answer["basis"]) == (key, "version 1", "events")
    assert (answer["from"], answer["to"]) == ("2026-04-05", "2026-05-04")
    assert (answer["members"], answer["walked"], answer["capped"]) == (3, 3, False)
    assert (answer["entries"], answer["held_out"], answer["treated"]) == (3, 0, 3)
    steps = steps_of(answer)
    assert steps["gift"] == (3, {"credited": 3})
    assert steps["pause"] == (3, {"waiting": 3})
    assert steps["check"] == (3, {"then": 1, "else": 2})  # as the members are now
    assert steps["hello"] == (2, {"sent": 1, "skipped": 1})  # Clara has no address
    assert steps["vip"] == (1, {"credited": 1})
    assert steps["done"] == (2, {"exited": 2})
    [message] = answer["messages"]
    assert (message["kind"], message["channels"]) == ("birthday", {"email": 1})
    # 800 points at 25 kopecks: 200 roubles, as analytics values a point.
    assert answer["points"] == [{"currency": "points", "points": 800, "value": 20_000}]
    assert answer["points_value"] == 20_000 and answer["money_currency"] == "RUB"
    assert any("as the members are now" in note for note in answer["notes"])
    # Nothing happened: no run, no point.
    assert await s.runs(key) == []
    for member in (anna, boris, clara):
        assert await s.balance(member) == 0


async def test_the_range_is_checked_and_a_bad_one_names_its_field(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    key = await s.journey(WELCOME)
    cases = [
        ({"start": "2026-05-03", "end": "2026-05-01"}, "from"),
        ({"end": "2026-05-05"}, "to"),  # tomorrow in Moscow
        ({"start": "2025-05-01", "end": "2026-05-02"}, "from"),  # 367 days
        ({"start": "2026-13-01"}, "from"),
        ({"end": 20260501}, "to"),
    ]
    for span, field in cases:
        response = await dry_run(s, key, **span)
        assert response.status_code == 422, (span, response.text)
        assert response.json()["errors"][0]["field"] == field, span
    year = await dry_run(s, key, start="2025-05-04", end="2026-05-03")
    assert year.status_code == 200 and year.json()["from"] == "2025-05-04"
    with clock.frozen(T0):
        missing = await s.api.post("/v1/journeys/nope/dry-run", {})
        extra = await s.api.post(f"/v1/journeys/{key}/dry-run", {"since": "2026-05-01"})
    assert missing.status_code == 404
    assert extra.status_code == 422


async def test_the_holdouts_keep_out_the_members_their_hashes_choose(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    key = await s.journey({**WELCOME, "holdout_percent": 50})
    members = [await s.member(T0 - timedelta(days=1 + i % 20)) for i in range(12)]
    answer = (await dry_run(s, key)).json()
    async with reading(engine) as conn:
        row = await journey_repository.journey(conn, s.program.id, key)
    assert row is not None
    held = sum(domain.held_out(row.id, domain_uuid(m), 50) for m in members)
    assert 0 < held < 12  # the hash splits twelve members (fixed ids would be brittle)
    assert (answer["entries"], answer["held_out"], answer["treated"]) == (12, held, 12 - held)
    assert steps_of(answer)["gift"][0] == 12 - held


def domain_uuid(text: str) -> Any:
    from uuid import UUID

    return UUID(text)


async def test_an_unsaved_document_is_tried_and_a_bad_one_refused_at_its_field(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    await s.member(T0 - timedelta(days=3))
    document = {**WELCOME, "holdout_percent": 10}
    with clock.frozen(T0):
        tried = await s.api.post(
            "/v1/journeys/dry-run", {"document": document, "from": "2026-05-01"}
        )
        bad = await s.api.post(
            "/v1/journeys/dry-run",
            {"document": {**WELCOME, "steps": [{"id": "x", "type": "points", "amount": "1"}]}},
        )
        listed = await s.api.get("/v1/journeys")
    assert tried.status_code == 200, tried.text
    answer = tried.json()
    assert (answer["journey"], answer["document"], answer["members"]) == (None, "document", 1)
    assert any("estimate" in note for note in answer["notes"])
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "steps.0.amount"
    assert listed.json()["items"] == []


async def test_a_draft_is_tried_before_the_version_in_force(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    key = await s.journey(WELCOME)
    await s.member(T0 - timedelta(days=1))
    draft = {**WELCOME, "steps": [{"id": "only", "type": "points", "amount": 7}]}
    with clock.frozen(T0):
        assert (await s.api.put(f"/v1/journeys/{key}/draft", {"document": draft})).is_success
    answer = (await dry_run(s, key)).json()
    assert answer["document"] == "draft" and answer["points"][0]["points"] == 7


async def test_waits_for_events_and_the_goal_come_from_history(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    document = {
        "name": "Second visit",
        "entry": {"type": "event", "event": "purchase.recorded"},
        "goal": {"event": "purchase.recorded", "within_days": 5, "ends_run": False},
        "reentry": {"policy": "once"},
        "steps": [
            {
                "id": "next",
                "type": "wait",
                "event": "purchase.recorded",
                "timeout_days": 7,
                "on_timeout": "nudge",
            },
            {"id": "thanks", "type": "points", "amount": 10},
            {"id": "end", "type": "exit"},
            {"id": "nudge", "type": "points", "amount": 1},
        ],
    }
    key = await s.journey(document)
    await s.member(T0 - timedelta(days=30), external_id="regular")
    await s.member(T0 - timedelta(days=30), external_id="once")
    await buy(s, "regular", T0 - timedelta(days=20))
    await buy(s, "regular", T0 - timedelta(days=17))  # the wait ends; the goal is reached
    await buy(s, "once", T0 - timedelta(days=10))  # nothing follows: the wait times out
    answer = (await dry_run(s, key)).json()
    assert (answer["members"], answer["entries"], answer["converted"]) == (2, 2, 1)
    steps = steps_of(answer)
    assert steps["next"] == (2, {"waiting": 2, "timed_out": 1})
    assert steps["thanks"] == (1, {"credited": 1})
    assert steps["nudge"] == (1, {"credited": 1})
    # Once the outbox keeps only five days, the purchases are read from their own table.
    with clock.frozen(T0):
        async with reading(engine) as conn:
            older = await dry_run_service.of_journey(
                conn, s.program, key, (None, None), T0, kept_days=5
            )
    assert (older.basis, older.members, older.entries, older.converted) == (
        "feature_tables",
        2,
        2,
        1,
    )
    assert [(x.id, x.reached) for x in older.steps] == [
        ("next", 2),
        ("thanks", 1),
        ("end", 1),
        ("nudge", 1),
    ]


async def buy(s: Setup, member: str, at: Any, total: int = 10_000) -> None:
    with clock.frozen(at):
        made = await s.api.post(
            "/v1/purchases", purchase_body(member, total, occurred_at=at.isoformat())
        )
    assert made.status_code == 201, made.text


async def test_an_event_no_table_keeps_cannot_be_counted_once_the_outbox_is_purged(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    key = await s.journey({**WELCOME, "entry": {"type": "event", "event": "points.earned"}})
    await s.member(T0 - timedelta(days=20), external_id="earner")
    await buy(s, "earner", T0 - timedelta(days=15))
    async with reading(engine) as conn:
        kept = await dry_run_service.of_journey(conn, s.program, key, (None, None), T0)
        purged = await dry_run_service.of_journey(
            conn, s.program, key, (None, None), T0, kept_days=10
        )
    assert (kept.basis, kept.members) == ("events", 1)
    assert (purged.basis, purged.members, purged.entries) == ("unknown", 0, 0)
    assert any("no longer kept" in note for note in purged.notes)


async def test_the_walk_is_capped_and_says_so(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    s = await setup(engine, http)
    key = await s.journey(WELCOME)
    for i in range(3):
        await s.member(T0 - timedelta(days=i + 1))
    async with reading(engine) as conn:
        found = await dry_run_service.of_journey(conn, s.program, key, (None, None), T0, cap=2)
    assert (found.members, found.walked, found.capped, found.entries) == (3, 2, True, 2)


async def test_birthdays_shifted_by_the_offset_fall_in_the_range(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    document = {
        **WELCOME,
        "entry": {"type": "date", "field": "birthday", "offset_days": -3, "at": "10:00"},
        "steps": [{"id": "gift", "type": "points", "amount": 50}],
    }
    key = await s.journey(document)
    await s.member(T0 - timedelta(days=60), birthday="1990-05-05")  # enters 2 May: in
    await s.member(T0 - timedelta(days=60), birthday="1985-05-06")  # 3 May: in
    await s.member(T0 - timedelta(days=60), birthday="1980-05-08")  # 5 May: tomorrow
    await s.member(T0 - timedelta(days=60), birthday="1980-04-20")  # 17 April: before
    await s.member(T0 - timedelta(days=1), birthday="1991-05-05")  # joined after 2 May: out
    answer = (await dry_run(s, key, start="2026-04-30", end="2026-05-04")).json()
    assert (answer["basis"], answer["members"], answer["entries"]) == ("dates", 2, 2)
    assert answer["points"][0]["points"] == 100


async def test_segment_and_schedule_entries_take_the_segments_members_now(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    with clock.frozen(T0):
        made = await s.api.post(
            "/v1/segments",
            {
                "key": "vips",
                "name": "VIPs",
                "kind": "dynamic",
                "definition": {"type": "tags", "tags": ["vip"]},
            },
        )
    assert made.status_code == 201, made.text
    for _ in range(2):
        await s.member(T0 - timedelta(days=60), tags=["vip"])
    await s.member(T0 - timedelta(days=60))
    steps = [{"id": "gift", "type": "points", "amount": 5}]
    entered = await s.journey(
        {**WELCOME, "entry": {"type": "segment_entered", "segment": "vips"}, "steps": steps}
    )
    answer = (await dry_run(s, entered)).json()
    assert (answer["basis"], answer["members"], answer["entries"]) == ("segment_now", 2, 2)
    weekly = {
        **WELCOME,
        "entry": {"type": "schedule", "segment": "vips", "every": "week", "weekday": 1},
        "steps": steps,
    }
    # Mondays 6, 13, 20 and 27 April: two members four times each, unless they enter once.
    every = await s.journey({**weekly, "reentry": {"policy": "always"}})
    once = await s.journey({**weekly, "reentry": {"policy": "once"}})
    span = {"start": "2026-04-06", "end": "2026-05-03"}
    assert (await dry_run(s, every, **span)).json()["entries"] == 8
    assert (await dry_run(s, once, **span)).json()["entries"] == 2


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_the_command_prints_the_dry_run(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    s = await setup(engine, http)
    key = await s.journey(WELCOME)
    await s.member(T0 - timedelta(days=2))
    where = ["--program", s.program.slug, "--database-url", engine.url.render_as_string()]

    def command(*words: str) -> Result:
        # The command runs its own event loop: in a thread of its own, as from a shell. The
        # event-loop policy is process-wide: the command must not swap it for the tests
        # that run after this one in this process (a browser's driver needs the default).
        with mock.patch.object(common, "_fast_event_loop", lambda: None):
            return CliRunner().invoke(journeys_cli.app, [*words, *where])

    with clock.frozen(T0):
        result = await asyncio.to_thread(command, "dry-run", key, "--from", "2026-05-01")
        listed = await asyncio.to_thread(command, "list")
        bad = await asyncio.to_thread(command, "dry-run", key, "--from", "2026-05-09")
    assert result.exit_code == 0, result.output
    assert "members 1; runs 1" in result.output and "gift" in result.output
    assert listed.exit_code == 0 and key in listed.output
    assert bad.exit_code == 1 and "from (2026-05-09) must not be after to" in bad.output
