"""The console's team pages (adding people, roles and stores, disabling, ending sessions,
the last owner kept) and one's own account's security (password, authenticator app)."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_program
from tests.web.conftest import PASSWORD, Browser, console_as, make_staff, sign_in_staff

T0 = datetime(2031, 5, 6, 9, 0, 10, tzinfo=UTC)
NEW_PASSWORD = "another long pass phrase"


async def test_the_team_page_shows_the_accounts(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    made = await api.post(
        "/v1/staff",
        {
            "email": "olga@shop.example",
            "name": "Olga Ivanova",
            "role": "store_manager",
            "stores": ["store-07"],
            "password": PASSWORD,
        },
    )
    assert made.status_code == 201, made.text
    await console_as(browser, engine, program, Role.OWNER)
    page = await browser.get("/console/staff")
    assert page.status_code == 200
    assert "Olga Ivanova" in page.text and "olga@shop.example" in page.text
    assert "Store manager" in page.text and "store-07" in page.text and "Never" in page.text
    person = await browser.get(f"/console/staff/{made.json()['id']}")
    assert person.status_code == 200 and "Disable the account" in person.text


async def test_adding_someone_and_a_short_password(
    browsers: Any, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    owner = await console_as(browsers(), engine, program, Role.OWNER)
    # An address of this test only: the same one with the same password in another test's
    # program would make signing in ask which program.
    email = f"ivan-{uuid.uuid4().hex[:8]}@shop.example"
    form = {"name": "Ivan", "email": email, "role": "support", "stores": ""}
    short = await owner.post("/console/staff/new", form | {"password": "short"})
    assert short.status_code == 422 and "a password has 12 to 256 characters" in short.text
    assert f'value="{email}"' in short.text and 'value="short"' not in short.text
    emails = [s["email"] for s in (await api.get("/v1/staff")).json()["items"]]
    assert email not in emails
    added = await owner.post(
        "/console/staff/new", form | {"password": PASSWORD, "stores": "store-01, store-02"}
    )
    assert added.status_code == 303
    ivan = next(s for s in (await api.get("/v1/staff")).json()["items"] if s["name"] == "Ivan")
    assert (ivan["role"], ivan["stores"]) == ("support", ["store-01", "store-02"])
    assert added.headers["location"] == f"/console/staff/{ivan['id']}"
    again = await owner.post("/console/staff/new", form | {"password": PASSWORD})
    assert again.status_code == 409 and "already has an account" in again.text
    signed_in = await sign_in_staff(browsers(), email)
    assert signed_in.status_code == 303


async def test_role_stores_disable_enable_and_end_sessions(
    browsers: Any, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    owner = await console_as(browsers(), engine, program, Role.OWNER)
    email, anna_id = await make_staff(engine, program, Role.SUPPORT)
    anna = browsers()
    assert (await sign_in_staff(anna, email)).status_code == 303
    assert (await anna.get("/console/tickets")).status_code == 200
    changed = await owner.post(
        f"/console/staff/{anna_id}/edit", {"name": "Anna", "role": "cashier", "stores": "s-9"}
    )
    assert changed.status_code == 303
    now = (await api.get(f"/v1/staff/{anna_id}")).json()
    assert (now["name"], now["role"], now["stores"]) == ("Anna", "cashier", ["s-9"])
    assert (await anna.get("/console/tickets")).status_code == 403  # the next request knows
    everywhere = await owner.post(
        f"/console/staff/{anna_id}/edit", {"name": "Anna", "role": "cashier"}
    )
    assert everywhere.status_code == 303
    assert (await api.get(f"/v1/staff/{anna_id}")).json()["stores"] is None
    ended = await owner.post(f"/console/staff/{anna_id}/end-sessions")
    assert ended.status_code == 303
    assert (await anna.get("/console/account")).status_code == 303  # back to sign in
    assert (await sign_in_staff(anna, email)).status_code == 303
    disabled = await owner.post(f"/console/staff/{anna_id}/status", {"status": "disabled"})
    assert disabled.status_code == 303
    assert (await api.get(f"/v1/staff/{anna_id}")).json()["status"] == "disabled"
    assert (await anna.get("/console/account")).status_code == 303
    assert (await sign_in_staff(browsers(), email)).status_code == 401
    enabled = await owner.post(f"/console/staff/{anna_id}/status", {"status": "active"})
    assert enabled.status_code == 303
    assert (await sign_in_staff(browsers(), email)).status_code == 303


async def test_the_last_owner_stays_an_owner(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.OWNER)
    me = next(s for s in (await api.get("/v1/staff")).json()["items"] if s["role"] == "owner")
    demoted = await browser.post(
        f"/console/staff/{me['id']}/edit", {"name": me["name"], "role": "support"}
    )
    assert demoted.status_code == 409 and "the program&#39;s last owner" in demoted.text
    assert '<div class="field invalid">\n  <label for="f-role">' in demoted.text  # beside it
    page = await browser.get(f"/console/staff/{me['id']}")
    assert "Disable the account" not in page.text  # not one's own
    disabled = await browser.post(f"/console/staff/{me['id']}/status", {"status": "disabled"})
    assert disabled.status_code == 409 and "your own account" in disabled.text
    assert (await api.get(f"/v1/staff/{me['id']}")).json()["role"] == "owner"
    assert (await api.get(f"/v1/staff/{me['id']}")).json()["status"] == "active"
    assert (await browser.get("/console/account")).status_code == 200  # still signed in


async def test_an_owner_cannot_disable_themselves_while_another_owner_exists(
    browsers: Any, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, me = await make_staff(engine, program, Role.OWNER)
    _, other = await make_staff(engine, program, Role.OWNER)
    owner = browsers()
    assert (await sign_in_staff(owner, email)).status_code == 303
    refused = await owner.post(f"/console/staff/{me}/status", {"status": "disabled"})
    assert refused.status_code == 409 and "your own account" in refused.text
    assert (await api.get(f"/v1/staff/{me}")).json()["status"] == "active"
    assert (await owner.get("/console/account")).status_code == 200
    done = await owner.post(f"/console/staff/{other}/status", {"status": "disabled"})
    assert done.status_code == 303
    assert (await api.get(f"/v1/staff/{other}")).json()["status"] == "disabled"


async def test_an_unknown_status_is_refused_naming_the_field(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.OWNER)
    _, someone = await make_staff(engine, program, Role.SUPPORT)
    before = (await api.get("/v1/audit", action="staff.updated")).json()["items"]
    for status in ("bogus", ""):
        refused = await browser.post(f"/console/staff/{someone}/status", {"status": status})
        assert refused.status_code == 422 and "status: " in refused.text, status
    assert (await api.get("/v1/audit", action="staff.updated")).json()["items"] == before
    assert (await api.get(f"/v1/staff/{someone}")).json()["status"] == "active"


async def test_only_the_owner_manages_the_team_of_their_program(
    browsers: Any, engine: AsyncEngine, program: ProgramContext
) -> None:
    _, someone = await make_staff(engine, program, Role.CASHIER)
    crm = await console_as(browsers(), engine, program, Role.CRM)
    assert (await crm.get("/console/staff")).status_code == 403
    assert (await crm.get("/console/staff/new")).status_code == 403
    assert (
        await crm.post(f"/console/staff/{someone}/status", {"status": "disabled"})
    ).status_code == 403
    assert 'href="/console/staff"' not in (await crm.get("/console/account")).text
    other = await make_program(engine)
    stranger = await console_as(browsers(), engine, other, Role.OWNER)
    assert (await stranger.get(f"/console/staff/{someone}")).status_code == 404
    refused = await stranger.post(f"/console/staff/{someone}/end-sessions")
    assert refused.status_code == 404


# --- one's own account ----------------------------------------------------------------------


async def test_changing_ones_password(
    browsers: Any, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, _ = await make_staff(engine, program, Role.CASHIER)
    here, laptop = browsers(), browsers()
    for browser in (here, laptop):
        assert (await sign_in_staff(browser, email)).status_code == 303
    page = await here.get("/console/account/password")
    assert page.status_code == 200 and 'autocomplete="current-password"' in page.text
    differ = await here.post(
        "/console/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_again": "x"},
    )
    assert differ.status_code == 422 and "The two new passwords differ." in differ.text
    wrong = await here.post(
        "/console/account/password",
        {
            "current_password": "not my password",
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 422 and "the current password is wrong" in wrong.text
    assert "rests" not in wrong.text
    short = await here.post(
        "/console/account/password",
        {"current_password": PASSWORD, "new_password": "short", "new_password_again": "short"},
    )
    assert short.status_code == 422 and "a password has 12 to 256 characters" in short.text
    changed = await here.post(
        "/console/account/password",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/console/account"
    assert (await here.get("/console/account")).status_code == 200  # this session goes on
    assert (await laptop.get("/console/account")).status_code == 303  # the other one ended
    old = await browsers().post("/console/sign-in", {"email": email, "password": PASSWORD})
    assert old.status_code == 401
    new = await browsers().post("/console/sign-in", {"email": email, "password": NEW_PASSWORD})
    assert new.status_code == 303


async def test_guessing_the_current_password_rests_the_account(
    browsers: Any, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    email, staff_id = await make_staff(engine, program, Role.CASHIER)
    here = browsers()
    wrong = {
        "current_password": "not my password",
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
    }
    with clock.frozen(T0):
        assert (await sign_in_staff(here, email)).status_code == 303
        for _ in range(5):
            refused = await here.post("/console/account/password", wrong)
            assert refused.status_code == 422 and "the current password is wrong" in refused.text
        right = {**wrong, "current_password": PASSWORD}
        resting = await here.post("/console/account/password", right)
        assert resting.status_code == 429 and "rests for 15 minutes" in resting.text
        assert (await sign_in_staff(browsers(), email)).status_code == 401
    log = (await api.get("/v1/audit", action="staff.sign_in_failed")).json()["items"]
    assert [(e["subject_id"], e["after"]["wrong"]) for e in log] == [
        (str(staff_id), "password")
    ] * 5
    with clock.frozen(T0 + timedelta(minutes=16)):
        assert (await here.post("/console/account/password", right)).status_code == 303


async def test_setting_up_and_turning_off_the_authenticator(
    browsers: Any, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        email, _ = await make_staff(engine, program, Role.ANALYST)
        me = browsers()
        assert (await sign_in_staff(me, email)).status_code == 303
        off = await me.get("/console/account/totp")
        assert off.status_code == 200 and "Set up the authenticator app" in off.text
        started = await me.post("/console/account/totp/start")
        assert started.status_code == 303
        assert started.headers["location"] == "/console/account/totp"
        setup = await me.get("/console/account/totp")
        assert 'src="data:image/svg+xml' in setup.text
        found = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', setup.text)
        assert found
        totp = pyotp.TOTP(found.group(1).replace(" ", ""))
        not_it = "000000" if totp.at(T0) != "000000" else "111111"
        wrong = await me.post("/console/account/totp/confirm", {"code": not_it})
        assert wrong.status_code == 422 and "the code is wrong" in wrong.text
        assert 'src="data:image/svg+xml' in wrong.text  # the set-up is still shown
        confirmed = await me.post("/console/account/totp/confirm", {"code": totp.at(T0)})
        assert confirmed.status_code == 303
        assert "On" in (await me.get("/console/account")).text
        needs_code = await sign_in_staff(browsers(), email)
        assert needs_code.status_code == 401
        with_code = await browsers().post(
            "/console/sign-in",
            {"email": email, "password": PASSWORD, "totp": totp.at(T0 + timedelta(seconds=30))},
        )
        assert with_code.status_code == 303
    with clock.frozen(T0 + timedelta(seconds=60)):
        turned_off = await me.post(
            "/console/account/totp/disable", {"code": totp.at(T0 + timedelta(seconds=60))}
        )
        assert turned_off.status_code == 303
        assert (await sign_in_staff(browsers(), email)).status_code == 303
