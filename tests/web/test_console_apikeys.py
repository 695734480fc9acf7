"""The console's API keys: a key made from the page works against the API and its secret
is shown once; a revoked key stops working; who may list, revoke and make keys."""

import re
from typing import Any

import httpx
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Permission, Role
from kopilka.programs.service import ProgramContext
from kopilka.web.console import apikeys
from tests.conftest import Api, make_key, make_program
from tests.web.conftest import Browser, console_as

SECRET = re.compile(r'id="api-key-secret">(kp_[^<]+)<')


async def test_a_key_made_on_the_page_works_and_is_shown_once(
    browser: Browser, http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.OWNER)
    form = await browser.get("/console/api-keys/new")
    assert form.status_code == 200 and 'name="scopes" value="pos"' in form.text
    made = await browser.post("/console/api-keys/new", {"name": "till 3", "scopes": "pos"})
    assert made.status_code == 200, made.text
    assert "it is shown only this once" in made.text
    found = SECRET.search(made.text)
    assert found
    secret = found.group(1)
    till = Api(http, secret)
    assert (await till.get("/v1/stores")).status_code == 200  # a till reads the stores
    assert (await till.get("/v1/webhooks")).status_code == 403  # not an administrator's
    listed = await browser.get("/console/api-keys")
    assert "till 3" in listed.text and secret[:10] in listed.text
    assert secret not in listed.text  # never shown again
    assert secret not in (await browser.get("/console/audit")).text


async def test_a_key_revoked_on_the_page_stops_working(
    browser: Browser, http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    secret = await make_key(engine, program, "pos")
    till = Api(http, secret)
    assert (await till.get("/v1/stores")).status_code == 200
    await console_as(browser, engine, program, Role.OWNER)
    listed = await browser.get("/console/api-keys")
    key_ids = re.findall(r'action="/console/api-keys/([0-9a-f-]{36})/revoke"', listed.text)
    assert len(key_ids) == 1
    revoked = await browser.post(f"/console/api-keys/{key_ids[0]}/revoke")
    assert revoked.status_code == 303
    assert (await till.get("/v1/stores")).status_code == 401
    assert "No API keys." in (await browser.get("/console/api-keys")).text
    with_revoked = await browser.get("/console/api-keys", revoked="true")
    assert "<td>test</td>" in with_revoked.text and "/revoke" not in with_revoked.text


async def test_a_key_needs_a_name_and_a_scope(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await console_as(browser, engine, program, Role.OWNER)
    unnamed = await browser.post("/console/api-keys/new", {"name": "", "scopes": "pos"})
    assert unnamed.status_code == 422 and "Name the key" in unnamed.text
    scopeless = await browser.post("/console/api-keys/new", {"name": "shop"})
    assert scopeless.status_code == 422 and "scopes must be among" in scopeless.text
    unknown = await browser.post("/console/api-keys/new", {"name": "shop", "scopes": "root"})
    assert unknown.status_code == 422
    names = [k["name"] for k in (await api.get("/v1/api-keys")).json()["items"]]
    assert names == ["test"]  # only the fixture's key


def test_making_a_key_takes_staff_manage_and_listing_integrations_manage() -> None:
    needed: dict[tuple[str, str], Any] = {}
    for route in apikeys.router.routes:
        if isinstance(route, APIRoute):
            for method in route.methods:
                permissions = [
                    getattr(d.call, "permission", None) for d in route.dependant.dependencies
                ]
                needed[(method, route.path)] = next(p for p in permissions if p)
    assert needed[("GET", "/console/api-keys")] is Permission.INTEGRATIONS_MANAGE
    assert needed[("POST", "/console/api-keys/{key_id}/revoke")] is Permission.INTEGRATIONS_MANAGE
    assert needed[("GET", "/console/api-keys/new")] is Permission.STAFF_MANAGE
    assert needed[("POST", "/console/api-keys/new")] is Permission.STAFF_MANAGE


async def test_other_roles_and_programs_are_refused(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    secret = await make_key(engine, program, "pos")
    marketer = await console_as(browsers(), engine, program, Role.MARKETING)
    assert (await marketer.get("/console/api-keys")).status_code == 403
    assert (await marketer.get("/console/api-keys/new")).status_code == 403
    refused = await marketer.post("/console/api-keys/new", {"name": "mine", "scopes": "admin"})
    assert refused.status_code == 403
    other = await make_program(engine)
    stranger = await console_as(browsers(), engine, other, Role.OWNER)
    keys = (await api.get("/v1/api-keys")).json()["items"]
    pos = next(k for k in keys if k["scopes"] == ["pos"])
    assert (await stranger.post(f"/console/api-keys/{pos['id']}/revoke")).status_code == 404
    assert pos["prefix"] not in (await stranger.get("/console/api-keys")).text
    assert secret.startswith(pos["prefix"])
