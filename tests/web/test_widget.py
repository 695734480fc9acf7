"""The web-shop widget over HTTP: its script, and its API as a shop's page calls it — one
member per token, for an hour, only from the origins the program allows, holds that the
API then shows and the shop's server captures."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import purchase_body

T0 = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)
SHOP = "https://shop.example"
LADDER = {
    "levels": [
        {"id": "silver", "name": "Silver"},
        {"id": "gold", "name": "Gold", "qualify": {"spend": 400_000}},
    ],
    "window": {"kind": "calendar_year"},
}


async def new_member(api: Api, points: int = 0) -> str:
    answer = await api.post("/v1/members", {"name": "Shopper"})
    assert answer.status_code == 201, answer.text
    member_id: str = answer.json()["id"]
    if points:
        given = await api.post(
            "/v1/adjustments",
            {"member": {"id": member_id}, "amount": points, "reason": "welcome"},
        )
        assert given.status_code == 201, given.text
    return member_id


async def session_for(api: Api, member_id: str, **body: Any) -> str:
    answer = await api.post(f"/v1/members/{member_id}/widget-sessions", body or None)
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


async def allow(api: Api, *origins: str) -> None:
    answer = await api.put("/v1/widget/settings", {"allowed_origins": list(origins)})
    assert answer.status_code == 200, answer.text


def widget_headers(token: str, origin: str | None = SHOP, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", **extra}
    if origin is not None:
        headers["Origin"] = origin
    return headers


async def summary(
    http: httpx.AsyncClient, slug: str, token: str, origin: str | None = SHOP, **params: str
) -> httpx.Response:
    return await http.get(
        f"/widget/{slug}/api/summary", params=params, headers=widget_headers(token, origin)
    )


async def hold(
    http: httpx.AsyncClient,
    slug: str,
    token: str,
    points: Any,
    key: str = "attempt-1",
    origin: str | None = SHOP,
) -> httpx.Response:
    return await http.post(
        f"/widget/{slug}/api/holds",
        json={"points": points},
        headers=widget_headers(token, origin, **{"Idempotency-Key": key}),
    )


async def points_of(api: Api, member_id: str) -> dict[str, int]:
    balance = (await api.get(f"/v1/members/{member_id}/balance")).json()
    found: dict[str, int] = next(b for b in balance["balances"] if b["currency"] == "points")
    return found


# --- the script ----------------------------------------------------------------------------


async def test_the_script_is_public_cacheable_javascript(
    http: httpx.AsyncClient, program: ProgramContext
) -> None:
    answer = await http.get(f"/widget/{program.slug}/widget.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.headers["cache-control"].startswith("public, max-age=")
    assert answer.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "document.currentScript" in answer.text and "attachShadow" in answer.text
    assert "eval(" not in answer.text and "new Function" not in answer.text
    assert "innerHTML" not in answer.text
    again = await http.get(
        f"/widget/{program.slug}/widget.js", headers={"If-None-Match": answer.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    style = await http.get(f"/widget/{program.slug}/widget.css")
    assert style.status_code == 200 and style.headers["content-type"] == "text/css; charset=utf-8"
    assert ":host" in style.text


async def test_there_is_no_script_for_a_program_that_does_not_exist(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.get("/widget/no-such-program/widget.js")).status_code == 404


# --- one member per token, for an hour -----------------------------------------------------


async def test_a_token_reads_its_own_member_only(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    anna, boris = await new_member(api, 700), await new_member(api, 40)
    anna_token, boris_token = await session_for(api, anna), await session_for(api, boris)
    anna_sees = await summary(http, program.slug, anna_token)
    boris_sees = await summary(http, program.slug, boris_token)
    assert anna_sees.status_code == 200, anna_sees.text
    assert anna_sees.json()["balance"] == {
        "currency": "points",
        "available": 700,
        "pending": 0,
        "held": 0,
    }
    assert boris_sees.json()["balance"]["available"] == 40
    # Anna's token puts Anna's points on hold, whatever else is sent.
    placed = await hold(http, program.slug, anna_token, 100)
    assert placed.status_code == 201, placed.text
    assert (await points_of(api, anna))["held"] == 100
    assert (await points_of(api, boris))["held"] == 0
    assert (await summary(http, program.slug, boris_token)).json()["balance"]["held"] == 0


async def test_a_token_works_in_its_own_program_and_on_the_widget_s_routes_only(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    other = await make_program(engine)
    other_api = Api(http, await make_key(engine, other))
    await allow(api, SHOP)
    await allow(other_api, SHOP)
    token = await session_for(api, await new_member(api, 100))
    refused = await summary(http, other.slug, token)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.headers["access-control-allow-origin"] == SHOP  # the page learns why
    assert (await hold(http, other.slug, token, 10)).status_code == 401
    # Not an API key: the /v1 API does not take it.
    assert (
        await http.get("/v1/program", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401


async def test_an_expired_token_is_refused(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    member_id = await new_member(api, 100)
    with clock.frozen(T0):
        answer = await api.post(f"/v1/members/{member_id}/widget-sessions")
        assert answer.json()["expires_at"] == "2031-06-15T13:00:00Z"
        token = answer.json()["token"]
    with clock.frozen(T0 + timedelta(minutes=59)):
        assert (await summary(http, program.slug, token)).status_code == 200
    with clock.frozen(T0 + timedelta(hours=1)):
        assert (await summary(http, program.slug, token)).status_code == 401
        assert (await hold(http, program.slug, token, 10)).status_code == 401
    assert (await points_of(api, member_id))["held"] == 0


async def test_a_missing_or_made_up_token_is_refused(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    assert (
        await http.get(f"/widget/{program.slug}/api/summary", headers={"Origin": SHOP})
    ).status_code == 401
    assert (await summary(http, program.slug, "kw_" + "x" * 43)).status_code == 401
    assert (await summary(http, program.slug, "kp_not-a-widget-token")).status_code == 401


async def test_a_blocked_member_s_token_stops_working(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    member_id = await new_member(api, 100)
    token = await session_for(api, member_id)
    blocked = await api.post(f"/v1/members/{member_id}/block", {"reason": "fraud"})
    assert blocked.status_code == 200, blocked.text
    assert (await summary(http, program.slug, token)).status_code == 401
    assert (await hold(http, program.slug, token, 10)).status_code == 401


# --- CORS ----------------------------------------------------------------------------------


async def preflight(
    http: httpx.AsyncClient, slug: str, origin: str, method: str = "POST", path: str = "holds"
) -> httpx.Response:
    return await http.options(
        f"/widget/{slug}/api/{path}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )


async def test_cors_answers_the_allowed_origins_only(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    member_id = await new_member(api, 500)
    token = await session_for(api, member_id)
    # Nothing allowed yet: no page may call.
    refused = await preflight(http, program.slug, SHOP)
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    await allow(api, SHOP, "http://127.0.0.1:8123")

    allowed = await preflight(http, program.slug, SHOP)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert allowed.headers["access-control-allow-methods"] == "GET, POST"
    assert "Idempotency-Key" in allowed.headers["access-control-allow-headers"]
    assert allowed.headers["vary"] == "Origin"
    local = await preflight(http, program.slug, "http://127.0.0.1:8123", "GET", "summary")
    assert local.headers["access-control-allow-origin"] == "http://127.0.0.1:8123"

    for stranger in ("https://evil.example", "https://shop.example:8443", "http://shop.example"):
        other = await preflight(http, program.slug, stranger)
        assert other.status_code == 403, stranger
        assert "access-control-allow-origin" not in other.headers
        actual = await summary(http, program.slug, token, stranger)
        assert actual.status_code == 403 and "access-control-allow-origin" not in actual.headers
        placed = await hold(http, program.slug, token, 10, origin=stranger)
        assert placed.status_code == 403 and "access-control-allow-origin" not in placed.headers
    assert (await points_of(api, member_id))["held"] == 0

    actual = await summary(http, program.slug, token)
    assert actual.status_code == 200
    assert actual.headers["access-control-allow-origin"] == SHOP
    assert actual.headers["cache-control"] == "no-store"
    placed = await hold(http, program.slug, token, 10)
    assert placed.status_code == 201 and placed.headers["access-control-allow-origin"] == SHOP


async def test_a_preflight_asks_only_for_what_the_widget_uses(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    assert (await preflight(http, program.slug, SHOP, "DELETE")).status_code == 403
    odd = await http.options(
        f"/widget/{program.slug}/api/holds",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-anything",
        },
    )
    assert odd.status_code == 403
    assert (await preflight(http, program.slug, SHOP, path="elsewhere")).status_code == 404


async def test_another_program_s_origins_do_not_count(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    other = await make_program(engine)
    await allow(Api(http, await make_key(engine, other)), SHOP)
    assert (await preflight(http, program.slug, SHOP)).status_code == 403


# --- holds ---------------------------------------------------------------------------------


async def test_a_hold_is_what_the_api_shows_as_held_and_the_shop_captures(
    http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    member_id = await new_member(api, 1000)
    token = await session_for(api, member_id)
    placed = await hold(http, program.slug, token, 300)
    assert placed.status_code == 201, placed.text
    answer = placed.json()
    assert answer["points"] == 300 and answer["status"] == "held"
    assert answer["balance"] == {"currency": "points", "available": 700, "pending": 0, "held": 300}
    assert await points_of(api, member_id) == {
        "currency": "points",
        "available": 700,
        "pending": 0,
        "held": 300,
    }
    assert (await summary(http, program.slug, token)).json()["balance"]["held"] == 300
    # The shop's server, with its till's key, captures it when the order is paid.
    till = Api(http, await make_key(engine, program, "pos"))
    captured = await till.post(f"/v1/redemptions/{answer['id']}/capture")
    assert captured.status_code == 200, captured.text
    assert await points_of(api, member_id) == {
        "currency": "points",
        "available": 700,
        "pending": 0,
        "held": 0,
    }
    history = (await api.get(f"/v1/members/{member_id}/history")).json()["items"]
    assert [e["kind"] for e in history[:2]] == ["capture", "hold"]
    assert history[1]["reason"] == "shop widget"


async def test_the_same_idempotency_key_holds_once(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    member_id = await new_member(api, 1000)
    token = await session_for(api, member_id)
    first = await hold(http, program.slug, token, 250, key="pay-7")
    again = await hold(http, program.slug, token, 250, key="pay-7")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert (await points_of(api, member_id))["held"] == 250
    other = await hold(http, program.slug, token, 100, key="pay-7")
    assert other.status_code == 409
    assert (await points_of(api, member_id))["held"] == 250
    # Another session's key of the same spelling is another payment.
    second_token = await session_for(api, member_id)
    assert (await hold(http, program.slug, second_token, 250, key="pay-7")).status_code == 201
    assert (await points_of(api, member_id))["held"] == 500


async def test_more_points_than_the_balance_are_refused_naming_points(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    member_id = await new_member(api, 120)
    token = await session_for(api, member_id)
    refused = await hold(http, program.slug, token, 121)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["access-control-allow-origin"] == SHOP
    assert refused.json()["errors"][0]["field"] == "points"
    assert refused.json()["available"] == 120
    assert await points_of(api, member_id) == {
        "currency": "points",
        "available": 120,
        "pending": 0,
        "held": 0,
    }


async def test_more_points_than_the_shop_allowed_are_refused_naming_points(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    member_id = await new_member(api, 5000)
    token = await session_for(api, member_id, max_points=400)
    seen = (await summary(http, program.slug, token)).json()
    assert seen["points_left"] == 400
    refused = await hold(http, program.slug, token, 401)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "points"
    assert refused.json()["allowed"] == 400
    assert (await points_of(api, member_id))["held"] == 0
    # The cap is the session's: two holds together stay within it.
    assert (await hold(http, program.slug, token, 300, key="a")).status_code == 201
    assert (await summary(http, program.slug, token)).json()["points_left"] == 100
    second = await hold(http, program.slug, token, 101, key="b")
    assert second.status_code == 422 and second.json()["allowed"] == 100
    assert (await hold(http, program.slug, token, 100, key="c")).status_code == 201
    assert (await points_of(api, member_id))["held"] == 400


@pytest.mark.parametrize(
    ("points", "field"),
    [("30", "points"), (True, "points"), (30.0, "points"), (0, "points"), (10**13, "points")],
)
async def test_points_are_a_strict_positive_integer(
    http: httpx.AsyncClient, program: ProgramContext, api: Api, points: Any, field: str
) -> None:
    await allow(api, SHOP)
    member_id = await new_member(api, 100)
    token = await session_for(api, member_id)
    refused = await hold(http, program.slug, token, points)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == field
    assert (await points_of(api, member_id))["held"] == 0


async def test_the_widget_api_takes_small_json_bodies_with_a_key_only(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    member_id = await new_member(api, 100)
    token = await session_for(api, member_id)
    path = f"/widget/{program.slug}/api/holds"
    as_form = await http.post(
        path,
        content=b"points=10",
        headers=widget_headers(
            token,
            **{"Content-Type": "application/x-www-form-urlencoded", "Idempotency-Key": "k"},
        ),
    )
    assert as_form.status_code == 415
    assert as_form.headers["access-control-allow-origin"] == SHOP
    padded = b'{"points": 10' + b" " * 2000 + b"}"
    too_big = await http.post(
        path,
        content=padded,
        headers=widget_headers(
            token, **{"Content-Type": "application/json", "Idempotency-Key": "k"}
        ),
    )
    assert too_big.status_code == 413
    no_key = await http.post(path, json={"points": 10}, headers=widget_headers(token))
    assert no_key.status_code == 422
    assert no_key.json()["errors"][0]["field"] == "Idempotency-Key"
    extra = await hold(http, program.slug, token, 10)
    assert extra.status_code == 201
    broken = await http.post(
        path,
        content=b"{points",
        headers=widget_headers(
            token, **{"Content-Type": "application/json", "Idempotency-Key": "k2"}
        ),
    )
    assert broken.status_code == 422 and broken.json()["errors"][0]["field"] == "body"
    unknown = await http.post(
        path,
        json={"points": 10, "member_id": member_id},
        headers=widget_headers(token, **{"Idempotency-Key": "k3"}),
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "member_id"
    assert (await points_of(api, member_id))["held"] == 10


# --- what the widget shows -----------------------------------------------------------------


async def test_the_summary_has_the_tier_progress_and_affordable_rewards(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    program = await make_program(engine, tiers=LADDER)
    api = Api(http, await make_key(engine, program))
    await allow(api, SHOP)
    for key, price in (("mug", 1000), ("cap", 2500), ("car", 900_000)):
        created = await api.post(
            "/v1/rewards",
            {"key": key, "name": key.title(), "kind": "physical", "price": price},
        )
        assert created.status_code == 201, created.text
    with clock.frozen(T0):
        answer = await api.post("/v1/members", {"name": "Vera", "external_id": "vera"})
        member_id = answer.json()["id"]
        body = purchase_body("vera", 1700 * 100, occurred_at=(T0 - timedelta(days=1)).isoformat())
        assert (await api.post("/v1/purchases", body)).status_code in (200, 201)
        token = await session_for(api, member_id)
        english = (await summary(http, program.slug, token, lang="en")).json()
        russian = (await summary(http, program.slug, token, lang="ru")).json()
    assert english["balance"]["available"] == 1700
    assert english["points_left"] is None
    tier = english["tier"]
    assert (tier["id"], tier["name"], tier["next"]["name"]) == ("silver", "Silver", "Gold")
    assert tier["next"]["share"] == pytest.approx(170_000 / 400_000)
    assert tier["next"]["requirements"] == [
        {"metric": "spend", "threshold": 400_000, "current": 170_000, "missing": 230_000}
    ]
    assert tier["next"]["sentence"] == "Spend RUB2,300 more by 31 December to reach Gold"
    sentence = russian["tier"]["next"]["sentence"].replace("\xa0", " ")
    assert sentence == "Потратьте ещё 2 300 ₽ до 31 декабря, чтобы получить уровень «Gold»"
    assert [r["key"] for r in english["rewards"]] == ["mug"]
    assert english["rewards"][0] == {
        "key": "mug",
        "name": "Mug",
        "price": 1000,
        "currency": "points",
    }


async def test_a_program_without_tiers_has_none_in_the_summary(
    http: httpx.AsyncClient, program: ProgramContext, api: Api
) -> None:
    await allow(api, SHOP)
    token = await session_for(api, await new_member(api, 10))
    found = (await summary(http, program.slug, token, origin=None)).json()
    assert found["tier"] is None and found["rewards"] == []


async def test_a_token_made_before_a_block_stays_dead_after_the_unblock(
    http: httpx.AsyncClient, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    from kopilka.outbox.consumers import registry
    from kopilka.shopwidget.consumers import CONSUMER
    from kopilka.worker.modules import import_consumers
    from kopilka.worker.runner import Worker

    import_consumers()
    await allow(api, SHOP)
    member_id = await new_member(api, points=100)
    token = await session_for(api, member_id)
    assert (await summary(http, program.slug, token)).status_code == 200
    blocked = await api.post(f"/v1/members/{member_id}/block", {"reason": "fraud check"})
    assert blocked.status_code == 200, blocked.text
    assert (await summary(http, program.slug, token)).status_code == 401
    await Worker(engine, [c for c in registry.all() if c.name == CONSUMER]).drain()
    unblocked = await api.post(f"/v1/members/{member_id}/unblock", {"reason": "all clear"})
    assert unblocked.status_code == 200, unblocked.text
    assert (await summary(http, program.slug, token)).status_code == 401
    fresh = await session_for(api, member_id)
    assert (await summary(http, program.slug, fresh)).status_code == 200
