"""Apple's pass web service: a device registers for a pass with its token (a wrong one is a
401), learns which passes changed since a tag, fetches the latest pass (304 when it has not
changed), unregisters; devices' logs are taken."""

import io
import json
import zipfile
from datetime import timedelta
from email.utils import format_datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.wallet.service import wallet_service
from tests.conftest import Api
from tests.fixtures.factories import purchase_body
from tests.wallet.certs import PASS_TYPE, T0, set_up_wallets

SERVICE = "/wallet/apple/v1"
PUSH_TOKEN = "f" * 64


async def member(api: Api, name: str) -> str:
    made = await api.post("/v1/members", {"name": name, "external_id": name})
    assert made.status_code == 201, made.text
    member_id: str = made.json()["id"]
    return member_id


async def pass_of(engine: AsyncEngine, program: ProgramContext, member_id: str) -> dict[str, Any]:
    """The pass.json the member's app would hand out."""
    async with reading(engine) as conn:
        made = await wallet_service.apple_pass(conn, program, UUID(member_id), clock.now())
    with zipfile.ZipFile(io.BytesIO(made.content)) as archive:
        found: dict[str, Any] = json.loads(archive.read("pass.json"))
    return found


def new_device() -> str:
    """A device's library id, its own per test (the tests share their databases)."""
    return uuid4().hex


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"ApplePass {token}"}


def points_of(content: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        document = json.loads(archive.read("pass.json"))
    points: int = document["storeCard"]["headerFields"][0]["value"]
    return points


async def test_a_device_registers_learns_what_changed_and_fetches_the_pass(
    api: Api, http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    device = new_device()
    with clock.frozen(T0):
        await set_up_wallets(api)
        anna = await member(api, "anna")
        document = await pass_of(engine, program, anna)
        token, serial = document["authenticationToken"], document["serialNumber"]
        registration = f"{SERVICE}/devices/{device}/registrations/{PASS_TYPE}/{serial}"
        created = await http.post(registration, json={"pushToken": PUSH_TOKEN}, headers=auth(token))
        again = await http.post(registration, json={"pushToken": PUSH_TOKEN}, headers=auth(token))
        listing = f"{SERVICE}/devices/{device}/registrations/{PASS_TYPE}"
        everything = await http.get(listing)
    assert (created.status_code, again.status_code) == (201, 200)
    assert everything.status_code == 200
    tag = everything.json()["lastUpdated"]
    assert everything.json()["serialNumbers"] == [serial]

    with clock.frozen(T0 + timedelta(minutes=1)):
        unchanged = await http.get(listing, params={"passesUpdatedSince": tag})
        latest = await http.get(f"{SERVICE}/passes/{PASS_TYPE}/{serial}", headers=auth(token))
        modified = latest.headers["last-modified"]
        not_modified = await http.get(
            f"{SERVICE}/passes/{PASS_TYPE}/{serial}",
            headers={**auth(token), "If-Modified-Since": modified},
        )
    assert unchanged.status_code == 204
    assert latest.status_code == 200 and latest.headers["content-type"] == (
        "application/vnd.apple.pkpass"
    )
    assert modified == format_datetime(T0, usegmt=True) and points_of(latest.content) == 0
    assert not_modified.status_code == 304 and not_modified.content == b""

    # A purchase changes the balance: the pass is listed as changed, and served anew.
    with clock.frozen(T0 + timedelta(minutes=2)):
        body = purchase_body("anna", 30_000, occurred_at=clock.now().isoformat())
        assert (await api.post("/v1/purchases", body)).status_code == 201
    with clock.frozen(T0 + timedelta(minutes=3)):
        changed = await http.get(listing, params={"passesUpdatedSince": tag})
        fresh = await http.get(
            f"{SERVICE}/passes/{PASS_TYPE}/{serial}",
            headers={**auth(token), "If-Modified-Since": modified},
        )
    assert changed.status_code == 200 and changed.json()["serialNumbers"] == [serial]
    assert int(changed.json()["lastUpdated"]) > int(tag)
    assert fresh.status_code == 200 and points_of(fresh.content) == 300
    assert fresh.headers["last-modified"] == format_datetime(T0 + timedelta(minutes=2), usegmt=True)

    gone = await http.delete(registration, headers=auth(token))
    assert gone.status_code == 200
    assert (await http.get(listing)).status_code == 204


async def test_a_wrong_token_is_a_401_and_a_pass_is_only_its_own_member_s(
    api: Api, http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    device = new_device()
    with clock.frozen(T0):
        await set_up_wallets(api)
        anna = await pass_of(engine, program, await member(api, "anna"))
        boris = await pass_of(engine, program, await member(api, "boris"))
    anna_pass = f"{SERVICE}/passes/{PASS_TYPE}/{anna['serialNumber']}"
    anna_registration = (
        f"{SERVICE}/devices/{device}/registrations/{PASS_TYPE}/{anna['serialNumber']}"
    )
    refused = [
        await http.get(anna_pass),
        await http.get(anna_pass, headers=auth("0" * 64)),
        await http.get(anna_pass, headers=auth(boris["authenticationToken"])),
        await http.get(
            anna_pass, headers={"Authorization": f"Bearer {anna['authenticationToken']}"}
        ),
        await http.get(
            f"{SERVICE}/passes/pass.dev.other/{anna['serialNumber']}",
            headers=auth(anna["authenticationToken"]),
        ),
        await http.post(
            anna_registration,
            json={"pushToken": PUSH_TOKEN},
            headers=auth(boris["authenticationToken"]),
        ),
        await http.delete(anna_registration, headers=auth("x" * 64)),
    ]
    assert [r.status_code for r in refused] == [401] * len(refused)
    listing = await http.get(f"{SERVICE}/devices/{device}/registrations/{PASS_TYPE}")
    assert listing.status_code == 204  # nothing was registered
    mine = await http.get(anna_pass, headers=auth(anna["authenticationToken"]))
    assert mine.status_code == 200


async def test_another_program_s_token_opens_none_of_its_passes(
    api: Api, http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        await set_up_wallets(api)
        anna = await pass_of(engine, program, await member(api, "anna"))
    # The same serial under another program's secret is another token.
    forged = anna["authenticationToken"][::-1]
    answer = await http.get(
        f"{SERVICE}/passes/{PASS_TYPE}/{anna['serialNumber']}", headers=auth(forged)
    )
    assert answer.status_code == 401


async def test_bad_requests_of_devices_are_refused_and_their_logs_taken(
    api: Api, http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    device = new_device()
    with clock.frozen(T0):
        await set_up_wallets(api)
        anna = await pass_of(engine, program, await member(api, "anna"))
    registration = f"{SERVICE}/devices/{device}/registrations/{PASS_TYPE}/{anna['serialNumber']}"
    token = auth(anna["authenticationToken"])
    assert (await http.post(registration, json={}, headers=token)).status_code == 400
    assert (await http.post(registration, content=b"{", headers=token)).status_code == 400
    assert (await http.post(f"{SERVICE}/log", json={"logs": ["bad pass"]})).status_code == 200
    assert (await http.post(f"{SERVICE}/log", json={"no": 1})).status_code == 400
    bad_tag = await http.get(
        f"{SERVICE}/devices/{device}/registrations/{PASS_TYPE}",
        params={"passesUpdatedSince": "yesterday"},
    )
    assert bad_tag.status_code == 204  # no registrations: an unreadable tag is no tag


async def test_erasing_a_member_forgets_the_devices_holding_their_pass(
    api: Api, http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    device = new_device()
    with clock.frozen(T0):
        await set_up_wallets(api)
        anna = await member(api, "anna-erased")
        document = await pass_of(engine, program, anna)
        token, serial = document["authenticationToken"], document["serialNumber"]
        registration = f"{SERVICE}/devices/{device}/registrations/{PASS_TYPE}/{serial}"
        created = await http.post(registration, json={"pushToken": PUSH_TOKEN}, headers=auth(token))
        assert created.status_code == 201
        listing = f"{SERVICE}/devices/{device}/registrations/{PASS_TYPE}"
        assert (await http.get(listing)).json()["serialNumbers"] == [serial]
        erased = await api.post(f"/v1/members/{anna}/erase", {"reason": "asked to"})
        assert erased.status_code == 200, erased.text
        assert (await http.get(listing)).status_code == 204
