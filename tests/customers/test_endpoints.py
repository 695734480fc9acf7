"""The customer 360 over HTTP: the timeline merges every kind of item newest first, pages
through items at one instant without losing or repeating any, filters by kind; the
purchase list carries lines."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


async def member_with_history(api: Api) -> tuple[str, dict[str, Any]]:
    body = member_body()
    member = (await api.post("/v1/members", body)).json()
    ext = body["external_id"]
    first = purchase_body(ext, 25_050, occurred_at=T0.isoformat())
    first["lines"].append(
        {
            "sku": "SKU-2",
            "name": "Cake",
            "category": "bakery",
            "quantity": 2,
            "unit_price": 500,
            "discount": 0,
        }
    )
    first["total"] = 25_050 + 1_000
    assert (await api.post("/v1/purchases", first)).status_code == 201
    second = purchase_body(ext, 9_000, occurred_at=(T0 + timedelta(days=2)).isoformat())
    assert (await api.post("/v1/purchases", second)).status_code == 201
    returned = await api.post(
        "/v1/returns",
        {
            "external_id": f"r-{uuid.uuid4().hex[:8]}",
            "purchase_external_id": second["external_id"],
            "occurred_at": (T0 + timedelta(days=3)).isoformat(),
            "lines": [{"sku": "SKU-1", "quantity": 1}],
        },
    )
    assert returned.status_code == 201, returned.text
    consent = await api.post(
        f"/v1/members/{member['id']}/consents",
        {"changes": [{"channel": "sms", "purpose": "marketing", "granted": True, "source": "app"}]},
    )
    assert consent.status_code in (200, 201), consent.text
    return member["id"], first


async def test_the_timeline_holds_every_kind_newest_first(api: Api) -> None:
    member_id, _ = await member_with_history(api)
    page = (await api.get(f"/v1/members/{member_id}/timeline", limit=200)).json()
    items = page["items"]
    kinds = {i["type"] for i in items}
    assert {"purchase", "return", "points", "consent"} <= kinds
    instants = [i["at"] for i in items]
    assert instants == sorted(instants, reverse=True)
    purchases = [i for i in items if i["type"] == "purchase"]
    assert [p["data"]["total"] for p in purchases] == [9_000, 26_050]
    assert purchases[1]["summary"] == "Purchase of 260.50 RUB at store-01, earned 260 points"
    ret = next(i for i in items if i["type"] == "return")
    assert ret["data"]["amount"] == 9_000 and ret["data"]["points_taken_back"] == {"points": 90}
    assert page["next_cursor"] is None


async def test_the_type_filter_and_paging_one_at_a_time_lose_and_repeat_nothing(
    api: Api,
) -> None:
    member_id, _ = await member_with_history(api)
    everything = (await api.get(f"/v1/members/{member_id}/timeline", limit=200)).json()["items"]
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get(f"/v1/members/{member_id}/timeline", **params)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [(i["type"], i["id"]) for i in seen] == [(i["type"], i["id"]) for i in everything]
    only = await api.client.get(
        f"/v1/members/{member_id}/timeline",
        params=[("type", "purchase"), ("type", "return")],
        headers=api.headers,
    )
    assert {i["type"] for i in only.json()["items"]} == {"purchase", "return"}


async def test_items_of_one_instant_page_in_a_stable_order(api: Api) -> None:
    body = member_body()
    member = (await api.post("/v1/members", body)).json()
    for _ in range(5):  # five sales at the very same instant (a day's import, say)
        sale = purchase_body(body["external_id"], 1_000, occurred_at=T0.isoformat())
        assert (await api.post("/v1/purchases", sale)).status_code == 201
    seen = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": 2, "type": "purchase"}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get(f"/v1/members/{member['id']}/timeline", **params)).json()
        seen.extend(i["id"] for i in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 5


async def test_the_purchase_list_carries_lines_and_pages(api: Api) -> None:
    member_id, first = await member_with_history(api)
    page = (await api.get(f"/v1/members/{member_id}/purchases", limit=1)).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    older = (
        await api.get(f"/v1/members/{member_id}/purchases", limit=1, cursor=page["next_cursor"])
    ).json()
    purchase = older["items"][0]
    assert purchase["external_id"] == first["external_id"]
    assert [(line["sku"], line["quantity"], line["amount"]) for line in purchase["lines"]] == [
        ("SKU-1", 1, 25_050),
        ("SKU-2", 2, 1_000),
    ]
    assert purchase["earned"] == {"points": 260}


@pytest.mark.parametrize("cursor", ["garbage", "MjAyNi0wMy0wMXxwdXJjaGFzZXxub3QtYS11dWlk"])
async def test_a_foreign_cursor_is_a_422(api: Api, cursor: str) -> None:
    member = (await api.post("/v1/members", member_body())).json()
    answer = await api.get(f"/v1/members/{member['id']}/timeline", cursor=cursor)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "cursor"


async def test_another_program_s_member_is_a_404_and_a_reader_is_needed(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = (await api.post("/v1/members", member_body())).json()
    other = Api(api.client, await make_key(engine, await make_program(engine), "admin"))
    for path in ("timeline", "purchases"):
        assert (await other.get(f"/v1/members/{member['id']}/{path}")).status_code == 404
    missing = await api.get(f"/v1/members/{uuid.uuid4()}/timeline")
    assert missing.status_code == 404
