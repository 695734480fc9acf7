"""The console's segments: the list, a segment's page, its members and export, and the
builder — rows of conditions posted as a browser without script posts them, the live
count, JSON for what the rows cannot say — checked against what the API then answers, on
SQLite and PostgreSQL."""

import re
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.crm.predicates import PredicateModel
from kopilka.programs.service import ProgramContext
from kopilka.web.console.segment_fields import predicate_forms
from kopilka.web.console.segment_form import from_definition, to_definition
from kopilka.web.console.segment_labels import PREDICATE_LABELS
from kopilka.web.console.segment_words import Speaker, definition_words
from kopilka.web.i18n import Formats
from tests.conftest import Api, make_key, make_program
from tests.crm.support import new_member
from tests.web.conftest import Browser, console_as

COUNT = re.compile(r'<output id="live-count"[^>]*>([^<]*)</output>')


async def people(api: Api) -> dict[str, dict[str, Any]]:
    """Five members whose cities and tags the tests' conditions pick from."""
    return {
        "anna": await new_member(api, name="Anna", city="Moscow", tags=["vip"]),
        "boris": await new_member(api, name="Boris", city="Kazan", tags=["vip"]),
        "clara": await new_member(api, name="Clara", city="Moscow"),
        "dima": await new_member(api, name="Dima", city="Perm", tags=["vip", "staff"]),
        "eva": await new_member(api, name="Eva"),
    }


def shown_count(html: str) -> str:
    found = COUNT.search(html)
    assert found, "the builder shows its count"
    return found.group(1).strip()


# The builder as a browser without script fills it, a round trip per button.
CITY_ROW = {"c.0.type": "profile", "c.0.shown": "profile", "c.0.p.field": "city"}
VIP_ROW = {"c.1.type": "tags", "c.1.shown": "tags", "c.1.p.tags": "vip"}


async def test_a_segment_built_with_the_rows_counts_as_the_api_does(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await people(api)
    await console_as(browser, engine, program, Role.MARKETING)
    page = await browser.get("/console/segments/new")
    assert page.status_code == 200
    assert 'data-live="/console/segments/preview"' in page.text
    assert 'data-live-target="live-count"' in page.text
    assert 'name="c.0.type"' in page.text
    base = {"key": "moscow-vip", "name": "Moscow VIPs", "mode": "form", "c.join": "all"}
    # Choosing a predicate shows its fields.
    chosen = await browser.post(
        "/console/segments/new", base | {"c.0.type": "profile", "action": "refresh"}
    )
    assert chosen.status_code == 200
    assert 'name="c.0.p.field"' in chosen.text and 'name="c.0.p.one_of"' in chosen.text
    # A second row, then its predicate.
    rows = base | CITY_ROW | {"c.0.p.one_of": "Moscow, Kazan"}
    added = await browser.post("/console/segments/new", rows | {"action": "add-row:c"})
    assert 'name="c.1.type"' in added.text
    assert 'value="Moscow, Kazan"' in added.text  # what was typed stays
    rows |= VIP_ROW
    counted = await browser.post("/console/segments/new", rows | {"action": "count"})
    assert counted.status_code == 200 and shown_count(counted.text) == "2"
    live = await browser.post("/console/segments/preview", rows)
    assert live.status_code == 200 and live.text == "2"
    assert live.headers["content-type"].startswith("text/plain")
    saved = await browser.post("/console/segments/new", rows | {"action": "save"})
    assert saved.status_code == 303 and saved.headers["location"] == "/console/segments/moscow-vip"
    stored = (await api.get("/v1/segments/moscow-vip")).json()
    assert stored["definition"] == {
        "all": [
            {"type": "profile", "field": "city", "one_of": ["Moscow", "Kazan"]},
            {"type": "tags", "tags": ["vip"]},
        ]
    }
    preview = await api.post("/v1/segments/preview", {"definition": stored["definition"]})
    assert preview.json()["count"] == 2
    shown = await browser.get("/console/segments/moscow-vip")
    assert "Moscow VIPs" in shown.text and "Segment created." in shown.text
    assert "Profile field “city” is one of: Moscow, Kazan" in shown.text
    assert "Has any of the tags: vip" in shown.text


async def test_groups_negation_and_removing_rows(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await people(api)
    await console_as(browser, engine, program, Role.CRM)
    base = {"key": "grouped", "name": "Grouped", "mode": "form", "c.join": "all"}
    grouped = await browser.post(
        "/console/segments/new",
        base
        | VIP_ROW
        | {
            "c.0.type": "tags",
            "c.0.shown": "tags",
            "c.0.p.tags": "vip",
            "c.1.type": "",
            "action": "add-group:c",
        },
    )
    assert 'name="c.2.join"' in grouped.text and 'name="c.2.0.type"' in grouped.text
    # Remove the empty second row: the group moves up to c.1.
    removed = await browser.post(
        "/console/segments/new",
        base
        | {
            "c.0.type": "tags",
            "c.0.shown": "tags",
            "c.0.p.tags": "vip",
            "c.1.type": "",
            "c.2.join": "any",
            "c.2.0.type": "",
            "action": "remove:c.1",
        },
    )
    assert 'name="c.1.join"' in removed.text and 'name="c.2.join"' not in removed.text
    # VIPs not on the staff, in Moscow or Perm: Anna and (not) Dima → Anna.
    rows = base | {
        "c.0.type": "tags",
        "c.0.shown": "tags",
        "c.0.p.tags": "vip",
        "c.1.join": "any",
        "c.1.0.type": "profile",
        "c.1.0.shown": "profile",
        "c.1.0.p.field": "city",
        "c.1.0.p.one_of": "Moscow",
        "c.1.1.type": "profile",
        "c.1.1.shown": "profile",
        "c.1.1.p.field": "city",
        "c.1.1.p.one_of": "Perm",
        "c.2.type": "tags",
        "c.2.shown": "tags",
        "c.2.p.tags": "staff",
        "c.2.not": "on",
    }
    assert (await browser.post("/console/segments/preview", rows)).text == "1"
    saved = await browser.post("/console/segments/new", rows | {"action": "save"})
    assert saved.status_code == 303, saved.text
    definition = (await api.get("/v1/segments/grouped")).json()["definition"]
    assert definition["all"][2] == {"not": {"type": "tags", "tags": ["staff"]}}
    assert (await api.post("/v1/segments/preview", {"definition": definition})).json()["count"] == 1
    # The edit page shows the same rows and counts the same.
    edit = await browser.get("/console/segments/grouped/edit")
    assert edit.status_code == 200 and shown_count(edit.text) == "1"
    assert 'name="c.1.1.p.one_of" value="Perm"' in edit.text
    assert 'id="f-c.2.not" type="checkbox" name="c.2.not" value="on" checked' in edit.text


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"c.0.p.range.a": "lots"}, "c.0.p.range.a", "a whole number"),
        ({"c.0.p.range.a": "200"}, "c.0.p.range.a", "less than or equal to 150"),
        ({"c.0.p.range.a": ""}, "c.0", "give min, max or both"),
    ],
)
async def test_an_invalid_condition_is_shown_at_its_field_and_saves_nothing(
    browser: Browser,
    engine: AsyncEngine,
    program: ProgramContext,
    api: Api,
    row: dict[str, str],
    field: str,
    message: str,
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    form = {
        "key": "ages",
        "name": "Ages",
        "mode": "form",
        "c.join": "all",
        "c.0.type": "age",
        "c.0.shown": "age",
        "c.0.p.range.op": "min",
    } | row
    answer = await browser.post("/console/segments/new", form | {"action": "save"})
    assert answer.status_code == 422
    assert message in answer.text
    if field.endswith(".a"):
        assert f'<small id="e-{field}" class="field-error">' in answer.text
        assert f'value="{row["c.0.p.range.a"]}"' in answer.text  # what was typed stays
    assert (await api.get("/v1/segments/ages")).status_code == 404
    live = await browser.post("/console/segments/preview", form)
    assert live.status_code == 422 and message in live.text


async def test_an_unchosen_condition_and_a_taken_key_are_refused_at_their_fields(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    empty = await browser.post(
        "/console/segments/new",
        {
            "key": "empty",
            "name": "Empty",
            "mode": "form",
            "c.join": "all",
            "c.0.type": "",
            "action": "save",
        },
    )
    assert empty.status_code == 422 and 'id="e-c.0.type"' in empty.text
    created = await api.post("/v1/segments", {"key": "taken", "name": "T", "kind": "static"})
    assert created.status_code == 201
    taken = await browser.post(
        "/console/segments/new",
        {
            "key": "taken",
            "name": "Again",
            "mode": "form",
            "c.join": "all",
            **{"c.0.type": "tags", "c.0.shown": "tags", "c.0.p.tags": "vip"},
            "action": "save",
        },
    )
    assert taken.status_code == 422 and 'id="e-key"' in taken.text
    bad_key = await browser.post(
        "/console/segments/new",
        {
            "key": "Not A Key",
            "name": "X",
            "mode": "form",
            "c.join": "all",
            **{"c.0.type": "tags", "c.0.shown": "tags", "c.0.p.tags": "vip"},
            "action": "save",
        },
    )
    assert bad_key.status_code == 422 and 'id="e-key"' in bad_key.text
    assert (await api.get("/v1/segments/taken")).json()["name"] == "T"


async def test_json_for_what_the_rows_cannot_say(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await people(api)
    await console_as(browser, engine, program, Role.MARKETING)
    base = {"key": "by-json", "name": "By JSON", "c.join": "all"}
    as_json = await browser.post(
        "/console/segments/new",
        base
        | {"mode": "form"}
        | CITY_ROW
        | {
            "c.0.p.one_of": "Moscow",
            "action": "to-json",
        },
    )
    assert as_json.status_code == 200 and 'name="definition_json"' in as_json.text
    assert "&#34;one_of&#34;: [" in as_json.text or "&quot;one_of&quot;" in as_json.text
    # A city with a comma in its name: the rows (values separated by commas) cannot say it.
    definition = (
        '{"any": [{"type": "profile", "field": "city", "one_of": ["Moscow, Russia"]},'
        ' {"type": "tags", "tags": ["staff"]}]}'
    )
    json_form = base | {"mode": "json", "definition_json": definition}
    back = await browser.post("/console/segments/new", json_form | {"action": "to-form"})
    assert back.status_code == 422 and 'id="e-definition_json"' in back.text
    broken = await browser.post(
        "/console/segments/new",
        json_form | {"definition_json": '{"all": [{"type": "age"}]}', "action": "save"},
    )
    assert broken.status_code == 422 and "definition.all.0: give min, max or both" in broken.text
    assert (await browser.post("/console/segments/preview", json_form)).text == "1"
    saved = await browser.post("/console/segments/new", json_form | {"action": "save"})
    assert saved.status_code == 303
    edit = await browser.get("/console/segments/by-json/edit")
    assert 'name="definition_json"' in edit.text and shown_count(edit.text) == "1"
    stored = (await api.get("/v1/segments/by-json")).json()
    assert stored["definition"]["any"][0]["one_of"] == ["Moscow, Russia"]


async def test_editing_a_segment_keeps_its_version_unless_the_conditions_change(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await people(api)
    created = await api.post(
        "/v1/segments",
        {
            "key": "vips",
            "name": "VIPs",
            "definition": {"type": "tags", "tags": ["vip"]},
        },
    )
    assert created.status_code == 201
    await console_as(browser, engine, program, Role.MARKETING)
    edit = await browser.get("/console/segments/vips/edit")
    assert shown_count(edit.text) == "3"
    same = {
        "name": "VIPs of the club",
        "mode": "form",
        "c.join": "all",
        "c.0.type": "tags",
        "c.0.shown": "tags",
        "c.0.p.tags": "vip",
        "action": "save",
    }
    assert (await browser.post("/console/segments/vips/edit", same)).status_code == 303
    after = (await api.get("/v1/segments/vips")).json()
    assert after["name"] == "VIPs of the club" and after["version"] == 1
    changed = same | {"c.0.p.tags": "staff"}
    assert (await browser.post("/console/segments/vips/edit", changed)).status_code == 303
    after = (await api.get("/v1/segments/vips")).json()
    assert after["version"] == 2 and after["members"] == 1


async def test_the_list_the_page_members_refresh_export_and_delete(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    found = await people(api)
    await api.post(
        "/v1/segments",
        {
            "key": "vips",
            "name": "VIPs",
            "definition": {"type": "tags", "tags": ["vip"]},
        },
    )
    await console_as(browser, engine, program, Role.OWNER)
    listing = await browser.get("/console/segments")
    assert listing.status_code == 200
    assert 'href="/console/segments/vips"' in listing.text and ">3</td>" in listing.text
    page = await browser.get("/console/segments/vips")
    assert "Has any of the tags: vip" in page.text and "Refresh now" in page.text
    members = await browser.get("/console/segments/vips/members")
    assert members.status_code == 200
    for name in ("anna", "boris", "dima"):
        assert f'href="/console/members/{found[name]["id"]}"' in members.text
    assert found["clara"]["id"] not in members.text
    await api.patch(f"/v1/members/{found['clara']['id']}", {"tags": ["vip"]})
    refreshed = await browser.post("/console/segments/vips/refresh")
    assert refreshed.status_code == 303
    again = await browser.get("/console/segments/vips")
    assert "members now: 4" in again.text  # the notice, once
    assert (await api.get("/v1/segments/vips")).json()["members"] == 4
    export = await browser.get("/console/segments/vips/export.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    api_export = await api.get("/v1/segments/vips/export.csv")
    assert export.text == api_export.text and f"{found['anna']['id']},Anna" in export.text
    deleted = await browser.post("/console/segments/vips/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/console/segments"
    assert (await api.get("/v1/segments/vips")).status_code == 404
    assert 'href="/console/segments/vips"' not in (await browser.get("/console/segments")).text


async def test_roles_without_the_permission_are_refused(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await api.post(
        "/v1/segments",
        {
            "key": "vips",
            "name": "VIPs",
            "definition": {"type": "tags", "tags": ["vip"]},
        },
    )
    analyst = await console_as(browsers(), engine, program, Role.ANALYST)
    page = await analyst.get("/console/segments/vips")
    assert page.status_code == 200
    assert "Refresh now" not in page.text and "Export CSV" not in page.text
    assert "/console/segments/vips/edit" not in page.text
    assert "New segment" not in (await analyst.get("/console/segments")).text
    assert (await analyst.get("/console/segments/new")).status_code == 403
    assert (await analyst.get("/console/segments/vips/edit")).status_code == 403
    assert (await analyst.get("/console/segments/vips/members")).status_code == 403
    assert (await analyst.get("/console/segments/vips/export.csv")).status_code == 403
    assert (await analyst.post("/console/segments/vips/refresh")).status_code == 403
    assert (await analyst.post("/console/segments/vips/delete")).status_code == 403
    rows = {
        "mode": "form",
        "c.join": "all",
        "c.0.type": "tags",
        "c.0.shown": "tags",
        "c.0.p.tags": "vip",
    }
    assert (await analyst.post("/console/segments/preview", rows)).status_code == 200
    support = await console_as(browsers(), engine, program, Role.SUPPORT)
    assert (await support.get("/console/segments")).status_code == 403
    assert (await support.post("/console/segments/preview", rows)).status_code == 403
    assert (await api.get("/v1/segments/vips")).status_code == 200


async def test_the_live_count_refuses_a_form_without_the_csrf_token(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    forged = await browser.client.post(
        "/console/segments/preview",
        data={
            "mode": "form",
            "c.join": "all",
            "c.0.type": "tags",
            "c.0.shown": "tags",
            "c.0.p.tags": "vip",
        },
    )
    assert forged.status_code == 403
    # The page's script sends the token in a header instead: that is accepted.
    header = await browser.client.post(
        "/console/segments/preview",
        data={
            "mode": "form",
            "c.join": "all",
            "c.0.type": "tags",
            "c.0.shown": "tags",
            "c.0.p.tags": "vip",
        },
        headers={"x-csrf-token": await browser.token()},
    )
    assert header.status_code == 200 and header.text == "0"


async def test_another_programs_segments_are_not_seen(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api, http: Any
) -> None:
    other = await make_program(engine)
    theirs = Api(http, await make_key(engine, other, "admin"))
    await theirs.post(
        "/v1/segments",
        {
            "key": "theirs",
            "name": "Theirs",
            "definition": {"type": "tags", "tags": ["vip"]},
        },
    )
    await console_as(browser, engine, program, Role.OWNER)
    assert "Theirs" not in (await browser.get("/console/segments")).text
    assert (await browser.get("/console/segments/theirs")).status_code == 404
    assert (await browser.get("/console/segments/theirs/edit")).status_code == 404
    assert (await browser.get("/console/segments/theirs/export.csv")).status_code == 404
    assert (await browser.post("/console/segments/theirs/delete")).status_code == 404
    assert (await theirs.get("/v1/segments/theirs")).status_code == 200


def test_every_documented_example_is_said_by_the_rows_exactly() -> None:
    """Each definition of docs/segments.md the rows can show comes back from them as it
    means; one they cannot show is left to JSON, never approximated."""
    forms = predicate_forms()
    shown = [
        {
            "all": [
                {"type": "purchases", "measure": "spend", "last_days": 90, "min": 500000},
                {"type": "tier", "tiers": ["gold"]},
                {"type": "consent", "channel": "email"},
                {"not": {"type": "tags", "tags": ["staff"]}},
            ]
        },
        {"type": "attribute", "name": "segment_source", "one_of": ["partner", "web", "42", 7]},
        {"type": "attribute", "name": "flag", "equals": "true"},
        {"type": "bought", "stores": ["store-01"], "skus": ["SKU-9"], "never": True},
        {"type": "birthday_month", "months": [12, 1]},
        {"type": "rfm_group", "groups": ["champions", "need_attention"]},
        {
            "type": "survey_score",
            "survey": "after-purchase",
            "measure": "average",
            "min": 9,
            "last_days": 90,
        },
        {
            "any": [
                {"type": "tier", "tiers": ["gold"]},
                {"not": {"type": "days_since_last_purchase", "max": 60}},
            ]
        },
        {
            "not": {
                "all": [
                    {"type": "age", "min": 18, "max": 18},
                    {"type": "joined", "since": "2026-01-01"},
                ]
            }
        },
    ]
    for definition in shown:
        tree = from_definition(definition, forms)
        assert tree is not None, definition
        again = to_definition(tree, forms)
        assert not again.errors
        assert from_definition(again.definition, forms) is not None
    for unsaid in (
        {"type": "profile", "field": "city", "one_of": ["Moscow, Russia"]},
        {"not": {"not": {"type": "age", "min": 3}}},
        {"type": "no_such_predicate"},
    ):
        assert from_definition(unsaid, forms) is None


@pytest.mark.parametrize(
    ("definition", "english", "russian"),
    [
        (
            {"type": "purchases", "measure": "spend", "last_days": 90, "min": 500000},
            "Spend in the last 90 days: at least RUB5,000.00",
            "Сумма покупок за последние 90 дней: не менее 5\u00a0000,00\u00a0₽",
        ),
        (
            {"type": "points_expiring", "within_days": 21, "min": 5},
            "Points (points) expiring within 21 days: at least 5",
            "Баллы (points), сгорающие в течение 21 дня: не менее 5",
        ),
        (
            {"not": {"type": "age", "min": 18, "max": 35}},
            "Not: Age: from 18 to 35",
            "Не: Возраст: от 18 до 35",
        ),
        (
            {"type": "survey_score", "survey": "nps", "max": 6},
            "Score in survey “nps” (last answer) over the whole history: at most 6",
            "Оценка в опросе «nps» (последний ответ) за всю историю: не более 6",
        ),
    ],
)
def test_definitions_in_words_in_both_languages(
    definition: dict[str, Any], english: str, russian: str
) -> None:
    said_en = definition_words(definition, Formats("en"), "RUB", "points")
    said_ru = definition_words(definition, Formats("ru"), "RUB", "points")
    assert said_en.text == english
    assert said_ru.text == russian


class _Future(PredicateModel):
    """A predicate another feature might register later, without a phrase here."""

    type: str = "future_thing"
    window: int = 30


def test_every_registered_predicate_is_said_and_a_broken_one_is_shown_as_json() -> None:
    # Every predicate the builder names has its own phrase (not the neutral listing).
    assert set(PREDICATE_LABELS) <= set(predicate_forms())
    assert all(hasattr(Speaker, f"_{name}") for name in PREDICATE_LABELS)
    unknown = Speaker(Formats("en"), "RUB", "pts").fallback(_Future())
    assert unknown == "future_thing — window: 30"
    broken = definition_words({"type": "age"}, Formats("en"), "RUB", "pts")
    assert broken.text == '{"type": "age"}'
