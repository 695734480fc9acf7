"""The console's audit log: what the other pages' actions changed is listed, newest first,
with its before and after as readable JSON; the API's filters; only the owner reads it."""

import re
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_program
from tests.fixtures.factories import member_body
from tests.web.conftest import PASSWORD, Browser, console_as


async def test_the_pages_changes_are_in_the_log(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = (await api.post("/v1/members", member_body(name="Anna"))).json()["id"]
    ticket = await api.post(
        "/v1/tickets", {"member_id": anna, "subject": "Points", "body": "Where are they?"}
    )
    await console_as(browser, engine, program, Role.OWNER)
    staff = await browser.post(
        "/console/staff/new",
        {
            "name": "Ivan Petrov",
            "email": "ivan@shop.example",
            "role": "support",
            "password": PASSWORD,
        },
    )
    assert staff.status_code == 303
    ivan = staff.headers["location"].rsplit("/", 1)[1]
    promoted = await browser.post(
        f"/console/staff/{ivan}/edit", {"name": "Ivan Petrov", "role": "crm"}
    )
    assert promoted.status_code == 303
    key = await browser.post("/console/api-keys/new", {"name": "till 7", "scopes": "pos"})
    assert key.status_code == 200
    hook = await browser.post(
        "/console/webhooks/new", {"url": "https://hooks.example/in", "event_types": "*"}
    )
    assert hook.status_code == 200
    reply = await browser.post(
        f"/console/tickets/{ticket.json()['id']}/reply",
        {"body": "Found them", "idempotency_key": f"console-{uuid.uuid4().hex}"},
    )
    assert reply.status_code == 303

    page = await browser.get("/console/audit")
    assert page.status_code == 200
    for action in (
        "staff.created",
        "staff.updated",
        "api_key.created",
        "POST /console/webhooks/new",
        "POST /console/tickets/{ticket_id}/reply",
        "staff.signed_in",
    ):
        assert action in page.text, action
    # Newest first: the reply was the last change.
    assert page.text.index("POST /console/tickets/{ticket_id}/reply") < page.text.index(
        "staff.created"
    )
    # Before and after, readable: the role Ivan had and has.
    assert "&#34;role&#34;: &#34;support&#34;" in page.text
    assert "&#34;role&#34;: &#34;crm&#34;" in page.text
    assert "&#34;name&#34;: &#34;till 7&#34;" in page.text
    assert PASSWORD not in page.text and "whsec_" not in page.text

    only_staff = await browser.get("/console/audit", action="staff.")
    assert "staff.updated" in only_staff.text and "api_key.created" not in only_staff.text
    about_ivan = await browser.get("/console/audit", subject_type="staff", subject_id=ivan)
    rows = about_ivan.text.split("<tbody>")[1]
    assert "staff.created" in rows and "staff.updated" in rows and "api_key" not in rows
    owner_id = re.search(r'href="/console/audit\?actor_id=([0-9a-f-]{36})"', page.text)
    assert owner_id
    by_owner = await browser.get("/console/audit", actor_id=owner_id.group(1))
    assert "POST /console/webhooks/new" in by_owner.text
    long_ago = await browser.get("/console/audit", **{"from": "2001-01-01", "to": "2001-12-31"})
    assert "No entries match these filters." in long_ago.text
    bad = await browser.get("/console/audit", actor_id="not-an-id")
    assert bad.status_code == 422


async def test_the_log_pages_newest_first(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    for n in range(51):
        created = await api.post("/v1/stores", {"code": f"s-{n:02d}", "name": f"Store {n:02d}"})
        assert created.status_code == 201, created.text
    await console_as(browser, engine, program, Role.OWNER)
    first = await browser.get("/console/audit", action="POST /v1/stores")
    assert "s-50" in first.text and "s-00" not in first.text
    link = first.text.split('class="pager"')[1].split('href="')[1].split('"')[0]
    second = await browser.client.get(link.replace("&amp;", "&"))
    assert "s-00" in second.text and "s-50" not in second.text


async def test_only_the_owner_reads_the_log_of_their_program(
    browsers: Any, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    await api.post("/v1/stores", {"code": "secret-store", "name": "Hidden"})
    crm = await console_as(browsers(), engine, program, Role.CRM)
    assert (await crm.get("/console/audit")).status_code == 403
    assert 'href="/console/audit"' not in (await crm.get("/console/account")).text
    other = await make_program(engine)
    stranger = await console_as(browsers(), engine, other, Role.OWNER)
    assert "secret-store" not in (await stranger.get("/console/audit")).text


async def test_the_pages_speak_russian(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = (await api.post("/v1/members", member_body())).json()["id"]
    ticket = await api.post("/v1/tickets", {"member_id": anna, "subject": "S", "body": "B"})
    survey = {"key": "k", "name": "N", "questions": [{"id": "q", "type": "csat", "text": "?"}]}
    assert (await api.post("/v1/surveys", survey)).status_code == 201
    await console_as(browser, engine, program, Role.OWNER)
    browser.client.cookies.set("kopilka_lang", "ru", domain="kopilka.test")
    pages = {
        "/console/tickets": "Сначала ближайший срок",
        f"/console/tickets/{ticket.json()['id']}": "Ответить участнику",
        "/console/surveys": "Опросы и их оценки",
        "/console/surveys/k": "Довольные (4–5)",
        "/console/surveys/new": "Вопрос 1",
        "/console/webhooks": "Новый вебхук",
        "/console/webhooks/new": "Создать вебхук",
        "/console/api-keys": "Новый API-ключ",
        "/console/api-keys/new": "Области доступа",
        "/console/staff": "Добавить сотрудника",
        "/console/staff/new": "Первый пароль",
        "/console/audit": "Записи, сначала новые",
        "/console/account/password": "Сменить пароль",
        "/console/account/totp": "Настроить приложение-аутентификатор",
    }
    for path, text in pages.items():
        page = await browser.get(path)
        assert page.status_code == 200, path
        assert text in page.text, path
