"""The console's tickets inbox and a ticket's page: what the API made is shown, the page's
actions are what the API then answers, store-limited staff see only their stores."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_program
from tests.fixtures.factories import member_body
from tests.web.conftest import Browser, console_as

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def a_key() -> str:
    """A one-time key as the ticket's page puts in its forms."""
    return f"console-{uuid.uuid4().hex}"


async def form_keys(browser: Browser, ticket_id: str) -> dict[str, str]:
    """The one-time keys of the ticket page's reply and note forms."""
    page = await browser.get(f"/console/tickets/{ticket_id}")
    reply_key, note_key = KEY.findall(page.text)
    return {"reply": reply_key, "note": note_key}


async def member(api: Api, **fields: Any) -> str:
    created = await api.post("/v1/members", member_body(**fields))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def ticket(api: Api, member_id: str, **fields: Any) -> dict[str, Any]:
    body = {"member_id": member_id, "subject": "Points missing", "body": "Where are they?"}
    opened = await api.post("/v1/tickets", body | fields)
    assert opened.status_code == 201, opened.text
    found: dict[str, Any] = opened.json()
    return found


async def test_the_inbox_lists_and_filters_what_the_api_opened(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api, name="Anna Petrova")
    with clock.frozen(T0):
        urgent = await ticket(api, anna, subject="Card blocked", priority="urgent", channel="phone")
        await ticket(api, anna, subject="Lost coupon", priority="low", channel="email")
        done = await ticket(api, anna, subject="Old question")
        await api.patch(f"/v1/tickets/{done['id']}", {"status": "resolved"})
    with clock.frozen(T0 + timedelta(hours=2)):
        await console_as(browser, engine, program, Role.SUPPORT)
        page = await browser.get("/console/tickets")
        assert page.status_code == 200, page.text
        assert "Card blocked" in page.text and "Lost coupon" in page.text
        assert "Old question" not in page.text  # resolved: not awaiting us
        assert page.text.index("Card blocked") < page.text.index("Lost coupon")  # deadline
        assert "Overdue" in page.text  # urgent: 1 h to the first response
        overdue = await browser.get("/console/tickets", overdue="true")
        assert "Card blocked" in overdue.text and "Lost coupon" not in overdue.text
        by_email = await browser.get("/console/tickets", channel="email")
        assert "Lost coupon" in by_email.text and "Card blocked" not in by_email.text
        everything = await browser.get("/console/tickets", status="all", order="newest")
        assert everything.text.index("Old question") < everything.text.index("Card blocked")
        oldest = await browser.get("/console/tickets", status="all", order="oldest")
        assert oldest.text.index("Card blocked") < oldest.text.index("Old question")
        mine = await browser.get("/console/tickets", assignee="me")
        assert "No tickets match these filters." in mine.text
        unassigned = await browser.get("/console/tickets", assignee="unassigned")
        assert "Card blocked" in unassigned.text
        shown = await browser.get(f"/console/tickets/{urgent['id']}")
    assert shown.status_code == 200
    assert "Anna Petrova" in shown.text and f"/console/members/{anna}" in shown.text
    assert "Where are they?" in shown.text and "First response due" in shown.text
    bad = await browser.get("/console/tickets", status="lost")
    assert bad.status_code == 422


async def test_the_inbox_pages(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api)
    with clock.frozen(T0):
        for n in range(51):
            await ticket(api, anna, subject=f"Question {n:02d}")
    await console_as(browser, engine, program, Role.SUPPORT)
    first = await browser.get("/console/tickets", order="oldest")
    assert "Question 00" in first.text and "Question 50" not in first.text
    link = first.text.split('class="pager"')[1].split('href="')[1].split('"')[0]
    second = await browser.client.get(link.replace("&amp;", "&"))
    assert "Question 50" in second.text and "Question 00" not in second.text


async def test_a_reply_from_the_page_is_what_the_member_sees(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api)
    opened = await ticket(api, anna)
    tid = opened["id"]
    await console_as(browser, engine, program, Role.SUPPORT)
    keys = await form_keys(browser, tid)
    reply = {"body": "Your points are back.", "status": "waiting", "idempotency_key": keys["reply"]}
    sent = await browser.post(f"/console/tickets/{tid}/reply", reply)
    assert sent.status_code == 303 and sent.headers["location"] == f"/console/tickets/{tid}"
    note = {"body": "Checked the till log", "idempotency_key": keys["note"]}
    noted = await browser.post(f"/console/tickets/{tid}/note", note)
    assert noted.status_code == 303
    mine = (await api.get(f"/v1/members/{anna}/tickets")).json()["items"][0]
    assert [m["body"] for m in mine["messages"]] == ["Where are they?", "Your points are back."]
    assert mine["status"] == "waiting"
    full = (await api.get(f"/v1/tickets/{tid}")).json()
    assert [m["body"] for m in full["messages"] if not m["public"]] == ["Checked the till log"]
    assert full["messages"][1]["author"]["name"] == "support person"
    page = await browser.get(f"/console/tickets/{tid}")
    assert "The note is saved." in page.text and "Internal note" in page.text
    empty = await browser.post(
        f"/console/tickets/{tid}/reply", {"body": "   ", "idempotency_key": a_key()}
    )
    assert empty.status_code == 422 and 'aria-invalid="true"' in empty.text
    assert len((await api.get(f"/v1/tickets/{tid}")).json()["messages"]) == 3


async def test_a_reply_or_note_sent_twice_is_sent_once(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api)
    tid = (await ticket(api, anna))["id"]
    await console_as(browser, engine, program, Role.SUPPORT)
    keys = await form_keys(browser, tid)
    reply = {"body": "Your points are back.", "idempotency_key": keys["reply"]}
    note = {"body": "Checked the till log", "idempotency_key": keys["note"]}
    for _ in range(2):  # a double click
        sent = await browser.post(f"/console/tickets/{tid}/reply", reply)
        assert sent.status_code == 303
        assert (await browser.post(f"/console/tickets/{tid}/note", note)).status_code == 303
    mine = (await api.get(f"/v1/members/{anna}/tickets")).json()["items"][0]
    assert [m["body"] for m in mine["messages"]] == ["Where are they?", "Your points are back."]
    full = (await api.get(f"/v1/tickets/{tid}")).json()
    assert [m["body"] for m in full["messages"] if not m["public"]] == ["Checked the till log"]
    log = (await api.get("/v1/audit")).json()["items"]
    routes = [e["action"] for e in log if e["action"].startswith("POST /console/tickets")]
    assert sorted(routes) == [
        "POST /console/tickets/{ticket_id}/note",
        "POST /console/tickets/{ticket_id}/reply",
    ]
    # A new page, a new key: another reply is sent.
    again = await form_keys(browser, tid)
    assert again["reply"] != keys["reply"]
    other = {"body": "Anything else?", "idempotency_key": again["reply"]}
    assert (await browser.post(f"/console/tickets/{tid}/reply", other)).status_code == 303
    assert len((await api.get(f"/v1/tickets/{tid}")).json()["messages"]) == 4
    # The same key with another text is refused above the forms, nothing sent.
    changed = await browser.post(
        f"/console/tickets/{tid}/reply", {**reply, "body": "Something else"}
    )
    assert changed.status_code == 409 and "This form was sent already" in changed.text
    assert keys["reply"] not in KEY.findall(changed.text)  # the form shown has a new key
    assert len((await api.get(f"/v1/tickets/{tid}")).json()["messages"]) == 4


async def test_a_reply_without_its_key_is_refused(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api)
    tid = (await ticket(api, anna))["id"]
    await console_as(browser, engine, program, Role.SUPPORT)
    for key in ("", "not a key!", "x" * 300):
        refused = await browser.post(
            f"/console/tickets/{tid}/reply", {"body": "Hi", "idempotency_key": key}
        )
        assert refused.status_code == 422 and "one-time key" in refused.text, key
        assert KEY.findall(refused.text)[0] != key  # the form shown again has a good one
    refused = await browser.post(f"/console/tickets/{tid}/reply", {"body": "Hi"})
    assert refused.status_code == 422
    assert len((await api.get(f"/v1/tickets/{tid}")).json()["messages"]) == 1


async def test_assign_move_reprioritise_and_close(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api)
    tid = (await ticket(api, anna))["id"]
    await console_as(browser, engine, program, Role.SUPPORT)
    taken = await browser.post(f"/console/tickets/{tid}/assign", {"assignee_id": "me"})
    assert taken.status_code == 303
    me = (await api.get(f"/v1/tickets/{tid}")).json()["assignee_id"]
    assert me is not None
    assert "support person" in (await browser.get("/console/tickets", assignee="me")).text
    changed = await browser.post(
        f"/console/tickets/{tid}/update",
        {"status": "open", "priority": "high", "category": "points"},
    )
    assert changed.status_code == 303
    now = (await api.get(f"/v1/tickets/{tid}")).json()
    assert (now["status"], now["priority"], now["category"]) == ("open", "high", "points")
    unknown = await browser.post(f"/console/tickets/{tid}/update", {"category": "nonsense"})
    assert unknown.status_code == 422 and "no category" in unknown.text
    freed = await browser.post(f"/console/tickets/{tid}/assign", {"assignee_id": ""})
    assert freed.status_code == 303
    assert (await api.get(f"/v1/tickets/{tid}")).json()["assignee_id"] is None
    closed = await browser.post(f"/console/tickets/{tid}/update", {"status": "closed"})
    assert closed.status_code == 303
    reopened = await browser.post(f"/console/tickets/{tid}/update", {"status": "open"})
    assert reopened.status_code == 409 and "cannot become open" in reopened.text
    page = await browser.get(f"/console/tickets/{tid}")
    assert "Send the reply" not in page.text  # a closed ticket takes no replies
    assert (await api.get(f"/v1/tickets/{tid}")).json()["status"] == "closed"


async def test_store_limited_staff_see_only_their_stores_tickets(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api)
    ours = await ticket(api, anna, subject="At our store", store="store-01")
    theirs = await ticket(api, anna, subject="At another store", store="store-02")
    await console_as(browser, engine, program, Role.STORE_MANAGER, stores=["store-01"])
    inbox = await browser.get("/console/tickets")
    assert "At our store" in inbox.text and "At another store" not in inbox.text
    assert (await browser.get(f"/console/tickets/{ours['id']}")).status_code == 200
    assert (await browser.get(f"/console/tickets/{theirs['id']}")).status_code == 404
    refused = await browser.post(
        f"/console/tickets/{theirs['id']}/reply", {"body": "Hi", "idempotency_key": a_key()}
    )
    assert refused.status_code == 404
    assert len((await api.get(f"/v1/tickets/{theirs['id']}")).json()["messages"]) == 1


async def test_roles_without_tickets_and_other_programs_are_refused(
    browsers: Any, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api)
    tid = (await ticket(api, anna))["id"]
    marketer = await console_as(browsers(), engine, program, Role.MARKETING)
    assert (await marketer.get("/console/tickets")).status_code == 403
    assert (await marketer.get(f"/console/tickets/{tid}")).status_code == 403
    assert (await marketer.post(f"/console/tickets/{tid}/reply", {"body": "x"})).status_code == 403
    assert 'href="/console/tickets"' not in (await marketer.get("/console/account")).text
    other = await make_program(engine)
    stranger = await console_as(browsers(), engine, other, Role.OWNER)
    assert (await stranger.get(f"/console/tickets/{tid}")).status_code == 404
    assert "Points missing" not in (await stranger.get("/console/tickets")).text
