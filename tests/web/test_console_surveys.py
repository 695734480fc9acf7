"""The console's surveys: the scores the API computes (NPS, CSAT, the distribution), the
answers to those who may read members, creating and editing a survey from its form."""

import re
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_program
from tests.fixtures.factories import member_body
from tests.web.conftest import PASSWORD, Browser, console_as

NPS = {
    "key": "after-visit",
    "name": "After a visit",
    "questions": [
        {"id": "nps", "type": "nps", "text": "Would you recommend us?"},
        {"id": "why", "type": "choice", "text": "Why?", "options": ["price", "staff"]},
    ],
}
CSAT = {
    "key": "support-csat",
    "name": "How did we do?",
    "questions": [{"id": "csat", "type": "csat", "text": "Were you satisfied?"}],
}


async def answered(api: Api, key: str, scores: list[int], question: str, **extra: Any) -> None:
    for score in scores:
        created = await api.post("/v1/members", member_body())
        body = {
            "member_id": created.json()["id"],
            "answers": [{"question": question, "value": score}],
            **extra,
        }
        if question == "nps":
            body["answers"].append({"question": "why", "value": "staff"})
        answer = await api.post(f"/v1/surveys/{key}/responses", body)
        assert answer.status_code == 201, answer.text


async def test_the_list_and_a_survey_show_the_apis_scores(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    assert (await api.post("/v1/surveys", NPS)).status_code == 201
    assert (await api.post("/v1/surveys", CSAT)).status_code == 201
    # 3 promoters, 1 passive, 3 detractors of 7: NPS = 0; scores 10, 10, 9, 7, 6, 3, 0
    await answered(api, "after-visit", [10, 10, 9, 7, 6, 3, 0], "nps")
    await answered(api, "support-csat", [5, 4, 2], "csat")
    expected = (await api.get("/v1/surveys/after-visit/scores", by="month")).json()
    assert expected["overall"]["nps"] == 0
    assert [c["responses"] for c in expected["overall"]["distribution"]] == [
        1, 0, 0, 1, 0, 0, 1, 1, 0, 1, 2,
    ]  # fmt: skip
    await console_as(browser, engine, program, Role.SUPPORT)
    listed = await browser.get("/console/surveys")
    assert listed.status_code == 200
    assert "After a visit" in listed.text and "How did we do?" in listed.text
    assert "67%" in listed.text  # CSAT: 2 of 3 satisfied
    assert "New survey" not in listed.text  # support reads surveys, does not make them
    page = await browser.get("/console/surveys/after-visit")
    assert page.status_code == 200
    assert "Promoters (9–10)" in page.text and "Answers per score" in page.text
    assert '<svg class="chart"' in page.text and "Answers, newest first" in page.text
    rows = page.text.split("<caption>Answers per score</caption>")[1].split("</table>")[0]
    assert '<th scope="row">10</th><td class="num">2</td>' in rows.replace("\n", "").replace(
        "        ", ""
    )
    by_store = await browser.get("/console/surveys/after-visit", by="store")
    assert "Per store" in by_store.text
    empty = await browser.get(
        "/console/surveys/after-visit", **{"from": "2001-01-01", "to": "2001-01-31"}
    )
    assert "No scored answers in this period." in empty.text


async def test_a_store_limited_reader_sees_their_stores_answers_counted(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    assert (await api.post("/v1/surveys", NPS)).status_code == 201
    await answered(api, "after-visit", [10, 9], "nps", store="store-01")
    await answered(api, "after-visit", [0, 1, 2], "nps", store="store-02")
    await console_as(browser, engine, program, Role.STORE_MANAGER, stores=["store-01"])
    page = await browser.get("/console/surveys/after-visit")
    assert page.status_code == 200
    facts = page.text.split("<dt>Answers</dt>")[1].split("</dd>")[0]
    assert facts.strip() == "<dd>2"  # not the chain's 5
    assert '<div class="figure">2</div>' in page.text  # the scored answers: the same two
    listed = await browser.get("/console/surveys")
    row = listed.text.split('href="/console/surveys/after-visit"')[1].split("</tr>")[0]
    assert [n for n in re.findall(r'<td class="num">([^<]*)</td>', row)][1:] == ["2", "2"]
    # The API counts as the page does.
    email = f"limited-{uuid.uuid4().hex[:6]}@shop.example"
    await api.post(
        "/v1/staff",
        {
            "email": email,
            "name": "L",
            "role": "store_manager",
            "stores": ["store-01"],
            "password": PASSWORD,
        },
    )
    session = await api.client.post(
        "/v1/staff/sessions", json={"email": email, "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {session.json()['token']}"}
    one = await api.client.get("/v1/surveys/after-visit", headers=headers)
    assert one.json()["responses"] == 2
    every = await api.client.get("/v1/surveys", headers=headers)
    assert [s["responses"] for s in every.json()["items"]] == [2]
    assert (await api.get("/v1/surveys/after-visit")).json()["responses"] == 5


async def test_answers_are_shown_only_to_roles_that_read_members(
    browsers: Any, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    assert (await api.post("/v1/surveys", NPS)).status_code == 201
    await answered(api, "after-visit", [9], "nps")
    analyst = await console_as(browsers(), engine, program, Role.ANALYST)
    page = await analyst.get("/console/surveys/after-visit")
    assert page.status_code == 200 and "Promoters (9–10)" in page.text
    assert "they are shown to roles that may read members" in page.text
    assert "/console/members/" not in page.text
    cashier = await console_as(browsers(), engine, program, Role.CASHIER)
    assert (await cashier.get("/console/surveys")).status_code == 403
    assert (await cashier.get("/console/surveys/after-visit")).status_code == 403


async def test_a_survey_made_and_edited_from_the_form(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    assert "New survey" in (await browser.get("/console/surveys")).text
    form = {
        "key": "store-visit",
        "name": "Your visit",
        "trigger": "purchase",
        "sample_percent": "20",
        "cooldown_days": "30",
        "expires_days": "14",
        "questions.0.id": "nps",
        "questions.0.type": "nps",
        "questions.0.text": "Would you recommend us?",
        "questions.0.required": "true",
        # row 1 left empty: not a question
        "questions.2.id": "why",
        "questions.2.type": "choice",
        "questions.2.text": "What mattered most?",
        "questions.2.required": "true",
    }
    refused = await browser.post("/console/surveys/new", form)
    assert refused.status_code == 422
    assert 'id="e-questions.2.options"' not in refused.text  # a textarea: its own markup
    assert "a choice question lists its options" in refused.text
    assert "What mattered most?" in refused.text  # what was typed is kept
    assert (await api.get("/v1/surveys/store-visit")).status_code == 404
    made = await browser.post(
        "/console/surveys/new", form | {"questions.2.options": "price\nstaff"}
    )
    assert made.status_code == 303 and made.headers["location"] == "/console/surveys/store-visit"
    survey = (await api.get("/v1/surveys/store-visit")).json()
    assert (survey["trigger"], survey["sample_percent"], survey["kind"]) == ("purchase", 20, "nps")
    assert survey["questions"][1]["options"] == ["price", "staff"]
    await answered(api, "store-visit", [8], "nps", channel="app")
    edit = await browser.get("/console/surveys/store-visit/edit")
    assert edit.status_code == 200 and "What mattered most?" in edit.text
    same = {k: v for k, v in form.items() if k != "key"} | {
        "questions.2.options": "price\nstaff",
        "name": "Your visit to us",
        "status": "active",
    }
    saved = await browser.post("/console/surveys/store-visit/edit", same)
    assert saved.status_code == 303, saved.text
    kept = (await api.get("/v1/surveys/store-visit")).json()
    assert (kept["name"], kept["version"]) == ("Your visit to us", 1)  # same questions
    more = same | {"questions.2.options": "price\nstaff\nchoice"}
    assert (await browser.post("/console/surveys/store-visit/edit", more)).status_code == 303
    assert (await api.get("/v1/surveys/store-visit")).json()["version"] == 2
    bad = await browser.post("/console/surveys/store-visit/edit", more | {"sample_percent": "x"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text


async def test_roles_without_surveys_manage_and_other_programs(
    browsers: Any, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    assert (await api.post("/v1/surveys", NPS)).status_code == 201
    support = await console_as(browsers(), engine, program, Role.SUPPORT)
    assert (await support.get("/console/surveys/new")).status_code == 403
    assert (await support.get("/console/surveys/after-visit/edit")).status_code == 403
    denied = await support.post("/console/surveys/after-visit/edit", {"name": "Hacked"})
    assert denied.status_code == 403
    assert (await api.get("/v1/surveys/after-visit")).json()["name"] == "After a visit"
    other = await make_program(engine)
    stranger = await console_as(browsers(), engine, other, Role.OWNER)
    assert (await stranger.get("/console/surveys/after-visit")).status_code == 404
    assert "After a visit" not in (await stranger.get("/console/surveys")).text
