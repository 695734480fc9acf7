"""The console's message templates: the list of kinds and languages, a template's page,
saving (what the API then answers), a broken part refused at the part, the preview with
sample data, the saved HTML in its own sandboxed frame, and a test send that reaches a
real SMTP server — on SQLite and PostgreSQL."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.messaging.domain import Channel
from kopilka.messaging.sender import MessageSender, Route, SmtpDeliverer, Throttle
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import unique
from tests.messaging.conftest import SmtpServer, smtp_server  # noqa: F401 - the fixture
from tests.messaging.test_flow import smtp_config
from tests.web.conftest import Browser, console_as

PAGE = "/console/templates/points_spent/en"


async def test_the_list_shows_every_kind_and_what_the_program_wrote(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    saved = await api.put("/v1/templates/birthday/ru", {"parts": {"subject": "С днём рождения!"}})
    assert saved.status_code == 200
    await console_as(browser, engine, program, Role.SUPPORT)
    page = await browser.get("/console/templates")
    assert page.status_code == 200
    listed = (await api.get("/v1/templates")).json()["items"]
    for item in listed:
        assert f'href="/console/templates/{item["kind"]}/ru"' in page.text
    assert "customised, version 1" in page.text
    row = page.text.split('href="/console/templates/birthday/ru"')[1].split("</a>")[0]
    assert "customised, version 1" in row


async def test_saving_changes_what_the_api_answers(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    page = await browser.get(PAGE)
    assert page.status_code == 200
    shipped = (await api.get("/v1/templates/points_spent/en")).json()
    assert shipped["version"] == 0
    # The form shows the texts in use, each part in its textarea.
    assert 'name="parts.subject"' in page.text and 'name="parts.html"' in page.text
    parts = {f"parts.{p}": s for p, s in shipped["parts"].items()}
    subject = "{{ member.first_name }}, you spent {{ amount|points }}"
    answer = await browser.post(PAGE, parts | {"parts.subject": subject})
    assert answer.status_code == 303 and answer.headers["location"] == PAGE
    after = (await api.get("/v1/templates/points_spent/en")).json()
    assert after["version"] == 1 and after["parts"]["subject"] == subject
    assert after["parts"]["text"] == shipped["parts"]["text"]
    again = await browser.get(PAGE)
    assert "Saved as version 1." in again.text and "customised, version 1" in again.text
    assert "in use" in again.text  # the versions, with the one in use
    # Posting the same texts again (as a browser does: CRLF line ends) is no new version.
    crlf = {name: source.replace("\n", "\r\n") for name, source in parts.items()}
    same = await browser.post(PAGE, crlf | {"parts.subject": subject})
    assert same.status_code == 303
    assert (await api.get("/v1/templates/points_spent/en")).json()["version"] == 1
    assert "Nothing changed." in (await browser.get(PAGE)).text
    # The other language is untouched.
    assert (await api.get("/v1/templates/points_spent/ru")).json()["version"] == 0


async def test_a_broken_part_is_refused_at_the_part_and_saves_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    broken = await browser.post(PAGE, {"parts.text": "Hello\n{% if %}"})
    assert broken.status_code == 422
    assert '<small id="e-parts.text" class="field-error">text, line 2:' in broken.text
    assert 'aria-invalid="true" aria-describedby="e-parts.text"' in broken.text
    assert "{% if %}" in broken.text  # what was typed stays
    unknown = await browser.post(PAGE, {"parts.sms": "{{ nobody }}"})
    assert unknown.status_code == 422
    assert 'id="e-parts.sms"' in unknown.text and "nobody" in unknown.text
    assert (await api.get("/v1/templates/points_spent/en")).json()["version"] == 0


async def test_the_preview_renders_the_form_with_sample_data(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await console_as(browser, engine, program, Role.SUPPORT)  # reading is enough
    preview = await browser.post(
        f"{PAGE}/preview",
        {
            "parts.subject": "Hi {{ member.name }}",
            "parts.text": "You spent {{ amount|points }}",
            "parts.html": "<p>Hi <b>{{ member.name }}</b><script>x()</script></p>",
            "parts.sms": "Потрачено {{ amount|points }}",
        },
    )
    assert preview.status_code == 200
    assert "Hi Анна" in preview.text
    assert "You spent 300\u00a0points" in preview.text  # "points" agrees with the number
    # The HTML is shown as its source, escaped: nothing of it runs in the console.
    assert "&lt;p&gt;Hi &lt;b&gt;Анна&lt;/b&gt;&lt;script&gt;" in preview.text
    assert "<script>x()" not in preview.text
    assert "1 segment" in preview.text and "ucs2" in preview.text
    broken = await browser.post(f"{PAGE}/preview", {"parts.push_body": "{{ amount|points"})
    assert broken.status_code == 422 and 'id="e-parts.push_body"' in broken.text
    assert (await api.get("/v1/templates/points_spent/en")).json()["version"] == 0


async def test_the_saved_html_is_drawn_in_a_sandboxed_frame(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    html = '<p style="color: red">Hi {{ member.name }}</p><script>alert(1)</script>'
    assert (
        await api.put("/v1/templates/points_spent/en", {"parts": {"html": html}})
    ).status_code == 200
    await console_as(browser, engine, program, Role.SUPPORT)
    page = await browser.get(PAGE)
    assert f'<iframe class="message-frame" sandbox src="{PAGE}/preview.html"' in page.text
    frame = await browser.get(f"{PAGE}/preview.html")
    assert frame.status_code == 200 and "Hi Анна" in frame.text
    policy = frame.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy
    assert "script-src" not in policy and "frame-ancestors 'self'" in policy


async def test_a_test_send_goes_out_through_smtp(
    browser: Browser,
    engine: AsyncEngine,
    program: ProgramContext,
    api: Api,
    smtp_server: SmtpServer,  # noqa: F811 - the fixture imported above
) -> None:
    await api.put(
        "/v1/templates/points_spent/en", {"parts": {"subject": "Console test {{ amount }}"}}
    )
    address = f"{unique('console')}@example.com"
    await console_as(browser, engine, program, Role.MARKETING)
    sent = await browser.post(f"{PAGE}/test", {"channel": "email", "to": address})
    assert sent.status_code == 303, sent.text
    assert f"Test message queued to {address}" in (await browser.get(PAGE)).text
    queued = (await api.get("/v1/messages", kind="points_spent")).json()["items"]
    assert [m["to"] for m in queued] == [address]
    routes = {Channel.EMAIL: Route(SmtpDeliverer(smtp_config(smtp_server)), Throttle(0), 10)}
    sender = MessageSender(engine, routes)
    for _ in range(20):
        if not await sender.send_due():
            break
    arrived = [m for m in smtp_server.received() if m["To"] == address]
    assert len(arrived) == 1 and arrived[0]["Subject"] == "Console test 300"
    refused = await browser.post(f"{PAGE}/test", {"channel": "email", "to": "not an address"})
    assert refused.status_code == 422 and 'id="e-test.to"' in refused.text
    neither = await browser.post(f"{PAGE}/test", {"channel": "email"})
    assert neither.status_code == 422 and "give either to or member_id" in neither.text
    system = await browser.get("/console/templates/consent_confirm/en")
    assert "cannot be sent as a test" in system.text


async def test_roles_without_the_permission_are_refused(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    support = await console_as(browsers(), engine, program, Role.SUPPORT)
    page = await support.get(PAGE)
    assert page.status_code == 200
    assert "Save as a new version" not in page.text and "Send a test" not in page.text
    assert (await support.post(PAGE, {"parts.subject": "x"})).status_code == 403
    assert (
        await support.post(f"{PAGE}/test", {"channel": "email", "to": "a@b.example"})
    ).status_code == 403
    cashier = await console_as(browsers(), engine, program, Role.CASHIER)
    assert (await cashier.get("/console/templates")).status_code == 403
    assert (await cashier.get(PAGE)).status_code == 403
    assert (await cashier.get(f"{PAGE}/preview.html")).status_code == 403
    assert (await cashier.post(f"{PAGE}/preview", {"parts.text": "x"})).status_code == 403
    assert (await api.get("/v1/templates/points_spent/en")).json()["version"] == 0


async def test_unknown_kinds_and_languages_and_other_programs(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api, http: Any
) -> None:
    other = await make_program(engine)
    theirs = Api(http, await make_key(engine, other, "admin"))
    await theirs.put("/v1/templates/points_spent/en", {"parts": {"subject": "Their own words"}})
    await console_as(browser, engine, program, Role.OWNER)
    assert (await browser.get("/console/templates/no_such_kind/en")).status_code == 404
    assert (await browser.get("/console/templates/points_spent/de")).status_code == 404
    page = await browser.get(PAGE)
    assert "Their own words" not in page.text and "shipped texts" in page.text
