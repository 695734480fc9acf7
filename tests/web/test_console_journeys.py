"""The console's journeys: the list, a journey's page in words with the counts on each step
after members went through it (driven by the consumer and the frequent job), the editor of
a new journey and of a draft (a bad document refused at its field, nothing stored), the
publish, pause, resume and archive forms, the runs; roles and other programs — on SQLite
and PostgreSQL."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.journeys.tasks import advance_program
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.crm.support import worker
from tests.fixtures.factories import member_body
from tests.web.conftest import Browser, console_as

T0 = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
WELCOME: dict[str, Any] = {
    "name": "Welcome",
    "entry": {"type": "event", "event": "member.registered"},
    "goal": {"event": "purchase.recorded", "within_days": 14},
    "steps": [
        {"id": "gift", "type": "points", "amount": 100, "reason": "welcome"},
        {"id": "pause", "type": "wait", "days": 3},
        {
            "id": "check",
            "type": "branch",
            "condition": {"type": "tags", "tags": ["vip"]},
            "then": "vip-bonus",
        },
        {"id": "done", "type": "exit"},
        {"id": "vip-bonus", "type": "points", "amount": 500},
    ],
}
BAD_AMOUNT = """{
  "name": "Broken",
  "entry": {"type": "event", "event": "member.registered"},
  "steps": [
    {"id": "gift", "type": "points", "amount": "100"}
  ]
}"""


async def journey(api: Api, key: str = "welcome", *, publish: bool = True) -> None:
    with clock.frozen(T0):
        made = await api.post("/v1/journeys", {"key": key, "document": WELCOME})
        assert made.status_code == 201, made.text
        if publish:
            published = await api.post(f"/v1/journeys/{key}/publish")
            assert published.status_code == 200, published.text


async def member(api: Api, **fields: Any) -> str:
    with clock.frozen(T0):
        made = await api.post("/v1/members", member_body(**fields))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def go_through(engine: AsyncEngine, program: ProgramContext, at: datetime) -> None:
    """Deliver the events to the journeys' consumer, then run the frequent job at ``at``."""
    await worker(engine, "journeys.runs").drain()
    with clock.frozen(at):
        await advance_program(engine, program.id, at)


def step_row(page: str, step: str) -> dict[str, str]:
    """The counts on one step's row of the journey's page."""
    row = re.search(rf'<tr id="step-{re.escape(step)}">(.*?)</tr>', page, re.S)
    assert row, f"no row for step {step}"
    cells = dict(re.findall(r'data-count="(\w+)">(.*?)</td>', row[1], re.S))
    return {k: v.strip() for k, v in cells.items()}


async def test_the_steps_show_what_they_do_and_the_counts_after_members_went_through(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await journey(api)
    anna = await member(api, tags=["vip"])
    await member(api)
    await go_through(engine, program, T0)
    with clock.frozen(T0 + timedelta(hours=1)):
        await console_as(browser, engine, program, Role.MARKETING)
        page = (await browser.get("/console/journeys/welcome")).text
    assert "When the member&#39;s event «member.registered» is delivered" in page
    assert "Give 100 points — reason: welcome" in page
    assert "Wait 3 days" in page
    assert "If the member matches the condition, go to «vip-bonus»" in page
    assert "The member&#39;s event «purchase.recorded» within 14 days of entering" in page
    assert step_row(page, "gift") == {"taken": "2", "outcomes": "credited: 2", "at_now": "0"}
    assert step_row(page, "pause") == {"taken": "2", "outcomes": "waiting: 2", "at_now": "2"}
    assert step_row(page, "check") == {"taken": "0", "outcomes": "—", "at_now": "0"}
    with clock.frozen(T0 + timedelta(hours=1)):
        russian = await browser.client.get(
            "/console/journeys/welcome", headers={"accept-language": "ru"}
        )
    assert "Ждать 3 дня" in russian.text and "Начислить 100 баллов" in russian.text
    assert step_row(russian.text, "pause")["outcomes"] == "ожидает: 2"
    # Three days later the branch sends the VIP to her bonus and the other member out.
    await go_through(engine, program, T0 + timedelta(days=3, minutes=1))
    with clock.frozen(T0 + timedelta(days=3, hours=1)):
        await console_as(browser, engine, program, Role.MARKETING)  # the old session is over
        page = (await browser.get("/console/journeys/welcome")).text
        listing = (await browser.get("/console/journeys")).text
        runs = await browser.get("/console/journeys/welcome/runs")
        exited = await browser.get("/console/journeys/welcome/runs", status="exited")
        waiting = await browser.get("/console/journeys/welcome/runs", status="waiting")
        refused = await browser.get("/console/journeys/welcome/runs", status="asleep")
    assert step_row(page, "pause")["at_now"] == "0"
    assert step_row(page, "check") == {
        "taken": "2",
        "outcomes": "condition met: 1, condition not met: 1",
        "at_now": "0",
    }
    assert step_row(page, "vip-bonus")["outcomes"] == "credited: 1"
    assert step_row(page, "done")["outcomes"] == "exited: 1"
    results = re.search(r'<dl class="facts" id="journey-results">(.*?)</dl>', page, re.S)
    assert results and "<dt>Exited</dt><dd>2</dd>" in results[1]
    assert "<dt>Conversion</dt><dd>0.0%</dd>" in results[1]
    assert '<a href="/console/journeys/welcome">Welcome</a>' in listing
    assert '<td class="num">2</td>' in listing  # entered
    assert runs.status_code == 200 and runs.text.count('href="/console/journeys/welcome/runs/') == 2
    assert exited.text.count('href="/console/journeys/welcome/runs/') == 2
    assert waiting.status_code == 200 and "No runs." in waiting.text
    assert refused.status_code == 422
    # Anna's run, step by step.
    anna_run = next(
        r
        for r in (await api.get("/v1/journeys/welcome/runs")).json()["items"]
        if r["member_id"] == anna
    )
    run_page = await browser.get(f"/console/journeys/welcome/runs/{anna_run['id']}")
    assert run_page.status_code == 200
    steps = re.search(r'<table id="run-steps">(.*?)</table>', run_page.text, re.S)
    assert steps
    taken = re.findall(r"<td><code>([\w-]+)</code></td>\s*<td>([^<]+)</td>", steps[1])
    assert taken == [
        ("gift", "credited"),
        ("pause", "waiting"),
        ("check", "condition met"),
        ("vip-bonus", "credited"),
    ]
    assert f'href="/console/members/{anna}"' in run_page.text


async def test_a_new_journey_with_a_bad_document_is_refused_and_a_good_one_is_saved(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    form = await browser.get("/console/journeys/new")
    assert form.status_code == 200 and 'name="document"' in form.text
    bad = await browser.post("/console/journeys/new", {"key": "broken", "document": BAD_AMOUNT})
    assert bad.status_code == 422
    assert "<code>steps.0.amount</code>" in bad.text and "line 5" in bad.text
    assert "&#34;amount&#34;: &#34;100&#34;" in bad.text  # the text as typed
    syntax = await browser.post(
        "/console/journeys/new", {"key": "broken", "document": '{"name": "x",\n  oops}'}
    )
    assert syntax.status_code == 422 and "line 2, column 3" in syntax.text
    bad_key = await browser.post(
        "/console/journeys/new", {"key": "Not a key", "document": BAD_AMOUNT}
    )
    assert bad_key.status_code == 422 and 'id="e-key"' in bad_key.text
    assert "<code>steps.0.amount</code>" in bad_key.text  # both faults in one answer
    assert (await api.get("/v1/journeys")).json()["items"] == []
    good = await browser.post(
        "/console/journeys/new",
        {"key": "welcome", "document": BAD_AMOUNT.replace('"100"', "100")},
    )
    assert good.status_code == 303 and good.headers["location"] == "/console/journeys/welcome"
    shown = (await api.get("/v1/journeys/welcome")).json()
    assert shown["status"] == "draft" and shown["draft"]["steps"][0]["amount"] == 100
    page = await browser.get("/console/journeys/welcome")
    assert "The journey is saved as a draft" in page.text and "How the draft works" in page.text
    again = await browser.post(
        "/console/journeys/new",
        {"key": "welcome", "document": BAD_AMOUNT.replace('"100"', "100")},
    )
    assert (
        again.status_code == 422 and 'id="e-key"' in again.text and "exists already" in again.text
    )
    assert len((await api.get("/v1/journeys")).json()["items"]) == 1


async def test_the_draft_is_edited_published_paused_resumed_and_archived_by_the_forms(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await journey(api, publish=False)
    await console_as(browser, engine, program, Role.CRM)
    editor = await browser.get("/console/journeys/welcome/draft")
    assert editor.status_code == 200 and "&#34;vip-bonus&#34;" in editor.text
    broken = await browser.post("/console/journeys/welcome/draft", {"document": BAD_AMOUNT})
    assert broken.status_code == 422 and "<code>steps.0.amount</code>" in broken.text
    assert (await api.get("/v1/journeys/welcome")).json()["draft"]["name"] == "Welcome"
    renamed = {**WELCOME, "name": "Hello"}
    saved = await browser.post("/console/journeys/welcome/draft", {"document": json.dumps(renamed)})
    assert saved.status_code == 303
    assert (await api.get("/v1/journeys/welcome")).json()["draft"]["name"] == "Hello"
    page = await browser.get("/console/journeys/welcome")
    assert ">Publish the draft</button>" in page.text and ">Pause</button>" not in page.text
    assert (await browser.post("/console/journeys/welcome/publish")).status_code == 303
    shown = (await api.get("/v1/journeys/welcome")).json()
    assert (shown["status"], shown["version"], shown["name"]) == ("active", 1, "Hello")
    page = await browser.get("/console/journeys/welcome")
    assert "Version 1 is published." in page.text and ">Pause</button>" in page.text
    assert "Version 1, published" in page.text
    assert ">Publish the draft</button>" not in page.text  # no draft left
    assert (await browser.post("/console/journeys/welcome/pause")).status_code == 303
    assert (await api.get("/v1/journeys/welcome")).json()["status"] == "paused"
    assert ">Resume</button>" in (await browser.get("/console/journeys/welcome")).text
    assert (await browser.post("/console/journeys/welcome/resume")).status_code == 303
    assert (await api.get("/v1/journeys/welcome")).json()["status"] == "active"
    assert (await browser.post("/console/journeys/welcome/archive")).status_code == 303
    assert (await api.get("/v1/journeys/welcome")).json()["status"] == "archived"
    # An archived journey is not resumed: the page says why and nothing changes.
    refused = await browser.post("/console/journeys/welcome/resume")
    assert refused.status_code == 409 and "cannot be active" in refused.text
    assert (await api.get("/v1/journeys/welcome")).json()["status"] == "archived"
    # Publishing what the program lacks: refused at the field, the journey unchanged.
    lacking = {**WELCOME, "entry": {"type": "segment_entered", "segment": "nobody"}}
    made = await api.post("/v1/journeys", {"key": "lacking", "document": lacking})
    assert made.status_code == 201
    missing = await browser.post("/console/journeys/lacking/publish")
    assert missing.status_code == 409 and "no segment" in missing.text
    assert (await api.get("/v1/journeys/lacking")).json()["status"] == "draft"


async def test_each_role_sees_what_it_may_and_is_refused_the_rest(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await journey(api)
    await member(api)
    await go_through(engine, program, T0)
    run_id = (await api.get("/v1/journeys/welcome/runs")).json()["items"][0]["id"]
    reading = [
        "/console/journeys",
        "/console/journeys/welcome",
        "/console/journeys/welcome/runs",
        f"/console/journeys/welcome/runs/{run_id}",
    ]
    editing = ["/console/journeys/new", "/console/journeys/welcome/draft"]
    for role in (Role.OWNER, Role.MARKETING, Role.CRM):
        staff = await console_as(browsers(), engine, program, role)
        for path in reading + editing:
            answer = await staff.get(path)
            assert answer.status_code == 200, (role, path, answer.text[-300:])
        assert 'href="/console/journeys"' in answer.text  # the section in the menu
    support = await console_as(browsers(), engine, program, Role.SUPPORT)
    for path in reading:
        assert (await support.get(path)).status_code == 200, path
    page = (await support.get("/console/journeys/welcome")).text
    assert ">Pause</button>" not in page and "Edit the draft" not in page
    assert "New journey" not in (await support.get("/console/journeys")).text
    for path in editing:
        assert (await support.get(path)).status_code == 403, path
    assert (await support.post("/console/journeys/welcome/pause")).status_code == 403
    assert (
        await support.post("/console/journeys/new", {"key": "x", "document": "{}"})
    ).status_code == 403
    analyst = await console_as(browsers(), engine, program, Role.ANALYST)
    menu = await analyst.get("/console/")
    assert 'href="/console/journeys"' not in menu.text
    for path in reading:
        assert (await analyst.get(path)).status_code == 403, path
    assert (await api.get("/v1/journeys/welcome")).json()["status"] == "active"


async def test_another_programs_journey_is_not_found(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, http: Any
) -> None:
    other = await make_program(engine)
    theirs = Api(http, await make_key(engine, other, "admin"))
    await journey(theirs, "theirs")
    await console_as(browser, engine, program, Role.OWNER)
    assert "theirs" not in (await browser.get("/console/journeys")).text
    for path in (
        "/console/journeys/theirs",
        "/console/journeys/theirs/draft",
        "/console/journeys/theirs/runs",
        "/console/journeys/theirs/runs/00000000-0000-0000-0000-000000000007",
    ):
        assert (await browser.get(path)).status_code == 404, path
    assert (await browser.post("/console/journeys/theirs/pause")).status_code == 404
    saved = await browser.post("/console/journeys/theirs/draft", {"document": "{}"})
    assert saved.status_code == 404
    shown = (await theirs.get("/v1/journeys/theirs")).json()
    assert shown["status"] == "active" and shown["draft"] is None


@pytest.mark.parametrize("action", ["publish", "pause", "resume", "archive"])
async def test_an_action_without_the_forms_token_changes_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api, action: str
) -> None:
    await journey(api, publish=action != "resume")
    await console_as(browser, engine, program, Role.OWNER)
    answer = await browser.client.post(f"/console/journeys/welcome/{action}", data={})
    assert answer.status_code == 403
    shown = (await api.get("/v1/journeys/welcome")).json()
    assert shown["status"] == ("draft" if action == "resume" else "active")


def facts(page: str, section: str) -> dict[str, str]:
    """The ``<dt>``/``<dd>`` pairs of a ``<dl id=…>`` of the page, tags stripped."""
    found = re.search(rf'<dl class="facts" id="{section}">(.*?)</dl>', page, re.S)
    assert found, f"no {section}"
    pairs = re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", found[1], re.S)
    return {dt: re.sub(r"<[^>]+>", "", dd).strip() for dt, dd in pairs}


async def test_the_dry_run_form_shows_what_the_journey_would_have_done(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await journey(api)
    await member(api, tags=["vip"])
    await member(api)
    page_of = "/console/journeys/welcome"
    with clock.frozen(T0 + timedelta(hours=1)):
        await console_as(browser, engine, program, Role.SUPPORT)  # reading is enough
        page = (await browser.get(page_of)).text
        tried = await browser.get(page_of, dry_run="1", **{"from": "", "to": ""})
        reversed_ = await browser.get(
            page_of, dry_run="1", **{"from": "2031-03-03", "to": "2031-03-01"}
        )
        future = await browser.get(page_of, dry_run="1", to="2031-03-09")
        typo = await browser.get(page_of, dry_run="1", **{"from": "3 March"})
        russian = await browser.client.get(
            f"{page_of}?dry_run=1&from=2031-03-01", headers={"accept-language": "ru"}
        )
    assert 'id="dry-run-form"' in page and ">Dry run</button>" in page
    assert 'name="dry_run" value="1"' in page and 'id="dry-run-entrants"' not in page
    assert tried.status_code == 200, tried.text[-500:]
    entrants = facts(tried.text, "dry-run-entrants")
    assert (entrants["Members"], entrants["Runs"], entrants["Treated"]) == ("2", "2", "2")
    assert entrants["Entrants from"] == "the members' events the outbox keeps"
    reached = re.search(r'<tr id="dry-step-check">(.*?)</tr>', tried.text, re.S)
    assert reached and "condition met: 1, condition not met: 1" in reached[1]
    gifts = facts(tried.text, "dry-run-gifts")
    assert gifts["Points"].startswith("700 points")  # 2 × 100 and the VIP's 500
    assert "Nothing was changed" in tried.text
    assert (await api.get("/v1/journeys/welcome/runs")).json()["items"] == []
    assert reversed_.status_code == 422 and 'id="e-from"' in reversed_.text
    assert future.status_code == 422 and 'id="e-to"' in future.text
    assert typo.status_code == 422 and 'id="e-from"' in typo.text
    assert russian.status_code == 200 and "Пробный прогон" in russian.text
    assert facts(russian.text, "dry-run-entrants")["Участники"] == "2"


async def test_the_results_show_cost_roi_and_earlier_versions_steps(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await journey(api)
    await member(api)
    await go_through(engine, program, T0)
    renamed = {**WELCOME, "steps": [{"id": "hello", "type": "points", "amount": 1}]}
    with clock.frozen(T0):
        assert (await api.put("/v1/journeys/welcome/draft", {"document": renamed})).is_success
        assert (await api.post("/v1/journeys/welcome/publish")).json()["version"] == 2
    with clock.frozen(T0 + timedelta(hours=1)):
        await console_as(browser, engine, program, Role.MARKETING)
        page = (await browser.get("/console/journeys/welcome")).text
    roi = facts(page, "journey-roi")
    assert roi["Points given"].startswith("100 points")
    assert roi["ROI"].startswith("—") and "no holdout" in roi["ROI"]
    assert "Earlier versions" in page
    earlier = re.search(r'<tr id="v1-step-gift">(.*?)</tr>', page, re.S)
    assert earlier and "credited: 1" in earlier[1]
    assert step_row(page, "hello") == {"taken": "0", "outcomes": "—", "at_now": "0"}


async def test_the_list_is_paged(
    browser: Browser,
    engine: AsyncEngine,
    program: ProgramContext,
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kopilka.web.console import journeys as pages

    monkeypatch.setattr(pages, "PAGE", 2)
    for key in ("a-first", "b-second", "c-third"):
        await journey(api, key, publish=False)
    await console_as(browser, engine, program, Role.MARKETING)
    first = (await browser.get("/console/journeys")).text
    following = re.search(r'href="(/console/journeys\?cursor=[^"]+)"', first)
    assert following and "a-first" in first and "c-third" not in first
    second = (await browser.client.get(following[1])).text
    assert "c-third" in second and "a-first" not in second and "Next page" not in second
