"""Signing in to the console, CSRF, the security headers and the language of the pages."""

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.programs.service import ProgramContext
from kopilka.web.security import CONTENT_SECURITY_POLICY
from tests.web.conftest import Browser, make_staff, sign_in_staff


async def test_sign_in_sets_a_session_cookie_and_sign_out_ends_it(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.OWNER)
    answer = await sign_in_staff(browser, email)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = answer.headers["set-cookie"]
    assert "kopilka_console=ks_" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert "Path=/console" in cookie and "SameSite=lax" in cookie
    assert (await browser.get("/console/sign-in")).headers["location"] == "/console/"
    out = await browser.post("/console/sign-out")
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    # The session is ended on the server, not only forgotten by this browser.
    browser.client.cookies.set("kopilka_console", cookie.split(";")[0].split("=", 1)[1])
    again = await browser.get("/console/account")
    assert again.status_code == 303 and again.headers["location"].startswith("/console/sign-in")


async def test_a_wrong_password_is_one_message_and_changes_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.CRM)
    answer = await browser.post("/console/sign-in", {"email": email, "password": "not it at all"})
    assert answer.status_code == 401 and "Wrong e-mail, password or code." in answer.text
    assert "kopilka_console" not in answer.headers.get("set-cookie", "")


async def test_a_form_without_the_csrf_token_is_refused(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.OWNER)
    await browser.token()
    forged = await browser.client.post(
        "/console/sign-in", data={"email": email, "password": "correct horse battery staple"}
    )
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    other_site = await browser.client.post(
        "/console/sign-in",
        data={"email": email, "password": "x", "csrf_token": await browser.token()},
        headers={"origin": "https://evil.example"},
    )
    assert other_site.status_code == 403 and "another site" in other_site.text


async def test_pages_carry_a_policy_without_inline_scripts(browser: Browser) -> None:
    page = await browser.get("/console/sign-in")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert (
        "script-src 'self'" in CONTENT_SECURITY_POLICY
        and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    )
    assert "<script>" not in page.text and " style=" not in page.text
    assert page.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("ru-RU,ru;q=0.9", "Войти"), ("en-GB,en;q=0.8", "Sign in"), ("", "Войти")],
)
async def test_the_language_follows_the_browser_then_the_choice(
    browser: Browser, header: str, expected: str
) -> None:
    page = await browser.client.get("/console/sign-in", headers={"accept-language": header})
    assert expected in page.text
    chosen = await browser.client.get("/lang/en", params={"next": "/console/sign-in"})
    assert chosen.status_code == 303 and chosen.headers["location"] == "/console/sign-in"
    page = await browser.client.get("/console/sign-in", headers={"accept-language": "ru"})
    assert "Sign in" in page.text and '<html lang="en">' in page.text


async def test_the_language_switch_never_leads_off_the_site(browser: Browser) -> None:
    away = await browser.get("/lang/ru", next="//evil.example/")
    assert away.headers["location"] == "/console/"


async def test_the_account_page_says_who_i_am_and_leads_to_my_password_and_second_factor(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.SUPPORT)
    await sign_in_staff(browser, email)
    page = await browser.get("/console/account")
    assert page.status_code == 200 and email in page.text and "tickets.handle" in page.text
    assert 'href="/console/account/password"' in page.text
    assert 'href="/console/account/totp"' in page.text
    assert "audit.read" not in page.text
    password = await browser.get("/console/account/password")
    assert password.status_code == 200


async def test_a_form_from_a_page_of_no_site_or_with_a_nul_character_changes_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.OWNER)
    token = await browser.token()
    sandboxed = await browser.client.post(
        "/console/sign-in",
        data={"email": email, "password": "correct horse battery staple", "csrf_token": token},
        headers={"origin": "null"},
    )
    assert sandboxed.status_code == 403
    nul = await browser.post("/console/sign-in", {"email": "a\x00b@x.example", "password": "p"})
    assert nul.status_code == 422 and "NUL" in nul.text


async def test_a_page_that_does_not_exist_is_a_404_in_the_pages_language(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.SUPPORT)
    await sign_in_staff(browser, email)
    bad_id = await browser.client.get(
        "/console/members/not-an-id", headers={"accept-language": "ru"}
    )
    assert bad_id.status_code == 404 and "Такой страницы нет" in bad_id.text
    refused = await browser.client.get("/console/audit", headers={"accept-language": "ru"})
    assert refused.status_code == 403
    assert "Ваша роль этого не позволяет (нужно право audit.read)." in refused.text
