"""The widget's /v1 routes: the shop's server asks for a member's session; an administrator
names the shops whose pages may show the widget."""

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program

T0 = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)


async def new_member(api: Api) -> str:
    answer = await api.post("/v1/members", {"name": "Shopper"})
    assert answer.status_code == 201, answer.text
    member_id: str = answer.json()["id"]
    return member_id


async def test_the_shop_s_server_gets_a_session_for_an_hour(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    member_id = await new_member(api)
    till = Api(http, await make_key(engine, program, "pos"))
    with clock.frozen(T0):
        answer = await till.post(f"/v1/members/{member_id}/widget-sessions", {"max_points": 500})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["token"].startswith("kw_") and len(body["token"]) > 40
    assert body == {
        "token": body["token"],
        "expires_at": "2031-06-15T13:00:00Z",
        "member_id": member_id,
        "max_points": 500,
    }
    plain = await till.post(f"/v1/members/{member_id}/widget-sessions")
    assert plain.status_code == 201 and plain.json()["max_points"] is None
    assert plain.json()["token"] != body["token"]


async def test_a_session_for_another_program_s_member_is_not_found(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    member_id = await new_member(api)
    other = await make_program(engine)
    other_api = Api(http, await make_key(engine, other, "pos"))
    answer = await other_api.post(f"/v1/members/{member_id}/widget-sessions")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["field"] == "member_id"
    missing = await api.post("/v1/members/00000000-0000-4000-8000-000000000000/widget-sessions")
    assert missing.status_code == 404


async def test_a_blocked_member_gets_no_session(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    member_id = await new_member(api)
    await api.post(f"/v1/members/{member_id}/block", {"reason": "fraud"})
    answer = await api.post(f"/v1/members/{member_id}/widget-sessions")
    assert answer.status_code == 403


async def test_a_session_needs_the_permission_to_take_payments(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    member_id = await new_member(api)
    for scope in ("analyst", "partner"):
        other = Api(http, await make_key(engine, program, scope))
        answer = await other.post(f"/v1/members/{member_id}/widget-sessions")
        assert answer.status_code == 403, scope
        assert "payments.take" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_points": "30"}, "max_points"),
        ({"max_points": 0}, "max_points"),
        ({"max_points": 1.5}, "max_points"),
        ({"member_id": "x"}, "member_id"),
    ],
)
async def test_a_bad_session_request_names_the_field(
    program: ProgramContext, api: Api, body: dict[str, Any], field: str
) -> None:
    member_id = await new_member(api)
    answer = await api.post(f"/v1/members/{member_id}/widget-sessions", body)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == field


async def test_the_allowed_origins_are_validated_and_kept_as_browsers_send_them(
    program: ProgramContext, api: Api
) -> None:
    assert (await api.get("/v1/widget/settings")).json() == {"allowed_origins": []}
    saved = await api.put(
        "/v1/widget/settings",
        {
            "allowed_origins": [
                "https://Shop.Example/",
                "https://shop.example",
                "https://m.shop.example:8443",
                "http://localhost:3000",
            ]
        },
    )
    assert saved.status_code == 200, saved.text
    expected = ["https://shop.example", "https://m.shop.example:8443", "http://localhost:3000"]
    assert saved.json() == {"allowed_origins": expected}
    assert (await api.get("/v1/widget/settings")).json() == {"allowed_origins": expected}
    assert (await api.put("/v1/widget/settings", {})).json() == {"allowed_origins": []}


@pytest.mark.parametrize(
    ("origins", "field"),
    [
        (["https://shop.example", "http://shop.example"], "allowed_origins.1"),
        (["https://shop.example/checkout"], "allowed_origins.0"),
        (["*"], "allowed_origins.0"),
        ([42], "allowed_origins.0"),
        ([f"https://s{n}.example" for n in range(21)], "allowed_origins"),
        ("https://shop.example", "allowed_origins"),
    ],
)
async def test_a_bad_origin_is_refused_naming_it_and_nothing_changes(
    program: ProgramContext, api: Api, origins: Any, field: str
) -> None:
    await api.put("/v1/widget/settings", {"allowed_origins": ["https://kept.example"]})
    answer = await api.put("/v1/widget/settings", {"allowed_origins": origins})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == field
    assert (await api.get("/v1/widget/settings")).json() == {
        "allowed_origins": ["https://kept.example"]
    }


async def test_the_settings_are_for_integration_managers_and_per_program(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    till = Api(http, await make_key(engine, program, "pos"))
    assert (await till.get("/v1/widget/settings")).status_code == 403
    refused = await till.put("/v1/widget/settings", {"allowed_origins": ["https://x.example"]})
    assert refused.status_code == 403
    await api.put("/v1/widget/settings", {"allowed_origins": ["https://mine.example"]})
    other = await make_program(engine)
    other_api = Api(http, await make_key(engine, other))
    assert (await other_api.get("/v1/widget/settings")).json() == {"allowed_origins": []}


async def test_a_change_of_the_origins_is_in_the_audit_log(
    program: ProgramContext, api: Api
) -> None:
    await api.put("/v1/widget/settings", {"allowed_origins": ["https://shop.example"]})
    entries = (await api.get("/v1/audit")).json()["items"]
    assert entries[0]["action"] == "PUT /v1/widget/settings"
    assert entries[0]["after"] == {"allowed_origins": ["https://shop.example"]}
