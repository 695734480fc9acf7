"""The console's stores: the list shows what the API made, with readable opening hours;
forms create, change, close and reopen stores as the API then answers; a CSV file is
imported all or nothing; bad input changes nothing; roles, store limits and programs are
kept apart."""

import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.web.conftest import Browser, console_as

WEEK = {
    "mon": ["08:00-22:00"],
    "tue": ["08:00-22:00"],
    "wed": ["08:00-22:00"],
    "thu": ["08:00-22:00"],
    "fri": ["08:00-22:00"],
    "sat": ["10:00-23:00"],
}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def field_error(page: str, name: str) -> str:
    """The message a form shows beside field ``name``."""
    field = re.escape(f'id="f-{name}"')
    found = re.search(rf'{field}(?:(?!</div>).)*?class="field-error">([^<]*)<', page, re.S)
    assert found, f"no error beside {name}"
    return found.group(1)


async def new_store(api: Api, code: str, **fields: Any) -> dict[str, Any]:
    answer = await api.post("/v1/stores", {"code": code, "name": f"Store {code}", **fields})
    assert answer.status_code == 201, answer.text
    store: dict[str, Any] = answer.json()
    return store


async def store_of(api: Api, code: str) -> dict[str, Any]:
    answer = await api.get(f"/v1/stores/{code}")
    assert answer.status_code == 200, answer.text
    store: dict[str, Any] = answer.json()
    return store


def form_of_store(**fields: str) -> dict[str, str]:
    """A filled store form: every day empty unless given."""
    return {f"hours_{day}": "" for day in DAYS} | {"special_hours": "", "tags": ""} | fields


async def test_the_list_shows_each_store_with_readable_hours_and_status(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_store(
        api, "MSK-001", name="Tverskaya", address="Tverskaya 1", region="moscow", hours=WEEK
    )
    await new_store(api, "SPB-001", name="Nevsky", region="north-west", status="closed")
    await console_as(browser, engine, program, Role.OWNER)
    page = await browser.get("/console/stores")
    assert page.status_code == 200
    assert "Tverskaya" in page.text and "Tverskaya 1" in page.text and "moscow" in page.text
    assert "Mo-Fr 08:00-22:00; Sa 10:00-23:00; Su off" in page.text
    assert "Nevsky" in page.text and 'badge danger">Closed' in page.text
    assert "Not known" in page.text
    assert (
        'href="/console/stores/new"' in page.text and 'href="/console/stores/import"' in page.text
    )
    closed = await browser.get("/console/stores", status="closed")
    assert "Nevsky" in closed.text and "Tverskaya" not in closed.text
    moscow = await browser.get("/console/stores", region="moscow")
    assert "Tverskaya" in moscow.text and "Nevsky" not in moscow.text
    one = await browser.get("/console/stores/MSK-001")
    assert one.status_code == 200 and 'id="store-form"' in one.text
    assert 'name="hours_fri" type="text" value="08:00-22:00"' in one.text
    assert 'name="hours_sun" type="text" value="off"' in one.text


async def test_a_store_made_in_the_console_is_what_the_api_answers(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await console_as(browser, engine, program, Role.OWNER)
    form = form_of_store(
        code="MSK-002",
        name="Arbat",
        address="Arbat 10",
        region="moscow",
        latitude="55,752",
        longitude="37.592",
        timezone="Europe/Moscow",
        hours_mon="9:00-13:00, 14:00-21:00",
        hours_tue="09:00-21:00",
        hours_sat="22:00-02:00",
        hours_sun="off",
        special_hours="2026-12-31 10:00-16:00\n2027-01-01 off",
        tags="pickup, 24h",
        phone="+7 495 123-45-67",
        status="open",
    )
    sent = await browser.post("/console/stores/new", form)
    assert sent.status_code == 303 and sent.headers["location"] == "/console/stores/MSK-002"
    store = await store_of(api, "MSK-002")
    assert store["name"] == "Arbat" and store["latitude"] == 55.752
    assert store["timezone"] == "Europe/Moscow" and store["tags"] == ["24h", "pickup"]
    assert store["hours"]["mon"] == ["09:00-13:00", "14:00-21:00"]
    assert store["hours"]["sat"] == ["22:00-02:00"] and store["hours"]["wed"] == []
    assert store["special_hours"] == {"2026-12-31": ["10:00-16:00"], "2027-01-01": []}
    shown = await browser.get("/console/stores/MSK-002")
    assert "Store MSK-002 created." in shown.text
    assert "Mo 09:00-13:00,14:00-21:00; Tu 09:00-21:00; We-Fr off; Sa 22:00-02:00; Su off" in (
        shown.text
    )


async def test_bad_input_shows_the_fields_message_and_creates_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_store(api, "MSK-001")
    await console_as(browser, engine, program, Role.OWNER)
    base = form_of_store(code="NEW-1", name="New", status="open")
    cases = [
        ({"hours_mon": "09:00-13:00, 12:00-18:00"}, "hours_mon", "overlap"),
        ({"hours_tue": "25:00-26:00"}, "hours_tue", "times of day"),
        ({"latitude": "north", "longitude": "37.6"}, "latitude", "not a number"),
        ({"latitude": "95", "longitude": "37.6"}, "latitude", "less than or equal to 90"),
        ({"latitude": "55.7"}, "longitude", "together"),
        ({"timezone": "Mars/Base"}, "timezone", "unknown time zone"),
        ({"special_hours": "31.12.2026 10:00-16:00"}, "special_hours", "YYYY-MM-DD"),
        ({"code": "MSK-001"}, "code", "already a store"),
        ({"code": "bad code!"}, "code", "pattern"),
    ]
    for change, field, message in cases:
        page = await browser.post("/console/stores/new", {**base, **change})
        assert page.status_code == 422, change
        assert message in field_error(page.text, field), change
        assert 'value="New"' in page.text  # what was typed is kept
    listing = (await api.get("/v1/stores")).json()["items"]
    assert [s["code"] for s in listing] == ["MSK-001"]


async def test_editing_closing_and_reopening_change_what_the_api_answers(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_store(api, "MSK-001", address="Old street 1", hours=WEEK, tags=["coffee"])
    await console_as(browser, engine, program, Role.OWNER)
    edit = form_of_store(
        name="Tverskaya",
        address="",
        region="moscow",
        hours_sun="10:00-18:00",
        **{f"hours_{d}": "08:00-22:00" for d in DAYS[:5]},
        hours_sat="10:00-23:00",
        tags="coffee",
    )
    assert (await browser.post("/console/stores/MSK-001", edit)).status_code == 303
    store = await store_of(api, "MSK-001")
    assert store["name"] == "Tverskaya" and store["address"] is None
    assert store["hours"]["sun"] == ["10:00-18:00"] and store["region"] == "moscow"

    bad = await browser.post("/console/stores/MSK-001", {**edit, "name": "X", "hours_mon": "9-5"})
    assert bad.status_code == 422 and field_error(bad.text, "hours_mon")
    assert (await store_of(api, "MSK-001"))["name"] == "Tverskaya"
    unknown = await browser.post(
        "/console/stores/MSK-001", form_of_store(name="Tverskaya", region="moscow")
    )
    assert unknown.status_code == 303
    assert (await store_of(api, "MSK-001"))["hours"] is None  # every day empty: not known

    closed = await browser.post("/console/stores/MSK-001/status", {"status": "closed"})
    assert closed.status_code == 303
    after = await store_of(api, "MSK-001")
    assert after["status"] == "closed" and after["closed_at"] is not None
    assert "The store is closed." in (await browser.get("/console/stores/MSK-001")).text
    reopened = await browser.post("/console/stores/MSK-001/status", {"status": "open"})
    assert reopened.status_code == 303
    assert (await store_of(api, "MSK-001"))["status"] == "open"


CSV_GOOD = (
    "code,name,region,latitude,longitude,hours,tags\n"
    "MSK-001,Tverskaya,moscow,55.765,37.605,Mo-Fr 08:00-22:00; Sa 10:00-23:00; Su off,coffee\n"
    "SPB-001,Nevsky,north-west,59.935,30.325,24/7,\n"
)
CSV_BAD = (
    "code,name,latitude,longitude,timezone\n"
    "MSK-009,Good one,55.7,37.6,Europe/Moscow\n"
    "MSK-010,Bad latitude,north,37.6,\n"
    "MSK-011,Bad zone,55.7,37.6,Mars/Base\n"
)


async def test_a_csv_file_is_imported_all_or_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_store(api, "MSK-001", name="Old name")
    await console_as(browser, engine, program, Role.OWNER)
    form = await browser.get("/console/stores/import")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text

    checked = await browser.post(
        "/console/stores/import",
        {"dry_run": "on"},
        files={"file": ("stores.csv", CSV_GOOD.encode(), "text/csv")},
    )
    assert checked.status_code == 200 and "A check: nothing was written" in checked.text
    assert "1 new, 1 changed, 0 unchanged." in checked.text
    assert (await store_of(api, "MSK-001"))["name"] == "Old name"

    bad = await browser.post(
        "/console/stores/import", files={"file": ("bad.csv", CSV_BAD.encode(), "text/csv")}
    )
    assert bad.status_code == 422 and "2 bad lines: nothing was imported" in bad.text
    assert "line 3" in bad.text and "line 4" in bad.text and "Mars/Base" in bad.text
    assert (await api.get("/v1/stores/MSK-009")).status_code == 404

    done = await browser.post(
        "/console/stores/import",
        files={"file": ("stores.csv", ("\ufeff" + CSV_GOOD).encode(), "text/csv")},
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/stores"
    assert (await store_of(api, "MSK-001"))["name"] == "Tverskaya"
    assert (await store_of(api, "SPB-001"))["hours"]["sun"] == ["00:00-24:00"]
    listing = await browser.get("/console/stores")
    assert "Imported: 1 created, 1 changed, 0 unchanged." in listing.text

    pasted = await browser.post("/console/stores/import", {"csv": CSV_GOOD})
    assert pasted.status_code == 303  # the same rows again change nothing
    again = await browser.get("/console/stores")
    assert "Imported: 0 created, 0 changed, 2 unchanged." in again.text
    nothing = await browser.post("/console/stores/import", {})
    assert nothing.status_code == 422 and "choose a CSV file" in nothing.text
    latin = await browser.post(
        "/console/stores/import",
        files={"file": ("x.csv", "code,name\nA,Caf\xe9\n".encode("latin-1"))},
    )
    assert latin.status_code == 422 and "not UTF-8" in latin.text


@pytest.mark.parametrize("role", [Role.ANALYST, Role.SUPPORT])
async def test_a_role_without_stores_manage_sees_no_forms_and_is_refused(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api, role: Role
) -> None:
    await new_store(api, "MSK-001", name="Tverskaya")
    await console_as(browser, engine, program, role)
    listing = await browser.get("/console/stores")
    assert listing.status_code == 200 and "Tverskaya" in listing.text
    assert (
        "/console/stores/new" not in listing.text and "/console/stores/import" not in listing.text
    )
    page = await browser.get("/console/stores/MSK-001")
    assert page.status_code == 200
    assert 'id="store-form"' not in page.text and 'id="store-status"' not in page.text
    assert (await browser.get("/console/stores/new")).status_code == 403
    assert (await browser.get("/console/stores/import")).status_code == 403
    for path, data in (
        ("/console/stores/new", form_of_store(code="X-1", name="X")),
        ("/console/stores/MSK-001", form_of_store(name="Renamed")),
        ("/console/stores/MSK-001/status", {"status": "closed"}),
        ("/console/stores/import", {"csv": CSV_GOOD}),
    ):
        assert (await browser.post(path, data)).status_code == 403, path
    store = await store_of(api, "MSK-001")
    assert store["name"] == "Tverskaya" and store["status"] == "open"
    assert (await api.get("/v1/stores/SPB-001")).status_code == 404


async def test_staff_limited_to_some_stores_see_only_those(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_store(api, "MSK-001", name="Tverskaya")
    await new_store(api, "SPB-001", name="Nevsky")
    await console_as(browser, engine, program, Role.STORE_MANAGER, stores=["MSK-001"])
    listing = await browser.get("/console/stores")
    assert "Tverskaya" in listing.text and "Nevsky" not in listing.text
    assert (await browser.get("/console/stores/SPB-001")).status_code == 404


async def test_another_programs_store_is_not_found(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, http: httpx.AsyncClient
) -> None:
    other = await make_program(engine)
    other_api = Api(http, await make_key(engine, other, "admin"))
    await new_store(other_api, "THEIRS-1", name="Their store")
    await console_as(browser, engine, program, Role.OWNER)
    assert "Their store" not in (await browser.get("/console/stores")).text
    assert (await browser.get("/console/stores/THEIRS-1")).status_code == 404
    edit = form_of_store(name="Mine now")
    assert (await browser.post("/console/stores/THEIRS-1", edit)).status_code == 404
    closing = await browser.post("/console/stores/THEIRS-1/status", {"status": "closed"})
    assert closing.status_code == 404
    theirs = await store_of(other_api, "THEIRS-1")
    assert theirs["name"] == "Their store" and theirs["status"] == "open"


async def test_the_pages_speak_russian(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_store(api, "MSK-001", name="Tverskaya", hours=WEEK)
    await console_as(browser, engine, program, Role.OWNER)
    russian = {"accept-language": "ru"}
    listing = await browser.client.get("/console/stores", headers=russian)
    assert "Часы работы" in listing.text and "Новый магазин" in listing.text
    page = await browser.client.get("/console/stores/MSK-001", headers=russian)
    assert "Закрыть магазин" in page.text and "Понедельник" in page.text
    bad = await browser.client.post(
        "/console/stores/import",
        data={"csrf_token": await browser.token(), "csv": CSV_BAD},
        headers=russian,
    )
    assert bad.status_code == 422 and "2 ошибочные строки: ничего не загружено" in bad.text
