"""The app's surveys on both databases: the open surveys of a member, the questions (NPS as
a row of 0–10), an answer that the API's responses and scores then count, once; bad
answers re-rendered beside their question; invitations answered once, and only by their
member."""

import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext, program_service
from kopilka.support.surveys import survey_service
from tests.conftest import Api
from tests.fixtures.factories import member_body, purchase_body
from tests.web.conftest import Browser, app_as

APP_SURVEY = {
    "key": "app-feedback",
    "name": "How do you like us?",
    "trigger": "manual",
    "questions": [
        {"id": "nps", "type": "nps", "text": "Would you recommend us to a friend?"},
        {"id": "sat", "type": "csat", "text": "How satisfied are you?", "required": False},
        {
            "id": "why",
            "type": "choice",
            "text": "What mattered most?",
            "options": ["price", "staff"],
        },
        {"id": "note", "type": "text", "text": "Anything else?", "required": False},
    ],
}
AFTER_PURCHASE = {
    "key": "after-purchase",
    "name": "Your visit",
    "trigger": "purchase",
    "questions": [{"id": "nps", "type": "nps", "text": "Recommend us?"}],
}


async def new_member(api: Api) -> tuple[uuid.UUID, str]:
    body = member_body()
    made = await api.post("/v1/members", body)
    assert made.status_code == 201, made.text
    return uuid.UUID(made.json()["id"]), str(body["external_id"])


async def survey_made(api: Api, body: dict[str, Any]) -> None:
    made = await api.post("/v1/surveys", body)
    assert made.status_code == 201, made.text


def attempt_of(html: str) -> str:
    found = re.search(r'name="attempt" value="([^"]+)"', html)
    assert found, "the form carries its own key"
    return found.group(1)


async def test_a_survey_answered_in_the_app_is_in_the_apis_responses_and_scores(
    browser: Browser, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    await survey_made(api, APP_SURVEY)
    anna, _ = await new_member(api)
    await app_as(browser, engine, program, anna)
    listed = await browser.get(f"/app/{program.slug}/surveys")
    assert "How do you like us?" in listed.text
    page = await browser.get(f"/app/{program.slug}/surveys/app-feedback")
    assert page.status_code == 200
    # NPS: a row of eleven labelled radio buttons with its two ends named.
    radios = re.findall(
        r'<label for="q1-(\d+)"><input type="radio" id="q1-\1" name="q.nps"', page.text
    )
    assert radios == [str(n) for n in range(11)]
    assert "Not at all likely" in page.text and "Extremely likely" in page.text
    assert "Very satisfied" in page.text  # CSAT 1–5 with words
    form = {"q.nps": "9", "q.sat": "5", "q.why": "staff", "q.note": "Nice people"}
    sent = await browser.post(
        f"/app/{program.slug}/surveys/app-feedback", {**form, "attempt": attempt_of(page.text)}
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"/app/{program.slug}/surveys/app-feedback/thanks"
    thanks = await browser.get(sent.headers["location"])
    assert "Thank you!" in thanks.text and "How do you like us?" in thanks.text
    answers = (await api.get("/v1/surveys/app-feedback/responses", member_id=str(anna))).json()
    (response,) = answers["items"]
    assert response["score"] == 9 and response["channel"] == "app"
    assert {a["question"]: a["value"] for a in response["answers"]} == {
        "nps": 9,
        "sat": 5,
        "why": "staff",
        "note": "Nice people",
    }
    scores = (await api.get("/v1/surveys/app-feedback/scores")).json()["overall"]
    assert scores["responses"] == 1 and scores["promoters"] == 1 and scores["nps"] == 100
    # Answered once: it leaves the list, and its page says so.
    assert "How do you like us?" not in (await browser.get(f"/app/{program.slug}/surveys")).text
    again = await browser.get(f"/app/{program.slug}/surveys/app-feedback")
    assert "You answered this survey on" in again.text and 'id="survey"' not in again.text


async def test_the_same_form_sent_twice_records_one_answer(
    browser: Browser, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    await survey_made(api, APP_SURVEY)
    anna, _ = await new_member(api)
    await app_as(browser, engine, program, anna)
    page = await browser.get(f"/app/{program.slug}/surveys/app-feedback")
    form = {"q.nps": "3", "q.why": "price", "attempt": attempt_of(page.text)}
    for _ in range(2):  # a double tap, or a reload that sends the form again
        sent = await browser.post(f"/app/{program.slug}/surveys/app-feedback", form)
        assert sent.status_code == 303, sent.text
    answers = (await api.get("/v1/surveys/app-feedback/responses")).json()["items"]
    assert len(answers) == 1


async def test_bad_answers_re_render_beside_their_question_and_record_nothing(
    browser: Browser, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    await survey_made(api, APP_SURVEY)
    anna, _ = await new_member(api)
    await app_as(browser, engine, program, anna)
    path = f"/app/{program.slug}/surveys/app-feedback"
    page = await browser.get(path)
    attempt = attempt_of(page.text)
    eleven = await browser.post(
        path, {"q.nps": "11", "q.why": "staff", "q.note": "kept", "attempt": attempt}
    )
    assert eleven.status_code == 422
    assert re.search(
        r'id="e-q1" class="field-error" role="alert">Choose a number from 0 to 10.', eleven.text
    )
    assert 'value="staff" checked' in eleven.text and ">kept</textarea>" in eleven.text
    missing = await browser.post(path, {"q.why": "staff", "attempt": attempt})
    assert missing.status_code == 422 and "Choose a number from 0 to 10." in missing.text
    no_choice = await browser.post(path, {"q.nps": "7", "q.why": "nothing", "attempt": attempt})
    assert no_choice.status_code == 422
    assert re.search(
        r'id="e-q3" class="field-error" role="alert">Choose one of the options.', no_choice.text
    )
    long_note = await browser.post(
        path, {"q.nps": "7", "q.why": "price", "q.note": "x" * 2001, "attempt": attempt}
    )
    assert long_note.status_code == 422 and 'id="e-q4"' in long_note.text
    assert (await api.get("/v1/surveys/app-feedback/responses")).json()["items"] == []
    # The same form, corrected, goes through.
    fixed = await browser.post(path, {"q.nps": "10", "q.why": "price", "attempt": attempt})
    assert fixed.status_code == 303, fixed.text


async def invite(
    engine: AsyncEngine, program: ProgramContext, api: Api
) -> tuple[uuid.UUID, uuid.UUID]:
    """A member invited to the purchase survey about a purchase (as the worker does after
    ``purchase.recorded``): the member and the invitation."""
    member_id, external_id = await new_member(api)
    bought = await api.post("/v1/purchases", purchase_body(external_id))
    assert bought.status_code == 201, bought.text
    async with transaction(engine) as conn:
        current = await program_service.get(conn, program.id)
        invitation = await survey_service.after_purchase(
            conn,
            current,
            member_id,
            uuid.UUID(bought.json()["id"]),
            "store-01",
            clock.now(),
        )
    assert invitation is not None
    return member_id, invitation


async def test_an_invitation_is_answered_once_and_only_by_its_member(
    browsers: Callable[[], Browser], engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    await survey_made(api, AFTER_PURCHASE)
    anna, invitation = await invite(engine, program, api)
    boris, _ = await new_member(api)
    mine = await app_as(browsers(), engine, program, anna)
    other = await app_as(browsers(), engine, program, boris)
    listed = await mine.get(f"/app/{program.slug}/surveys")
    assert f"/surveys/after-purchase?invitation={invitation}" in listed.text
    assert "Open until" in listed.text
    assert "Your visit" not in (await other.get(f"/app/{program.slug}/surveys")).text
    path = f"/app/{program.slug}/surveys/after-purchase"
    assert (await other.get(path, invitation=str(invitation))).status_code == 404
    # Without an invitation of their own, a survey asked by invitation is not open to them.
    closed = await other.get(path)
    assert "This survey is not open now." in closed.text and 'id="survey"' not in closed.text
    page = await mine.get(path, invitation=str(invitation))
    assert f'name="invitation" value="{invitation}"' in page.text
    sent = await mine.post(path, {"q.nps": "6", "invitation": str(invitation)})
    assert sent.status_code == 303, sent.text
    (response,) = (await api.get("/v1/surveys/after-purchase/responses")).json()["items"]
    assert response["invitation_id"] == str(invitation) and response["store"] == "store-01"
    assert response["score"] == 6
    # The same answers again are the first answer; other answers are refused.
    same = await mine.post(path, {"q.nps": "6", "invitation": str(invitation)})
    assert same.status_code == 303
    changed = await mine.post(path, {"q.nps": "10", "invitation": str(invitation)})
    assert changed.status_code == 409 and "You answered this survey on" in changed.text
    answered = await mine.get(path, invitation=str(invitation))
    assert "You answered this survey on" in answered.text
    assert len((await api.get("/v1/surveys/after-purchase/responses")).json()["items"]) == 1
    assert "Your visit" not in (await mine.get(f"/app/{program.slug}/surveys")).text


async def test_an_archived_survey_takes_no_answers(
    browser: Browser, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    await survey_made(api, APP_SURVEY)
    anna, _ = await new_member(api)
    await app_as(browser, engine, program, anna)
    archived = await api.patch("/v1/surveys/app-feedback", {"status": "archived"})
    assert archived.status_code == 200, archived.text
    page = await browser.get(f"/app/{program.slug}/surveys/app-feedback")
    assert "This survey is not open now." in page.text
    sent = await browser.post(
        f"/app/{program.slug}/surveys/app-feedback", {"q.nps": "9", "q.why": "staff"}
    )
    assert sent.status_code == 409 and "This survey is not open now." in sent.text
    assert (await api.get("/v1/surveys/app-feedback/responses")).json()["items"] == []
    assert (await browser.get(f"/app/{program.slug}/surveys/no-such")).status_code == 404
