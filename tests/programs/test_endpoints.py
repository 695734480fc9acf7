"""The program document over HTTP: draft, publish, history, rollback, on both databases."""

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.programs.service import ProgramContext
from tests.conftest import BASE_SETTINGS, Api, make_key
from tests.fixtures.factories import member_body, purchase_body


def document(points: int, per: int = 100) -> dict[str, Any]:
    return {
        **BASE_SETTINGS,
        "earning": [{"id": "base", "type": "per_amount", "points": points, "per": per}],
    }


def base_rule(body: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = body["document"]["earning"][0]
    return rule


async def points_for_a_purchase(api: Api, member: str, total: int = 10_000) -> int:
    response = await api.post("/v1/purchases", purchase_body(member, total))
    assert response.status_code == 201, response.text
    points: int = response.json()["points_earned"]
    return points


async def test_the_program_in_force(api: Api, program: ProgramContext) -> None:
    response = await api.get("/v1/program")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["slug"], body["name"], body["version"]) == (program.slug, program.name, 1)
    assert base_rule(body)["points"] == 1 and base_rule(body)["per"] == 100


async def test_draft_round_trip(api: Api) -> None:
    untouched = (await api.get("/v1/program/draft")).json()
    assert untouched["stored"] is False and untouched["version_in_force"] == 1
    assert base_rule(untouched)["points"] == 1

    saved = await api.put("/v1/program/draft", document(points=3))
    assert saved.status_code == 200, saved.text
    assert saved.json()["stored"] is True
    read_back = (await api.get("/v1/program/draft")).json()
    assert read_back["stored"] is True and base_rule(read_back)["points"] == 3
    # Defaults are filled in: the stored draft is the document as it will be published.
    assert read_back["document"]["pending_days"] == 0
    assert (await api.get("/v1/program")).json()["version"] == 1


async def test_invalid_draft_is_422_naming_the_field_and_changes_nothing(api: Api) -> None:
    await api.put("/v1/program/draft", document(points=3))
    bad = await api.put("/v1/program/draft", document(points=1, per=0))
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "earning.0.per"
    unknown_key = await api.put("/v1/program/draft", {**document(points=1), "colour": "red"})
    assert unknown_key.status_code == 422
    assert unknown_key.json()["errors"][0]["field"] == "colour"
    not_an_object = await api.put("/v1/program/draft", [1, 2])
    assert not_an_object.status_code == 422
    draft = (await api.get("/v1/program/draft")).json()
    assert base_rule(draft)["points"] == 3


async def test_publish_changes_the_purchase_path_at_once(api: Api) -> None:
    member = member_body()
    assert (await api.post("/v1/members", member)).status_code == 201
    assert await points_for_a_purchase(api, member["external_id"]) == 100

    await api.put("/v1/program/draft", document(points=2))
    published = await api.post("/v1/program/publish", {"note": "double points"})
    assert published.status_code == 201, published.text
    body = published.json()
    assert (body["version"], body["status"], body["note"]) == (2, "published", "double points")
    assert (await api.get("/v1/program")).json()["version"] == 2
    # 100.00 ₽ at 2 points per rouble, from the very next purchase.
    assert await points_for_a_purchase(api, member["external_id"]) == 200
    assert (await api.get("/v1/program/draft")).json()["stored"] is False


async def test_publish_without_a_draft_is_409(api: Api) -> None:
    response = await api.post("/v1/program/publish")
    assert response.status_code == 409
    await api.put("/v1/program/draft", document(points=2))
    unknown_field = await api.post("/v1/program/publish", {"comment": "typo"})
    assert unknown_field.status_code == 422
    assert unknown_field.json()["errors"][0]["field"] == "comment"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await api.get("/v1/program")).json()["version"] == 1


async def test_history_and_rollback(api: Api) -> None:
    member = member_body()
    await api.post("/v1/members", member)
    await api.put("/v1/program/draft", document(points=2))
    await api.post("/v1/program/publish")

    rolled = await api.post("/v1/program/versions/1/publish")
    assert rolled.status_code == 201, rolled.text
    assert (rolled.json()["version"], rolled.json()["note"]) == (3, "rollback to v1")
    assert await points_for_a_purchase(api, member["external_id"]) == 100

    listed = (await api.get("/v1/program/versions")).json()
    assert [(v["version"], v["status"]) for v in listed["items"]] == [
        (3, "published"),
        (2, "published"),
        (1, "published"),
    ]
    assert listed["next_cursor"] is None and "document" not in listed["items"][0]
    first = (await api.get("/v1/program/versions/1")).json()
    assert first["document"] == rolled.json()["document"]
    assert base_rule((await api.get("/v1/program/versions/2")).json())["points"] == 2
    assert (await api.get("/v1/program/versions/99")).status_code == 404
    assert (await api.post("/v1/program/versions/99/publish")).status_code == 404
    assert (await api.post("/v1/program/versions/3/publish")).status_code == 409

    noted = await api.post("/v1/program/versions/2/publish", {"note": "double again"})
    assert (noted.json()["version"], noted.json()["note"]) == (4, "double again")


async def test_versions_are_paginated(api: Api) -> None:
    for points in (2, 3):
        await api.put("/v1/program/draft", document(points=points))
        await api.post("/v1/program/publish")
    page = (await api.get("/v1/program/versions", limit=2)).json()
    assert [v["version"] for v in page["items"]] == [3, 2]
    rest = (await api.get("/v1/program/versions", limit=2, cursor=page["next_cursor"])).json()
    assert [v["version"] for v in rest["items"]] == [1]
    assert (await api.get("/v1/program/versions", cursor="x")).status_code == 422


async def test_scopes(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    pos = Api(http, await make_key(engine, program, "pos"))
    analyst = Api(http, await make_key(engine, program, "analyst"))
    assert (await pos.put("/v1/program/draft", document(points=2))).status_code == 403
    assert (await pos.get("/v1/program/draft")).status_code == 403
    assert (await pos.post("/v1/program/publish")).status_code == 403
    assert (await analyst.post("/v1/program/versions/1/publish")).status_code == 403
    for reader in (pos, analyst):
        assert (await reader.get("/v1/program")).status_code == 200
        assert (await reader.get("/v1/program/versions")).status_code == 200
        assert (await reader.get("/v1/program/versions/1")).status_code == 200
    anonymous = await http.get("/v1/program")
    assert anonymous.status_code == 401
