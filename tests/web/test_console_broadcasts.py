"""The console's broadcasts: created from the page to a segment, what the API then shows,
started by the worker's sender, paused, resumed and cancelled from the page; bad input
refused at its field; roles and other programs — on SQLite and PostgreSQL."""

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.kit.clock import clock
from kopilka.messaging.sender import MessageSender
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.crm.support import new_member
from tests.web.conftest import Browser, console_as

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
COFFEE = {
    "name": "Coffee week",
    "kind": "broadcast",
    "variables.title": "Coffee week",
    "variables.body": "Double points on coffee until Sunday.",
    "segment": "vips",
    "channels": "inbox",
    "when": "now",
    "action": "create",
}
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def coffee(**changes: str) -> dict[str, str]:
    """The coffee broadcast's form with a new one-time key, as a new page gives it."""
    return COFFEE | {"idempotency_key": f"console-{uuid.uuid4().hex}"} | changes


async def vips(api: Api) -> list[str]:
    """Three members in the ``vips`` segment, one outside it."""
    ids = [
        (await new_member(api, name=name, tags=["vip"]))["id"] for name in ("Anna", "Boris", "Dima")
    ]
    await new_member(api, name="Clara")
    created = await api.post(
        "/v1/segments",
        {"key": "vips", "name": "VIPs", "definition": {"type": "tags", "tags": ["vip"]}},
    )
    assert created.status_code == 201, created.text
    return ids


async def test_a_broadcast_made_and_run_from_the_pages_is_what_the_api_shows(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await vips(api)
    with clock.frozen(T0):
        await console_as(browser, engine, program, Role.MARKETING)
        form = await browser.get("/console/broadcasts/new")
        assert form.status_code == 200 and '<option value="vips">VIPs (3)</option>' in form.text
        key = KEY.search(form.text)
        assert key
        made = await browser.post("/console/broadcasts/new", COFFEE | {"idempotency_key": key[1]})
        assert made.status_code == 303, made.text
        page_url = made.headers["location"]
        broadcast_id = page_url.rsplit("/", 1)[1]
        shown = (await api.get(f"/v1/broadcasts/{broadcast_id}")).json()
        assert shown["name"] == "Coffee week" and shown["status"] == "scheduled"
        assert shown["total"] == 3 and shown["channels"] == ["inbox"]
        page = await browser.get(page_url)
        assert "Broadcast created for 3 members." in page.text
        assert "Members done: 0 of 3" in page.text and ">Pause</button>" in page.text
        # Paused, it is not started; resumed, it is.
        assert (await browser.post(f"{page_url}/pause")).status_code == 303
        assert (await api.get(f"/v1/broadcasts/{broadcast_id}")).json()["status"] == "paused"
        assert await MessageSender(engine, {}).expand_broadcasts() >= 0
        assert (await api.get(f"/v1/broadcasts/{broadcast_id}")).json()["done"] == 0
        paused = await browser.get(page_url)
        assert ">Resume</button>" in paused.text and ">Pause</button>" not in paused.text
        assert (await browser.post(f"{page_url}/resume")).status_code == 303
        assert (await api.get(f"/v1/broadcasts/{broadcast_id}")).json()["status"] == "running"
        await MessageSender(engine, {}).expand_broadcasts()
        after = (await api.get(f"/v1/broadcasts/{broadcast_id}")).json()
        assert after["status"] == "done" and after["done"] == 3
        assert after["counts"] == {"delivered": 3}  # inbox copies are delivered at once
        done = await browser.get(page_url)
        assert "Members done: 3 of 3" in done.text
        assert '<th scope="row">delivered</th><td class="num">3</td>' in done.text
        assert ">Pause</button>" not in done.text  # nothing is left to stop
        listing = await browser.get("/console/broadcasts")
        assert f'href="/console/broadcasts/{broadcast_id}"' in listing.text
        # Another one, later, then cancelled.
        later = await browser.post(
            "/console/broadcasts/new",
            coffee(name="Spring", when="later", send_at="2031-04-01T10:00"),
        )
        assert later.status_code == 303
        later_id = later.headers["location"].rsplit("/", 1)[1]
        scheduled = (await api.get(f"/v1/broadcasts/{later_id}")).json()
        assert scheduled["scheduled_at"].startswith("2031-04-01T10:00")  # a UTC program
        assert (await browser.post(f"/console/broadcasts/{later_id}/cancel")).status_code == 303
        assert (await api.get(f"/v1/broadcasts/{later_id}")).json()["status"] == "cancelled"
        # A cancelled broadcast cannot be resumed: the page says why.
        refused = await browser.post(f"/console/broadcasts/{later_id}/resume")
        assert refused.status_code == 409 and "cannot resume it" in refused.text


async def test_bad_input_is_refused_at_its_field_and_makes_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await vips(api)
    await console_as(browser, engine, program, Role.CRM)
    no_title = await browser.post("/console/broadcasts/new", coffee(**{"variables.title": ""}))
    assert no_title.status_code == 422 and "title" in no_title.text
    assert "Double points on coffee until Sunday." in no_title.text  # what was typed stays
    no_segment = await browser.post("/console/broadcasts/new", coffee(segment=""))
    assert no_segment.status_code == 422 and 'id="e-segment"' in no_segment.text
    unknown = await browser.post("/console/broadcasts/new", coffee(segment="nobody"))
    assert unknown.status_code in (404, 422)
    bad_time = await browser.post(
        "/console/broadcasts/new", coffee(when="later", send_at="next week")
    )
    assert bad_time.status_code == 422 and 'id="e-send_at"' in bad_time.text
    no_name = await browser.post("/console/broadcasts/new", coffee(name=""))
    assert no_name.status_code == 422 and 'id="e-name"' in no_name.text
    assert (await api.get("/v1/broadcasts")).json()["items"] == []
    # Another kind shows its own variables.
    other = await browser.post(
        "/console/broadcasts/new", COFFEE | {"kind": "survey_invitation", "action": "refresh"}
    )
    assert other.status_code == 200 and 'name="variables.survey"' in other.text
    assert 'name="variables.title"' not in other.text


async def test_the_form_sent_twice_makes_one_broadcast(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await vips(api)
    await console_as(browser, engine, program, Role.MARKETING)
    page = await browser.get("/console/broadcasts/new")
    key = KEY.search(page.text)
    assert key
    form = COFFEE | {"idempotency_key": key[1]}
    first = await browser.post("/console/broadcasts/new", form)
    second = await browser.post("/console/broadcasts/new", form)  # a double click
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len((await api.get("/v1/broadcasts")).json()["items"]) == 1
    log = (await api.get("/v1/audit")).json()["items"]
    assert [e["action"] for e in log].count("POST /console/broadcasts/new") == 1
    # The same key with other values: refused above the form, which gets a new key.
    changed = await browser.post("/console/broadcasts/new", form | {"name": "Other"})
    assert changed.status_code == 422 and "This form was sent already" in changed.text
    assert key[1] not in changed.text
    # A new page's key makes another broadcast.
    fresh = KEY.search((await browser.get("/console/broadcasts/new")).text)
    assert fresh and fresh[1] != key[1]
    other = await browser.post("/console/broadcasts/new", COFFEE | {"idempotency_key": fresh[1]})
    assert other.status_code == 303
    assert len((await api.get("/v1/broadcasts")).json()["items"]) == 2


@pytest.mark.parametrize("key", [None, "", "short", "not a key!"])
async def test_a_form_without_a_good_key_makes_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api, key: str | None
) -> None:
    await vips(api)
    await console_as(browser, engine, program, Role.MARKETING)
    form = COFFEE if key is None else COFFEE | {"idempotency_key": key}
    refused = await browser.post("/console/broadcasts/new", form)
    assert refused.status_code == 422 and "one-time key" in refused.text
    shown = KEY.search(refused.text)
    assert shown and shown[1] != key and "Double points on coffee" in refused.text
    assert (await api.get("/v1/broadcasts")).json()["items"] == []


async def test_roles_without_the_permission_are_refused(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await vips(api)
    made = await api.post(
        "/v1/broadcasts",
        {
            "name": "API made",
            "variables": {"title": "T", "body": "B"},
            "segment": "vips",
            "channels": ["inbox"],
        },
    )
    assert made.status_code == 201, made.text
    broadcast_id = made.json()["id"]
    support = await console_as(browsers(), engine, program, Role.SUPPORT)
    listing = await support.get("/console/broadcasts")
    assert listing.status_code == 200 and "API made" in listing.text
    assert "New broadcast" not in listing.text
    page = await support.get(f"/console/broadcasts/{broadcast_id}")
    assert page.status_code == 200 and ">Pause</button>" not in page.text
    assert (await support.get("/console/broadcasts/new")).status_code == 403
    assert (await support.post("/console/broadcasts/new", COFFEE)).status_code == 403
    assert (await support.post(f"/console/broadcasts/{broadcast_id}/pause")).status_code == 403
    analyst = await console_as(browsers(), engine, program, Role.ANALYST)
    assert (await analyst.get("/console/broadcasts")).status_code == 403
    assert (await analyst.get(f"/console/broadcasts/{broadcast_id}")).status_code == 403
    assert (await api.get(f"/v1/broadcasts/{broadcast_id}")).json()["status"] == "scheduled"
    assert len((await api.get("/v1/broadcasts")).json()["items"]) == 1


async def test_another_programs_broadcasts_are_not_seen(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, http: Any
) -> None:
    other = await make_program(engine)
    theirs = Api(http, await make_key(engine, other, "admin"))
    member = await new_member(theirs, name="Theirs")
    made = await theirs.post(
        "/v1/broadcasts",
        {
            "name": "Their broadcast",
            "variables": {"title": "T", "body": "B"},
            "members": [member["id"]],
            "channels": ["inbox"],
        },
    )
    assert made.status_code == 201, made.text
    their_id = made.json()["id"]
    await console_as(browser, engine, program, Role.OWNER)
    assert "Their broadcast" not in (await browser.get("/console/broadcasts")).text
    assert (await browser.get(f"/console/broadcasts/{their_id}")).status_code == 404
    assert (await browser.post(f"/console/broadcasts/{their_id}/pause")).status_code == 404
    assert (await theirs.get(f"/v1/broadcasts/{their_id}")).json()["status"] == "scheduled"
    # A page whose address names nothing does not exist (app.py's handler).
    assert (await browser.get("/console/broadcasts/not-an-id")).status_code == 404
