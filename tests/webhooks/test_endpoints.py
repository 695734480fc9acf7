"""The webhooks API: CRUD, paging, bad input named by field, isolation between programs."""

from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Api, make_key, make_program


def fields_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in response.json()["errors"]]


async def test_create_list_get_update_delete(api: Api) -> None:
    created = []
    for n in range(3):
        response = await api.post(
            "/v1/webhooks",
            {"url": f"https://example.com/hook/{n}", "event_types": ["points.*", "tier.upgraded"]},
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    first = created[0]
    assert first["secret"].startswith("whsec_") and first["enabled"] is True
    assert first["event_types"] == ["points.*", "tier.upgraded"]

    page = (await api.get("/v1/webhooks", limit=2)).json()
    assert [h["id"] for h in page["items"]] == [created[0]["id"], created[1]["id"]]
    assert all("secret" not in h for h in page["items"])
    rest = (await api.get("/v1/webhooks", limit=2, cursor=page["next_cursor"])).json()
    assert [h["id"] for h in rest["items"]] == [created[2]["id"]]
    assert rest["next_cursor"] is None

    changed = await api.patch(
        f"/v1/webhooks/{first['id']}",
        {"description": "CRM sync", "enabled": False, "event_types": ["*"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] == "CRM sync" and changed.json()["enabled"] is False
    assert changed.json()["event_types"] == ["*"]

    deleted = await api.client.delete(f"/v1/webhooks/{first['id']}", headers=api.headers)
    assert deleted.status_code == 204
    assert (await api.get(f"/v1/webhooks/{first['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://example.com:99999/"}, "url"),
        ({"url": "http://example.com:0/"}, "url"),
        ({"url": "https://user:secret@example.com/"}, "url"),
        ({"url": 42}, "url"),
        ({"url": "https://example.com", "event_types": []}, "event_types"),
        ({"url": "https://example.com", "event_types": ["po*nts"]}, "event_types"),
        ({"url": "https://example.com", "event_types": ["Points.Earned"]}, "event_types"),
        ({"url": "https://example.com", "enabled": "true"}, "enabled"),
        ({"url": "https://example.com", "description": "x" * 501}, "description"),
        ({"url": "https://example.com", "secret": "whsec_mine"}, "secret"),
        ({}, "url"),
    ],
)
async def test_bad_input_names_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    assert field in fields_of(await api.post("/v1/webhooks", body))


async def test_bad_update_and_bad_cursor(api: Api) -> None:
    hook = (await api.post("/v1/webhooks", {"url": "https://example.com"})).json()
    assert "url" in fields_of(await api.patch(f"/v1/webhooks/{hook['id']}", {"url": "mailto:x"}))
    assert "cursor" in fields_of(await api.get("/v1/webhooks", cursor="garbage"))
    assert "query.limit" in fields_of(await api.get("/v1/webhooks", limit=0))


async def test_another_programs_webhook_is_not_found(
    api: Api, http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    hook = (await api.post("/v1/webhooks", {"url": "https://example.com"})).json()
    other_program = await make_program(engine)
    other = Api(http, await make_key(engine, other_program, "admin"))
    path = f"/v1/webhooks/{hook['id']}"
    assert (await other.get(path)).status_code == 404
    assert (await other.patch(path, {"enabled": False})).status_code == 404
    assert (await other.client.delete(path, headers=other.headers)).status_code == 404
    assert (await other.get(path + "/deliveries")).status_code == 404
    assert (await other.post(path + "/rotate-secret")).status_code == 404
    assert (await other.post(path + "/ping")).status_code == 404
    assert (await other.post(f"{path}/deliveries/{uuid4()}/redeliver")).status_code == 404
    assert (await other.get("/v1/webhooks")).json()["items"] == []
    # Unchanged for its owner.
    assert (await api.get(path)).json()["enabled"] is True


async def test_admin_scope_only(api: Api, http: httpx.AsyncClient, engine: AsyncEngine) -> None:
    pos = Api(http, await make_key(engine, await make_program(engine), "pos"))
    assert (await pos.get("/v1/webhooks")).status_code == 403
    assert (await pos.post("/v1/webhooks", {"url": "https://example.com"})).status_code == 403
