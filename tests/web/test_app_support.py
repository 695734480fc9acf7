"""The app's support pages on both databases: a ticket written in the app is what the API
shows, staff replies appear and internal notes never do, the member's reply reopens a
waiting ticket, another member's ticket is not found, bad input changes nothing."""

import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.programs.service import ProgramContext
from kopilka.web.app.support import new_form_key
from tests.conftest import Api
from tests.fixtures.factories import member_body
from tests.web.conftest import Browser, app_as


async def new_member(api: Api, name: str = "Anna") -> uuid.UUID:
    made = await api.post("/v1/members", member_body(name=name))
    assert made.status_code == 201, made.text
    return uuid.UUID(made.json()["id"])


def form_key_of(page: str, form: str) -> str:
    """The one-time key the page's form ``form`` carries."""
    found = re.search(rf'<form id="{form}".*?name="form_key" value="([^"]+)"', page, re.S)
    assert found, f"the form {form} carries a one-time key"
    return found.group(1)


def once(**fields: str) -> dict[str, str]:
    """A support form as the page sends it: with a one-time key of its own."""
    return {"form_key": new_form_key(), **fields}


async def write_ticket(browser: Browser, slug: str, **fields: str) -> str:
    """A ticket written in the app; its id."""
    body = once(
        **{"subject": "Points missing", "body": "I bought a kettle and got nothing.", **fields}
    )
    sent = await browser.post(f"/app/{slug}/support/new", body)
    assert sent.status_code == 303, sent.text
    found = re.fullmatch(rf"/app/{slug}/support/([0-9a-f-]{{36}})", sent.headers["location"])
    assert found, sent.headers["location"]
    return found.group(1)


async def test_a_ticket_written_in_the_app_is_what_the_api_shows(
    browser: Browser, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    assert (await api.post("/v1/stores", {"code": "MSK-1", "name": "Tverskaya"})).status_code == 201
    anna = await new_member(api)
    await app_as(browser, engine, program, anna)
    form = await browser.get(f"/app/{program.slug}/support/new", store="MSK-1")
    assert '<option value="MSK-1" selected>Tverskaya</option>' in form.text
    tid = await write_ticket(browser, program.slug, store="MSK-1")
    seen = (await api.get(f"/v1/tickets/{tid}")).json()
    assert seen["member_id"] == str(anna) and seen["subject"] == "Points missing"
    assert seen["store"] == "MSK-1" and seen["channel"] == "app" and seen["status"] == "new"
    mine = (await api.get(f"/v1/members/{anna}/tickets")).json()["items"]
    assert [m["body"] for m in mine[0]["messages"]] == ["I bought a kettle and got nothing."]
    page = await browser.get(f"/app/{program.slug}/support/{tid}")
    assert page.status_code == 200
    assert "Your request has been sent" in page.text  # the notice, once
    assert "I bought a kettle and got nothing." in page.text and "Sent" in page.text
    listed = await browser.get(f"/app/{program.slug}/support")
    assert "Points missing" in listed.text and f"/support/{tid}" in listed.text


async def test_staff_replies_appear_internal_notes_never(
    browser: Browser, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    anna = await new_member(api)
    await app_as(browser, engine, program, anna)
    tid = await write_ticket(browser, program.slug)
    replied = await api.post(f"/v1/tickets/{tid}/replies", {"body": "We are checking it."})
    assert replied.status_code == 201, replied.text
    noted = await api.post(f"/v1/tickets/{tid}/notes", {"body": "Suspected fraud, be careful"})
    assert noted.status_code == 201, noted.text
    page = await browser.get(f"/app/{program.slug}/support/{tid}")
    assert "We are checking it." in page.text and "In progress" in page.text
    assert "Suspected fraud" not in page.text
    listed = await browser.get(f"/app/{program.slug}/support")
    assert "We are checking it." in listed.text  # the last message
    assert "Suspected fraud" not in listed.text


async def test_the_members_reply_reaches_the_api_and_reopens_a_waiting_ticket(
    browser: Browser, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    anna = await new_member(api)
    await app_as(browser, engine, program, anna)
    tid = await write_ticket(browser, program.slug)
    asked = await api.post(
        f"/v1/tickets/{tid}/replies", {"body": "Which store?", "status": "waiting"}
    )
    assert asked.status_code == 201, asked.text
    waiting = await browser.get(f"/app/{program.slug}/support/{tid}")
    assert "Waiting for your answer" in waiting.text
    sent = await browser.post(f"/app/{program.slug}/support/{tid}", once(body="Tverskaya, 1"))
    assert sent.status_code == 303 and sent.headers["location"].endswith(f"/support/{tid}")
    seen = (await api.get(f"/v1/tickets/{tid}")).json()
    assert seen["status"] == "open"
    bodies = [
        m["body"]
        for m in (await api.get(f"/v1/members/{anna}/tickets")).json()["items"][0]["messages"]
    ]
    assert bodies[-1] == "Tverskaya, 1"


async def test_a_member_cannot_open_or_answer_another_members_ticket(
    browsers: Callable[[], Browser], engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    anna, boris = await new_member(api, "Anna"), await new_member(api, "Boris")
    anna_browser = await app_as(browsers(), engine, program, anna)
    boris_browser = await app_as(browsers(), engine, program, boris)
    tid = await write_ticket(anna_browser, program.slug, subject="Anna's secret")
    assert (await boris_browser.get(f"/app/{program.slug}/support/{tid}")).status_code == 404
    forged = await boris_browser.post(f"/app/{program.slug}/support/{tid}", once(body="Mine now"))
    assert forged.status_code == 404
    messages = (await api.get(f"/v1/members/{anna}/tickets")).json()["items"][0]["messages"]
    assert [m["body"] for m in messages] == ["I bought a kettle and got nothing."]
    assert "Anna's secret" not in (await boris_browser.get(f"/app/{program.slug}/support")).text
    for bad in ("not-a-ticket", str(uuid.uuid4())):
        assert (await anna_browser.get(f"/app/{program.slug}/support/{bad}")).status_code == 404


async def test_bad_input_re_renders_with_the_message_and_changes_nothing(
    browser: Browser, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    assert (await api.post("/v1/stores", {"code": "MSK-1", "name": "Tverskaya"})).status_code == 201
    anna = await new_member(api)
    await app_as(browser, engine, program, anna)
    empty = await browser.post(f"/app/{program.slug}/support/new", once(subject="Help", body="   "))
    assert empty.status_code == 422
    assert re.search(r'id="e-body" class="field-error">Please fill this in.', empty.text)
    assert 'value="Help"' in empty.text  # what was typed stays
    unknown_store = await browser.post(
        f"/app/{program.slug}/support/new", once(subject="Help", body="Hi", store="NOPE")
    )
    assert unknown_store.status_code == 422 and "NOPE" in unknown_store.text
    too_long = await browser.post(
        f"/app/{program.slug}/support/new", once(subject="x" * 201, body="Hi")
    )
    assert too_long.status_code == 422 and 'id="e-subject"' in too_long.text
    assert (await api.get(f"/v1/members/{anna}/tickets")).json()["items"] == []
    tid = await write_ticket(browser, program.slug)
    blank = await browser.post(f"/app/{program.slug}/support/{tid}", once(body=""))
    assert blank.status_code == 422 and "Please fill this in." in blank.text
    closed = await api.client.patch(
        f"/v1/tickets/{tid}", json={"status": "closed"}, headers=api.headers
    )
    assert closed.status_code == 200, closed.text
    late = await browser.post(f"/app/{program.slug}/support/{tid}", once(body="Hello?"))
    assert late.status_code == 409 and "This request is closed: write a new one." in late.text
    messages = (await api.get(f"/v1/members/{anna}/tickets")).json()["items"][0]["messages"]
    assert len(messages) == 1


async def test_a_form_sent_twice_writes_once(
    browser: Browser, engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    anna = await new_member(api)
    await app_as(browser, engine, program, anna)
    page = (await browser.get(f"/app/{program.slug}/support/new")).text
    form = {"form_key": form_key_of(page, "new-ticket"), "subject": "Help", "body": "Hi"}
    first = await browser.post(f"/app/{program.slug}/support/new", form)
    second = await browser.post(f"/app/{program.slug}/support/new", form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]  # answered as the first
    tickets = (await api.get(f"/v1/members/{anna}/tickets")).json()["items"]
    assert len(tickets) == 1
    other = await browser.post(f"/app/{program.slug}/support/new", {**form, "body": "Hello"})
    assert other.status_code == 409 and "sent already with other words" in other.text
    assert form_key_of(other.text, "new-ticket") != form["form_key"]  # a new key
    bare = await browser.post(f"/app/{program.slug}/support/new", {"subject": "A", "body": "B"})
    assert bare.status_code == 422 and "This form is incomplete" in bare.text
    assert form_key_of(bare.text, "new-ticket")  # shown again with a key to send
    assert len((await api.get(f"/v1/members/{anna}/tickets")).json()["items"]) == 1

    tid = tickets[0]["id"]
    page = (await browser.get(f"/app/{program.slug}/support/{tid}")).text
    reply = {"form_key": form_key_of(page, "reply"), "body": "Still nothing"}
    for _ in range(2):
        sent = await browser.post(f"/app/{program.slug}/support/{tid}", reply)
        assert sent.status_code == 303 and sent.headers["location"].endswith(f"/support/{tid}")
    changed = await browser.post(f"/app/{program.slug}/support/{tid}", {**reply, "body": "Hm"})
    assert changed.status_code == 409 and "sent already with other words" in changed.text
    blank_key = await browser.post(f"/app/{program.slug}/support/{tid}", {"body": "Once more"})
    assert blank_key.status_code == 422 and "This form is incomplete" in blank_key.text
    messages = (await api.get(f"/v1/members/{anna}/tickets")).json()["items"][0]["messages"]
    assert [m["body"] for m in messages] == ["Hi", "Still nothing"]


async def test_support_needs_a_signed_in_member(browser: Browser, program: ProgramContext) -> None:
    answer = await browser.get(f"/app/{program.slug}/support")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/app/{program.slug}/sign-in?next=")
    posted: Any = await browser.post(
        f"/app/{program.slug}/support/new", {"subject": "x", "body": "y"}
    )
    assert posted.status_code == 401
