"""Experiments through the database and the API: a rules experiment measured on every member
the split put in an arm (intention to treat), its figures checked against the purchases
sent; the list of experiments; bad keys and windows refused."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.experiment_service import experiment_service
from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.rules.experiments import assign_arm
from kopilka.rules.schemas import Experiment
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import purchase_body

START = datetime(2026, 3, 1, tzinfo=UTC)  # the experiment's first assignment
NOW = START + timedelta(days=28)
MEMBERS = 160
EXPERIMENT: dict[str, Any] = {
    "name": "double",
    "arms": [{"name": "test", "percent": 50}, {"name": "control", "percent": 50}],
}
BONUS = {
    "id": "bonus",
    "experiment": {"experiment": "double", "arm": "test"},
    "effects": [{"type": "points", "amount": 10}],
}


def level(i: int) -> int:
    """Member i's usual basket, kopecks (whole roubles, so points are exact)."""
    return 100 * (10 + (37 * i) % 90)


def window_baskets(i: int, arm: str) -> list[tuple[datetime, int]]:
    """What member i buys in the window: nothing (every fourth member), once, or twice
    (every third: on one day for every sixth, else a week apart); the test arm spends 10 %
    more."""
    if i % 4 == 0:
        return []
    total = level(i) * 11 // 10 if arm == "test" else level(i)
    days = [4] if i % 3 else ([4, 4] if i % 6 == 0 else [4, 11])
    return [(START + timedelta(days=d, hours=10 + n), total) for n, d in enumerate(days)]


async def build(engine: AsyncEngine, api: Api) -> tuple[Any, Api, dict[int, tuple[UUID, str]]]:
    """160 members who each bought once in February (the pre-period), recorded on 1 March
    when the experiment started; then March's purchases by arm; one March purchase fully
    returned."""
    program = await make_program(engine, auto_enrol=True, experiments=[EXPERIMENT], rules=[BONUS])
    own = Api(api.client, await make_key(engine, program, "admin"))
    experiment = Experiment.model_validate(EXPERIMENT)
    people: dict[int, tuple[UUID, str]] = {}
    with clock.frozen(START):
        pre = [
            purchase_body(
                f"x-{program.id}-{i}",
                level(i),
                occurred_at=(START - timedelta(days=1 + i % 27)).isoformat(),
            )
            for i in range(MEMBERS)
        ]
        done = await own.post("/v1/purchases/batch", {"purchases": pre})
        assert done.status_code == 200 and done.json()["failed"] == 0, done.text
        for i, result in enumerate(done.json()["results"]):
            member_id = UUID(result["purchase"]["member_id"])
            people[i] = (member_id, assign_arm(experiment, member_id))
    returned: dict[str, Any] | None = None
    with clock.frozen(NOW):
        bodies = [
            purchase_body(f"x-{program.id}-{i}", total, occurred_at=when.isoformat())
            for i in range(MEMBERS)
            for when, total in window_baskets(i, people[i][1])
        ]
        done = await own.post("/v1/purchases/batch", {"purchases": bodies})
        assert done.status_code == 200 and done.json()["failed"] == 0, done.text
        returned = bodies[0]
        back = await own.post(
            "/v1/returns",
            {
                "external_id": f"r-{returned['external_id']}",
                "purchase_external_id": returned["external_id"],
                "occurred_at": (START + timedelta(days=20)).isoformat(),
            },
        )
        assert back.status_code == 201, back.text
    return program, own, people


def expected_arms(people: dict[int, tuple[UUID, str]]) -> dict[str, dict[str, Any]]:
    """Each arm's figures worked out from what was sent (member 1's first March purchase
    returned in full: no revenue, no purchase, no visit, but its points were credited)."""
    arms: dict[str, dict[str, Any]] = {
        a: {"members": 0, "buyers": 0, "purchases": 0, "visits": 0, "revenue": [], "points": 0}
        for a in ("test", "control")
    }
    for i, (_, arm) in people.items():
        figures = arms[arm]
        baskets = window_baskets(i, arm)
        kept = baskets[1:] if i == 1 else baskets
        figures["members"] += 1
        figures["buyers"] += bool(kept)
        figures["purchases"] += len(kept)
        figures["visits"] += len({when.date() for when, _ in kept})
        figures["revenue"].append(sum(total for _, total in kept))
        figures["points"] += sum(
            total // 100 + (10 if arm == "test" else 0) for _, total in baskets
        )
    return arms


async def test_a_rules_experiment_counts_every_member_of_each_arm(
    engine: AsyncEngine, api: Api
) -> None:
    program, own, people = await build(engine, api)
    async with reading(engine) as conn:
        report = await experiment_service.report(conn, program, "double", NOW)
    assert (report.window_from, report.window_to) == (START, NOW)
    assert report.pre_period_from == START - timedelta(days=28)
    assert report.population == "intention_to_treat"
    expected = expected_arms(people)
    analysis = report.analysis
    assert analysis.control == "control"
    for summary in analysis.arms:
        want = expected[summary.arm]
        assert (
            summary.members,
            summary.buyers,
            summary.purchases,
            summary.visits,
            summary.revenue,
            summary.points_earned,
        ) == (
            want["members"],
            want["buyers"],
            want["purchases"],
            want["visits"],
            sum(want["revenue"]),
            want["points"],
        )
        assert summary.points_cost == want["points"] * 100  # 1 point = 1 rouble by default
    assert sum(s.members for s in analysis.arms) == MEMBERS
    # Every member was recorded in February's batch, in the arm the hash gives.
    assert report.recorded == {a: expected[a]["members"] for a in ("test", "control")}
    (lift,) = analysis.uplifts
    treated = np.array(expected["test"]["revenue"], dtype=float)
    control = np.array(expected["control"]["revenue"], dtype=float)
    assert lift.absolute.estimate == pytest.approx(treated.mean() - control.mean())
    # The pre-period (each member's usual basket) explains part of the spread.
    assert lift.cuped is not None and lift.variance_reduction is not None
    assert lift.variance_reduction > 0.2 and lift.preferred == "cuped"
    assert lift.cuped.low < lift.cuped.estimate < lift.cuped.high
    assert {w.code for w in analysis.warnings} == {"too_few_members"}  # ~80 per arm

    with clock.frozen(NOW):
        answer = await own.get("/v1/analytics/experiments/double")
        listed = await own.get("/v1/analytics/experiments")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["analysis"]["uplifts"][0]["absolute"]["estimate"] == pytest.approx(
        lift.absolute.estimate
    )
    assert [a["members"] for a in body["analysis"]["arms"]] == [
        expected["test"]["members"],
        expected["control"]["members"],
    ]
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == [
        {
            "key": "double",
            "kind": "rules",
            "name": "double",
            "arms": [{"name": "test", "percent": 50}, {"name": "control", "percent": 50}],
            "started_at": "2026-03-01T00:00:00Z",
            "assigned": MEMBERS,
        }
    ]

    # A window of one week: the same members, fewer purchases, and a warning.
    async with reading(engine) as conn:
        week = await experiment_service.report(
            conn, program, "double", NOW, start=START, end=START + timedelta(days=7)
        )
    assert sum(a.members for a in week.analysis.arms) == MEMBERS
    assert sum(a.visits for a in week.analysis.arms) < sum(a.visits for a in analysis.arms)
    assert "window_too_short" in {w.code for w in week.analysis.warnings}


BAD_WINDOWS: list[tuple[dict[str, str], str]] = [
    ({"from": "yesterday"}, "from"),
    ({"from": "2026-03-01T00:00:00"}, "from"),  # no offset
    ({"from": "2026-03-20T00:00:00Z", "to": "2026-03-10T00:00:00Z"}, "from"),
    ({"to": "2030-01-01T00:00:00Z"}, "to"),
]


async def test_a_bad_window_is_refused_naming_the_field(engine: AsyncEngine, api: Api) -> None:
    program = await make_program(engine, experiments=[EXPERIMENT], rules=[BONUS])
    own = Api(api.client, await make_key(engine, program, "analyst"))
    for params, field in BAD_WINDOWS:
        with clock.frozen(NOW):
            answer = await own.get("/v1/analytics/experiments/double", **params)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] in (field, f"query.{field}"), params


async def test_an_experiment_nobody_is_in_yet_needs_a_start(engine: AsyncEngine, api: Api) -> None:
    program = await make_program(engine, experiments=[EXPERIMENT], rules=[BONUS])
    own = Api(api.client, await make_key(engine, program, "analyst"))
    with clock.frozen(NOW):
        unstarted = await own.get("/v1/analytics/experiments/double")
        given = await own.get("/v1/analytics/experiments/double", **{"from": START.isoformat()})
    assert unstarted.status_code == 422 and "from" in unstarted.text
    assert given.status_code == 200, given.text
    arms = given.json()["analysis"]["arms"]
    assert [a["members"] for a in arms] == [0, 0]


async def test_an_unknown_key_is_404_naming_it(api: Api) -> None:
    for key in ("nothing", "broadcast:nope", f"broadcast:{UUID(int=7)}", "broadcast:"):
        answer = await api.get(f"/v1/analytics/experiments/{key}")
        assert answer.status_code == 404, answer.text
        assert answer.json()["errors"][0]["field"] == "key"


async def test_another_program_s_experiment_is_not_found(engine: AsyncEngine, api: Api) -> None:
    await make_program(engine, experiments=[EXPERIMENT], rules=[BONUS])
    answer = await api.get("/v1/analytics/experiments/double")  # ``api``'s program has none
    assert answer.status_code == 404, answer.text


async def test_the_reports_need_the_analytics_permission(engine: AsyncEngine, api: Api) -> None:
    program = await make_program(engine, experiments=[EXPERIMENT], rules=[BONUS])
    till = Api(api.client, await make_key(engine, program, "pos"))
    for path in (
        "/v1/analytics/experiments",
        "/v1/analytics/experiments/double",
        "/v1/analytics/liability",
    ):
        assert (await till.get(path)).status_code == 403, path
