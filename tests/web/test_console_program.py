"""The console's program pages: the version in force in words, the draft editor (errors at
their line, nothing saved), the simulation (the API's numbers), publishing, versions and
rollback, and who may do what."""

import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import BASE_SETTINGS, Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body
from tests.web.conftest import Browser, console_as

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
RULES: list[dict[str, Any]] = [
    {
        "id": "december-coffee",
        "name": "December coffee",
        "conditions": [
            {"type": "basket_total", "min": 100_000},
            {"type": "store", "stores": ["MSK-01"]},
            {"type": "date_range", "start": "2026-12-01", "end": "2026-12-31"},
        ],
        "effects": [{"type": "multiplier", "factor": "2", "of": ["base"]}],
        "group": "doubling",
    },
    {
        "id": "welcome",
        "trigger": "signup",
        "effects": [{"type": "coupon", "campaign": "welcome-15", "valid_days": 30}],
    },
    {
        "id": "regulars",
        "conditions": [{"type": "purchases_in_window", "days": 30, "min": 8}],
        "effects": [{"type": "tag", "tag": "regular"}, {"type": "points", "amount": 50}],
        "limits": {"periods": [{"per": "member", "period": "month", "times": 1}]},
    },
]
TEXTAREA = re.compile(r'<textarea id="f-document"[^>]*>(.*?)</textarea>', re.S)


@pytest.fixture
async def rich(engine: AsyncEngine) -> ProgramContext:
    return await make_program(
        engine, rules=RULES, groups={"doubling": "best"}, expiry={"policy": "days", "days": 365}
    )


@pytest.fixture
async def rich_api(http: httpx.AsyncClient, engine: AsyncEngine, rich: ProgramContext) -> Api:
    return Api(http, await make_key(engine, rich, "admin"))


def document(**changes: Any) -> dict[str, Any]:
    return {**BASE_SETTINGS, "rules": RULES, "groups": {"doubling": "best"}, **changes}


def textarea(page: httpx.Response) -> str:
    found = TEXTAREA.search(page.text)
    assert found, "the page has the draft editor"
    # A browser drops the newline right after <textarea>: the page puts one there so that
    # text that begins with a newline keeps it.
    return html.unescape(found.group(1).removeprefix("\n"))


def hidden(page: httpx.Response, name: str) -> str:
    """The value of the page's hidden field ``name``."""
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page.text)
    assert found, f"the page's form carries {name}"
    return html.unescape(found.group(1))


def seen(page: httpx.Response, *names: str) -> dict[str, str]:
    """What a confirmation form carries of what it showed."""
    return {name: hidden(page, name) for name in names}


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


async def test_the_version_in_force_reads_in_plain_words(
    browser: Browser, engine: AsyncEngine, rich: ProgramContext
) -> None:
    await console_as(browser, engine, rich, Role.ANALYST)
    page = await browser.get("/console/program")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Version 1" in text and "No draft: the draft is a copy of this version." in text
    assert "On every purchase: +1 point for every RUB1.00" in text
    assert (
        "On a purchase, if the basket total is at least RUB1,000.00, the store is MSK-01 and "
        "the date is from Dec 1, 2026 to Dec 31, 2026: ×2 on what base earns"
    ) in text
    assert "On sign-up: a coupon of the campaign welcome-15, valid 30 days" in text
    assert "the member gets the tag regular; +50 points" in text
    assert "at most 1 time per member a month" in text
    assert "exclusive group doubling: the rule that earns most applies" in text
    assert "Points expire 365 days after they are earned" in text
    russian = await browser.client.get("/console/program", headers={"accept-language": "ru"})
    words = html.unescape(russian.text)
    assert (
        "Действующая программа" in words and "При регистрации: купон кампании welcome-15" in words
    )
    assert "При покупке, если сумма покупки не меньше 1\xa0000,00\xa0₽, магазин — MSK-01" in words
    assert "Баллы сгорают через 365 дней после начисления" in words


async def test_another_programs_rules_are_never_shown(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    await make_program(
        engine, rules=[{"id": "their-secret", "effects": [{"type": "tag", "tag": "x"}]}]
    )
    await console_as(browser, engine, program, Role.MARKETING)
    for path in ("/console/program", "/console/program/draft", "/console/program/versions/1"):
        page = await browser.get(path)
        assert page.status_code == 200 and "their-secret" not in page.text


async def test_a_broken_draft_shows_each_error_at_its_line_and_saves_nothing(
    browser: Browser, engine: AsyncEngine, rich: ProgramContext, rich_api: Api
) -> None:
    await console_as(browser, engine, rich, Role.MARKETING)
    page = await browser.get("/console/program/draft")
    assert (
        page.status_code == 200
        and json.loads(textarea(page))
        == (await rich_api.get("/v1/program/draft")).json()["document"]
    )
    broken = document(
        earning=[{"id": "base", "type": "per_amount", "points": 1, "per": 0}],
        rules=[*RULES[:2], {**RULES[2], "effects": [{"type": "points", "amount": 0}]}],
    )
    text = json.dumps(broken, indent=2)
    answer = await browser.post("/console/program/draft", {"document": text})
    assert answer.status_code == 422
    per, amount = line_of(text, '"per": 0'), line_of(text, '"amount": 0')
    assert f'data-line="{per}"' in answer.text and f'data-line="{amount}"' in answer.text
    assert "earning.0.per" in answer.text and "rules.2.effects.0.amount" in answer.text
    assert textarea(answer) == text  # the user's text stays in the box
    draft = (await rich_api.get("/v1/program/draft")).json()
    assert draft["stored"] is False  # nothing saved

    unknown = document(
        rules=[{"id": "double", "effects": [{"type": "multiplier", "factor": "2", "of": ["nope"]}]}]
    )
    text = json.dumps(unknown, indent=2)
    answer = await browser.post("/console/program/draft", {"document": text})
    assert answer.status_code == 422 and "multiplier of unknown rules" in html.unescape(answer.text)
    # A cross-reference error names the rule: shown at the line where that rule begins.
    rule_starts = line_of(text, '"id": "double"') - 1
    assert f'data-line="{rule_starts}"' in answer.text

    syntax = '{\n  "earning": [\n    {"id": "base",}\n  ]\n}'
    answer = await browser.post("/console/program/draft", {"document": syntax})
    assert answer.status_code == 422 and "line 3, column 19" in answer.text
    assert textarea(answer) == syntax
    assert (await rich_api.get("/v1/program/draft")).json()["stored"] is False


async def test_a_good_draft_is_saved_and_its_changes_are_listed(
    browser: Browser, engine: AsyncEngine, rich: ProgramContext, rich_api: Api
) -> None:
    await console_as(browser, engine, rich, Role.MARKETING)
    changed = document(
        earning=[{"id": "base", "type": "per_amount", "points": 2, "per": 100}],
        rules=[
            *RULES[1:],
            {
                "id": "app-bonus",
                "conditions": [{"type": "channel", "channels": ["app"]}],
                "effects": [{"type": "points", "amount": 30}],
            },
        ],
    )
    answer = await browser.post("/console/program/draft", {"document": json.dumps(changed)})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/program/draft"
    draft = (await rich_api.get("/v1/program/draft")).json()
    assert draft["stored"] is True
    assert [r["id"] for r in draft["document"]["rules"]] == ["welcome", "regulars", "app-bonus"]
    page = await browser.get("/console/program/draft")
    text = html.unescape(page.text)
    assert "The draft is saved." in text
    assert "On a purchase, if the channel is app: +30 points" in text
    assert "On every purchase: +2 points for every RUB1.00" in text  # base, changed
    assert "december-coffee" in text and ">removed<" in page.text
    assert json.loads(textarea(page)) == draft["document"]


async def test_the_simulation_shows_the_numbers_of_the_api(
    browser: Browser, engine: AsyncEngine, rich: ProgramContext, rich_api: Api
) -> None:
    with clock.frozen(T0):
        for n in range(3):
            body = member_body()
            assert (await rich_api.post("/v1/members", body)).status_code == 201
            for day in range(n + 2):
                moment = T0 - timedelta(days=20 - 3 * day, hours=n)
                purchase = purchase_body(
                    body["external_id"], 60_000 + 50_000 * day, occurred_at=moment.isoformat()
                )
                assert (await rich_api.post("/v1/purchases", purchase)).status_code == 201
        draft = document(earning=[{"id": "base", "type": "per_amount", "points": 3, "per": 100}])
        assert (await rich_api.put("/v1/program/draft", draft)).status_code == 200
        await console_as(browser, engine, rich, Role.MARKETING)
        form = await browser.get("/console/program/simulate")
        assert form.status_code == 200 and 'id="simulate-form"' in form.text
        page = await browser.post("/console/program/simulate", {"since": "2026-02-01", "days": ""})
        api = await rich_api.post("/v1/program/simulate", {"since": "2026-02-01T00:00:00Z"})
    assert page.status_code == 200 and api.status_code == 200
    report = api.json()
    assert report["purchases"] == 9
    for rule in report["rules"]:
        for currency in rule["published"]:
            cells = _row(page.text, rule["rule_id"], currency)
            assert cells[:6] == [
                rule["fired_published"],
                rule["fired_draft"],
                rule["members_published"],
                rule["members_draft"],
                rule["published"][currency],
                rule["draft"][currency],
            ]
            assert cells[6] == rule["draft"][currency] - rule["published"][currency]
    base = _row(page.text, "base", "points")
    assert base[5] == 3 * base[4] > 0
    points = next(t for t in report["totals"] if t["currency"] == "points")
    assert f"+{points['liability_change']:,}" in page.text
    assert '<svg class="chart"' in page.text and "base · draft" in page.text


def _row(page: str, rule_id: str, currency: str) -> list[int]:
    found = re.search(
        rf'<tr data-rule="{re.escape(rule_id)}" data-currency="{currency}">(.*?)</tr>', page, re.S
    )
    assert found, f"a row for {rule_id} in {currency}"
    cells = re.findall(r'<td class="num">([^<]*)</td>', found.group(1))
    return [int(c.replace(",", "").replace("+", "")) for c in cells[:7]]


async def test_bad_simulation_input_is_shown_at_the_field(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    page = await browser.post("/console/program/simulate", {"days": "0"})
    assert page.status_code == 422 and 'id="e-days"' in page.text
    page = await browser.post("/console/program/simulate", {"since": "yesterday"})
    assert page.status_code == 422 and 'id="e-since"' in page.text


async def test_publishing_shows_what_members_notice_then_makes_a_version(
    browser: Browser, engine: AsyncEngine, rich: ProgramContext, rich_api: Api
) -> None:
    await console_as(browser, engine, rich, Role.MARKETING)
    nothing = await browser.post("/console/program/publish", {"confirm": "yes"})
    assert nothing.status_code == 409 and "There is no saved draft" in nothing.text
    bonus = {"id": "coffee-bonus", "effects": [{"type": "points", "amount": 25}]}
    draft = document(rules=[*RULES, bonus], pending_days=7)
    assert (await rich_api.put("/v1/program/draft", draft)).status_code == 200
    summary = await browser.get("/console/program/publish")
    text = html.unescape(summary.text)
    assert summary.status_code == 200 and "What members will notice" in text
    assert "coffee-bonus" in text and "On a purchase: +25 points" in text
    assert "Points stay pending for 7 days (the return window)" in text
    assert 'data-confirm="Publish the draft as version 2?"' in summary.text
    asked = await browser.post("/console/program/publish", {"note": "more coffee"})
    assert asked.status_code == 200 and "What members will notice" in asked.text
    assert (await rich_api.get("/v1/program")).json()["version"] == 1  # only asked

    too_long = await browser.post("/console/program/publish", {"confirm": "yes", "note": "x" * 600})
    assert too_long.status_code == 422 and 'id="e-note"' in too_long.text
    assert (await rich_api.get("/v1/program")).json()["version"] == 1

    shown = seen(summary, "in_force_seen", "draft_seen")
    done = await browser.post(
        "/console/program/publish", {"confirm": "yes", "note": "more coffee", **shown}
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/program/versions/2"
    live = (await rich_api.get("/v1/program")).json()
    assert live["version"] == 2 and live["document"]["rules"][-1]["id"] == "coffee-bonus"
    assert (await rich_api.get("/v1/program/versions/2")).json()["note"] == "more coffee"
    page = await browser.get("/console/program/versions/2")
    assert "Version 2 is published." in page.text and "in force" in page.text


async def test_versions_and_rollback(
    browser: Browser, engine: AsyncEngine, rich: ProgramContext, rich_api: Api
) -> None:
    bonus = {"id": "coffee-bonus", "effects": [{"type": "points", "amount": 25}]}
    assert (
        await rich_api.put("/v1/program/draft", document(rules=[*RULES, bonus]))
    ).status_code == 200
    assert (await rich_api.post("/v1/program/publish", {"note": "bonus"})).status_code == 201
    await console_as(browser, engine, rich, Role.OWNER)
    listing = await browser.get("/console/program/versions")
    assert listing.status_code == 200
    assert 'href="/console/program/versions/2"' in listing.text and "bonus" in listing.text
    old = await browser.get("/console/program/versions/1")
    text = html.unescape(old.text)
    assert "December coffee" in text and "coffee-bonus" in text  # its rules; the difference
    assert 'action="/console/program/versions/1/rollback"' in old.text
    assert (await browser.get("/console/program/versions/99")).status_code == 404

    asked = await browser.post("/console/program/versions/1/rollback")
    assert asked.status_code == 200 and "Roll back to version 1" in asked.text
    assert "coffee-bonus" in asked.text and ">removed<" in asked.text
    assert (await rich_api.get("/v1/program")).json()["version"] == 2
    shown = seen(asked, "in_force_seen")
    done = await browser.post("/console/program/versions/1/rollback", {"confirm": "yes", **shown})
    assert done.status_code == 303 and done.headers["location"] == "/console/program/versions/3"
    live = (await rich_api.get("/v1/program")).json()
    assert live["version"] == 3
    assert [r["id"] for r in live["document"]["rules"]] == [r["id"] for r in RULES]
    assert (await rich_api.get("/v1/program/versions/3")).json()["note"] == "rollback to v1"
    asked = await browser.post("/console/program/versions/3/rollback")
    again = await browser.post(
        "/console/program/versions/3/rollback", {"confirm": "yes", **seen(asked, "in_force_seen")}
    )
    assert again.status_code == 409 and "already in force" in again.text


async def test_publishing_puts_in_force_what_was_reviewed_once(
    browser: Browser, engine: AsyncEngine, rich: ProgramContext, rich_api: Api
) -> None:
    await console_as(browser, engine, rich, Role.MARKETING)
    reviewed = document(pending_days=7)
    assert (await rich_api.put("/v1/program/draft", reviewed)).status_code == 200
    summary = await browser.get("/console/program/publish")
    shown = seen(summary, "in_force_seen", "draft_seen")
    assert shown["in_force_seen"] == "1"
    # A colleague changes the draft after the review was shown: not published unseen.
    assert (await rich_api.put("/v1/program/draft", document(pending_days=30))).status_code == 200
    stale = await browser.post("/console/program/publish", {"confirm": "yes", **shown})
    assert stale.status_code == 409
    assert "The draft has changed since this page was shown" in stale.text
    assert "for 30 days" in html.unescape(stale.text)  # the new review, with its own form
    assert (await rich_api.get("/v1/program")).json()["version"] == 1
    # A form that does not say what it showed is refused as well.
    bare = await browser.post("/console/program/publish", {"confirm": "yes"})
    assert bare.status_code == 409 and "does not say what it was shown" in bare.text
    assert (await rich_api.get("/v1/program")).json()["version"] == 1

    fresh = seen(stale, "in_force_seen", "draft_seen")
    assert fresh["draft_seen"] != shown["draft_seen"]
    done = await browser.post("/console/program/publish", {"confirm": "yes", **fresh})
    assert done.status_code == 303 and done.headers["location"] == "/console/program/versions/2"
    assert (await rich_api.get("/v1/program")).json()["document"]["pending_days"] == 30
    # The same form again, once a next draft is saved: not published.
    assert (await rich_api.put("/v1/program/draft", document(pending_days=30))).status_code == 200
    twice = await browser.post("/console/program/publish", {"confirm": "yes", **fresh})
    assert twice.status_code == 409
    assert "Already changed: version 2 is in force now" in twice.text
    assert (await rich_api.get("/v1/program")).json()["version"] == 2
    assert (await rich_api.get("/v1/program/draft")).json()["stored"] is True


async def test_a_rollback_form_sent_again_changes_nothing(
    browser: Browser, engine: AsyncEngine, rich: ProgramContext, rich_api: Api
) -> None:
    bonus = {"id": "coffee-bonus", "effects": [{"type": "points", "amount": 25}]}
    assert (
        await rich_api.put("/v1/program/draft", document(rules=[*RULES, bonus]))
    ).status_code == 200
    assert (await rich_api.post("/v1/program/publish", {})).status_code == 201
    await console_as(browser, engine, rich, Role.OWNER)
    asked = await browser.post("/console/program/versions/1/rollback")
    form = {"confirm": "yes", **seen(asked, "in_force_seen")}
    assert form["in_force_seen"] == "2"
    answers = [await browser.post("/console/program/versions/1/rollback", form) for _ in range(4)]
    assert [a.status_code for a in answers] == [303, 409, 409, 409]
    assert "Already changed: version 3 is in force now" in answers[1].text
    assert hidden(answers[1], "in_force_seen") == "3"  # the form shown again, as of now
    assert (await rich_api.get("/v1/program")).json()["version"] == 3
    bare = await browser.post("/console/program/versions/1/rollback", {"confirm": "yes"})
    assert bare.status_code == 409
    assert (await rich_api.get("/v1/program")).json()["version"] == 3


@pytest.mark.parametrize("role", [Role.ANALYST, Role.SUPPORT])
async def test_roles_without_edit_read_but_change_nothing(
    browser: Browser, engine: AsyncEngine, rich: ProgramContext, rich_api: Api, role: Role
) -> None:
    await console_as(browser, engine, rich, role)
    overview = await browser.get("/console/program")
    assert overview.status_code == 200
    assert 'href="/console/program/publish"' not in overview.text
    assert 'href="/console/program/simulate"' not in overview.text
    draft = await browser.get("/console/program/draft")
    assert draft.status_code == 200 and "Save the draft" not in draft.text
    assert re.search(r'<textarea id="f-document"[^>]* readonly', draft.text)
    text = json.dumps(document(pending_days=3))
    for method, path, data in [
        ("post", "/console/program/draft", {"document": text}),
        ("get", "/console/program/simulate", None),
        ("post", "/console/program/simulate", {"days": "30"}),
        ("get", "/console/program/publish", None),
        ("post", "/console/program/publish", {"confirm": "yes"}),
        ("post", "/console/program/versions/1/rollback", {"confirm": "yes"}),
    ]:
        answer = await (browser.post(path, data) if method == "post" else browser.get(path))
        assert answer.status_code == 403, (path, answer.status_code)
    assert (await rich_api.get("/v1/program/draft")).json()["stored"] is False
    assert (await rich_api.get("/v1/program")).json()["version"] == 1


async def test_marketing_edits_simulates_and_publishes(
    browser: Browser, engine: AsyncEngine, rich: ProgramContext, rich_api: Api
) -> None:
    await console_as(browser, engine, rich, Role.MARKETING)
    overview = await browser.get("/console/program")
    assert 'href="/console/program/publish"' in overview.text
    saved = await browser.post(
        "/console/program/draft", {"document": json.dumps(document(pending_days=3))}
    )
    assert saved.status_code == 303
    draft = await browser.get("/console/program/draft")
    assert "Save the draft" in draft.text and 'href="/console/program/publish"' in draft.text
    crm = await console_as(browser, engine, rich, Role.CRM)  # program.read only: no buttons
    page = await crm.get("/console/program/draft")
    assert "Save the draft" not in page.text and 'href="/console/program/publish"' not in page.text
    assert (await crm.post("/console/program/publish", {"confirm": "yes"})).status_code == 403
    assert (await rich_api.get("/v1/program")).json()["version"] == 1
