"""Journeys over HTTP: a bad document is a 422 naming the field and stores nothing; a draft
is published as numbered versions; statuses move only as allowed; another program's key
sees nothing and a till's key may not touch them."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from tests.conftest import Api, make_key, make_program
from tests.journeys.support import T0, setup

GOOD: dict[str, Any] = {
    "name": "Hello",
    "entry": {"type": "event", "event": "member.registered"},
    "steps": [{"id": "gift", "type": "points", "amount": 10}],
}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({**GOOD, "steps": []}, "steps"),
        ({**GOOD, "steps": [{"id": "x", "type": "fly"}]}, "steps.0"),
        ({**GOOD, "steps": [{"id": "x", "type": "points", "amount": "10"}]}, "steps.0.amount"),
        ({**GOOD, "steps": [{"id": "x", "type": "wait"}]}, "steps.0"),
        ({**GOOD, "steps": [{"id": "x", "type": "wait", "days": 1, "until": "10:00"}]}, "steps.0"),
        (
            {
                **GOOD,
                "steps": [
                    {
                        "id": "x",
                        "type": "branch",
                        "condition": {"type": "tags", "tags": ["a"]},
                        "then": "y",
                    }
                ],
            },
            "steps.0.then",
        ),
        (
            {
                **GOOD,
                "steps": [
                    {
                        "id": "x",
                        "type": "branch",
                        "condition": {"type": "tags", "tags": ["a"]},
                        "then": "x",
                    }
                ],
            },
            "steps.0",
        ),
        ({**GOOD, "steps": [{"id": "t", "type": "tag", "add": ["has space"]}]}, "steps.0.add.0"),
        (
            {**GOOD, "steps": [{"id": "w", "type": "webhook", "data": {"x": "y" * 20_000}}]},
            "steps.0.data",
        ),
        (
            {
                **GOOD,
                "steps": [
                    {
                        "id": "x",
                        "type": "branch",
                        "condition": {"type": "tags", "tags": 5},
                        "then": "y",
                    },
                    {"id": "y", "type": "exit"},
                ],
            },
            "steps.0.condition",
        ),
        ({**GOOD, "steps": [{"id": "x", "type": "send", "kind": "postcard"}]}, "steps.0.kind"),
        (
            {
                **GOOD,
                "steps": [
                    {
                        "id": "o",
                        "type": "offer",
                        "kind": "boost",
                        "payload": {"factor_percent": "2"},
                    }
                ],
            },
            "steps.0.payload.factor_percent",
        ),
        ({**GOOD, "holdout_percent": 80}, "holdout_percent"),
        ({**GOOD, "entry": {"type": "event", "event": "moon.rose"}}, "entry.event"),
        ({**GOOD, "entry": {"type": "event"}}, "entry.event"),
        ({**GOOD, "entry": {"type": "date", "field": "name day"}}, "entry.field"),
        (
            {**GOOD, "steps": [{"id": "w", "type": "wait", "event": "moon.rose"}]},
            "steps.0.event",
        ),
        ({**GOOD, "steps": [GOOD["steps"][0], GOOD["steps"][0]]}, "steps.1.id"),
    ],
)
async def test_a_bad_document_is_a_422_naming_the_field(
    engine: AsyncEngine, http: httpx.AsyncClient, document: dict[str, Any], field: str
) -> None:
    s = await setup(engine, http)
    with clock.frozen(T0):
        response = await s.api.post("/v1/journeys", {"key": "bad", "document": document})
        listed = await s.api.get("/v1/journeys")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == field
    assert listed.json()["items"] == []


@pytest.mark.parametrize("levels", [33, 252, 300])
async def test_a_document_nested_too_deep_is_a_422(
    engine: AsyncEngine, http: httpx.AsyncClient, levels: int
) -> None:
    """Saved, as a draft, or tried in a dry run: refused before the JSON encoders see it
    (theirs stop near 255 levels, with a 500)."""
    s = await setup(engine, http)
    data: dict[str, Any] = {}
    for _ in range(levels - 1):
        data = {"a": data}
    document = {**GOOD, "steps": [{"id": "w", "type": "webhook", "data": data}]}
    with clock.frozen(T0):
        saved = await s.api.post("/v1/journeys", {"key": "deep", "document": document})
        tried = await s.api.post("/v1/journeys/dry-run", {"document": document})
        listed = await s.api.get("/v1/journeys")
    for response in (saved, tried):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        if levels < 255:
            assert response.json()["errors"][0]["field"] == "steps.0.data"
    assert listed.json()["items"] == []
    shallow: dict[str, Any] = {}
    for _ in range(31):
        shallow = {"a": shallow}
    fine = {**GOOD, "steps": [{"id": "w", "type": "webhook", "data": shallow}]}
    with clock.frozen(T0):
        kept = await s.api.post("/v1/journeys", {"key": "shallow", "document": fine})
    assert kept.status_code == 201, kept.text


async def test_drafts_versions_and_statuses(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    s = await setup(engine, http)
    key = await s.journey(GOOD, publish=False)
    with clock.frozen(T0):
        shown = (await s.api.get(f"/v1/journeys/{key}")).json()
        assert (shown["status"], shown["version"], shown["draft"]["name"]) == (
            "draft",
            None,
            "Hello",
        )
        assert (await s.api.post(f"/v1/journeys/{key}/pause")).status_code == 409
        published = (await s.api.post(f"/v1/journeys/{key}/publish")).json()
        assert (published["status"], published["version"], published["draft"]) == (
            "active",
            1,
            None,
        )
        again = await s.api.post(f"/v1/journeys/{key}/publish")
        assert again.status_code == 409 and again.json()["errors"][0]["field"] == "draft"
        bad = await s.api.put(f"/v1/journeys/{key}/draft", {"document": {**GOOD, "name": ""}})
        assert bad.status_code == 422
        assert (await s.api.get(f"/v1/journeys/{key}")).json()["draft"] is None
        renamed = {**GOOD, "name": "Hello again"}
        await s.api.put(f"/v1/journeys/{key}/draft", {"document": renamed})
        second = (await s.api.post(f"/v1/journeys/{key}/publish")).json()
        assert second["version"] == 2 and [v["version"] for v in second["versions"]] == [2, 1]
        assert (await s.api.post(f"/v1/journeys/{key}/archive")).json()["status"] == "archived"
        assert (await s.api.post(f"/v1/journeys/{key}/resume")).status_code == 409
        archived = await s.api.put(f"/v1/journeys/{key}/draft", {"document": GOOD})
        assert archived.status_code == 409
        duplicate = await s.api.post("/v1/journeys", {"key": key, "document": GOOD})
        assert duplicate.status_code == 409


async def test_publishing_checks_what_the_journey_names(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    document = {
        **GOOD,
        "entry": {"type": "segment_entered", "segment": "nobody-made-this"},
        "steps": [{"id": "c", "type": "coupon", "campaign": "missing"}],
    }
    key = await s.journey(document, publish=False)
    with clock.frozen(T0):
        response = await s.api.post(f"/v1/journeys/{key}/publish")
        shown = (await s.api.get(f"/v1/journeys/{key}")).json()
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "entry.segment"
    assert shown["status"] == "draft" and shown["version"] is None


async def test_publishing_checks_a_points_steps_currency(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    document = {**GOOD, "steps": [{"id": "p", "type": "points", "amount": 5, "currency": "nope"}]}
    key = await s.journey(document, publish=False)
    with clock.frozen(T0):
        response = await s.api.post(f"/v1/journeys/{key}/publish")
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "steps.0.currency"


async def test_publishing_refuses_an_offer_of_a_reward_the_program_has_not(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    offer = {
        "id": "o",
        "type": "offer",
        "kind": "reward",
        "payload": {"reward": "mug", "price": 10},
    }
    sample = {"id": "s", "type": "offer", "kind": "free_sample", "payload": {"sku": "TEA-9"}}
    key = await s.journey({**GOOD, "steps": [sample, offer]}, publish=False)
    with clock.frozen(T0):
        refused = await s.api.post(f"/v1/journeys/{key}/publish")
        shown = (await s.api.get(f"/v1/journeys/{key}")).json()
        made = await s.api.post(
            "/v1/rewards", {"key": "mug", "name": "Mug", "kind": "physical", "price": 100}
        )
        assert made.status_code == 201, made.text
        published = await s.api.post(f"/v1/journeys/{key}/publish")
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "steps.1.payload.reward"
    assert "no reward 'mug'" in refused.json()["detail"]
    assert (shown["status"], shown["version"]) == ("draft", None)
    # The sku is not checked: the program keeps no catalogue of its items.
    assert published.status_code == 200, published.text


async def test_journeys_are_listed_a_page_at_a_time(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    with clock.frozen(T0):
        for key in ("c-three", "a-one", "b-two"):
            made = await s.api.post("/v1/journeys", {"key": key, "document": GOOD})
            assert made.status_code == 201, made.text
        first = (await s.api.get("/v1/journeys", limit="2")).json()
        second = (await s.api.get("/v1/journeys", limit="2", cursor=first["next_cursor"])).json()
        everything = (await s.api.get("/v1/journeys")).json()
        bad_cursor = await s.api.get("/v1/journeys", cursor="!!")
        bad_limit = await s.api.get("/v1/journeys", limit="0")
    assert [j["key"] for j in first["items"]] == ["a-one", "b-two"]
    assert [j["key"] for j in second["items"]] == ["c-three"] and second["next_cursor"] is None
    assert len(everything["items"]) == 3 and everything["next_cursor"] is None
    assert bad_cursor.status_code == 422 and bad_cursor.json()["errors"][0]["field"] == "cursor"
    assert bad_limit.status_code == 422 and bad_limit.json()["errors"][0]["field"] == "query.limit"


async def test_other_programs_and_tills_see_nothing(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    key = await s.journey(GOOD)
    other = await make_program(engine)
    stranger = Api(http, await make_key(engine, other, "admin"))
    till = Api(http, await make_key(engine, s.program, "pos"))
    with clock.frozen(T0):
        assert (await stranger.get(f"/v1/journeys/{key}")).status_code == 404
        assert (await stranger.get("/v1/journeys")).json()["items"] == []
        assert (await stranger.post(f"/v1/journeys/{key}/pause")).status_code == 404
        assert (await till.get("/v1/journeys")).status_code == 403
        assert (await till.post("/v1/journeys", {"key": "x", "document": GOOD})).status_code == 403
        page = await s.api.get(f"/v1/journeys/{key}/runs", cursor="nope")
        assert page.status_code == 422 and page.json()["errors"][0]["field"] == "cursor"
