"""Signing in to the members' app with a one-time code, joining from the app, signing out:
the code goes out as a message, is checked (wrong, expired, used, replaced, out of tries),
answers never tell who is a member, and requests are rate-limited."""

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.app import create_app
from kopilka.config import Settings, get_settings
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.memberaccess.domain import CODE_TRIES
from kopilka.messaging.composition import SECRET_HIDDEN, SECRET_REMOVED, SendResult
from kopilka.messaging.delivery import delivery_service
from kopilka.messaging.repository import messaging_repository
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext
from kopilka.web.app.access import APP_COOKIE
from tests.conftest import Api, make_program
from tests.web.conftest import Browser, app_as

T0 = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)
CODE = re.compile(r"\b(\d{6})\b")


def sending(outbox: Path, **changes: Any) -> Settings:
    """Settings of a server that sends e-mail (to files in ``outbox``) and SMS, with
    ``changes`` over them."""
    base = {"mail_outbox_dir": str(outbox), "sms_provider": "generic", "sms_url": "http://sms"}
    return get_settings().model_copy(update=base | changes)


def browsers_on(settings: Settings, engine: AsyncEngine) -> Any:
    """The ``browsers`` fixture's maker, on an application with ``settings``."""

    async def make() -> AsyncIterator[Callable[[], Browser]]:
        app = create_app(settings, engine=engine)
        clients: list[httpx.AsyncClient] = []

        def one() -> Browser:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="https://kopilka.test",
                headers={"accept-language": "en"},
            )
            clients.append(client)
            return Browser(client)

        async with app.router.lifespan_context(app):
            yield one
        for client in clients:
            await client.aclose()

    return make()


@pytest.fixture
async def browsers(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Callable[[], Browser]]:
    """Browsers on a server that can send codes by e-mail and by SMS."""
    async for made in browsers_on(sending(tmp_path), engine):
        yield made


def email() -> str:
    return f"anna-{uuid4().hex[:8]}@shop.example"


def phone() -> str:
    return f"+7916{uuid4().int % 10**7:07d}"


async def member(api: Api, **fields: Any) -> str:
    answer = await api.post("/v1/members", {"name": "Anna Petrova", **fields})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def code_messages(api: Api, member_id: str) -> list[dict[str, Any]]:
    answer = await api.get("/v1/messages", member_id=member_id, kind="sign_in_code")
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def code_of(engine: AsyncEngine, program: ProgramContext, member_id: str) -> str:
    """The code in the newest sign-in message of the member, as the sender reads it from the
    store to send it (no read path of the API or the pages shows it)."""
    async with reading(engine) as conn:
        rows = await messaging_repository.messages_page(
            conn, program.id, limit=5, before=None, member_id=UUID(member_id), kind="sign_in_code"
        )
    found = CODE.search(rows[0].body)
    assert found, rows[0].body
    return found.group(1)


def neutral(page: httpx.Response, address: str) -> str:
    """A page without what the visitor typed and the form's tokens: what it tells."""
    return re.sub(r'value="[^"]*"', "", page.text.replace(address, "ADDRESS"))


async def ask(browser: Browser, program: ProgramContext, address: str) -> httpx.Response:
    return await browser.post(f"/app/{program.slug}/sign-in", {"address": address})


async def enter(
    browser: Browser, program: ProgramContext, address: str, code: str, **extra: str
) -> httpx.Response:
    form = {"address": address, "code": code, **extra}
    return await browser.post(f"/app/{program.slug}/sign-in/code", form)


async def test_a_code_goes_out_as_a_message_and_signs_the_member_in(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    address = email()
    anna = await member(api, email=address)
    page = await browser.get(f"/app/{program.slug}/sign-in")
    assert page.status_code == 200 and 'id="sign-in-form"' in page.text
    assert "Phone or e-mail" in page.text and f"/app/{program.slug}/sign-up" in page.text
    sent = await ask(browser, program, address.upper())
    assert sent.status_code == 200 and "we have sent a six-digit code" in sent.text
    assert 'id="code-form"' in sent.text
    [message] = await code_messages(api, anna)
    assert (message["kind"], message["channel"], message["to"]) == (
        "sign_in_code",
        "email",
        address,
    )
    assert message["status"] == "queued" and message["purpose"] == "service"
    signed = await enter(browser, program, address, await code_of(engine, program, anna))
    assert signed.status_code == 303 and signed.headers["location"] == f"/app/{program.slug}/"
    cookie = signed.headers["set-cookie"]
    assert f"{APP_COOKIE}=km_" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert f"Path=/app/{program.slug}/" in cookie
    card = await browser.get(f"/app/{program.slug}/")
    assert card.status_code == 200 and "Anna Petrova" in card.text
    # Signed in, the sign-in page goes on to the card.
    again = await browser.get(f"/app/{program.slug}/sign-in")
    assert again.status_code == 303 and again.headers["location"] == f"/app/{program.slug}/"


async def test_a_phone_gets_its_code_by_sms(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    number = phone()
    boris = await member(api, phone=number)
    typed = f"8 ({number[2:5]}) {number[5:8]}-{number[8:10]}-{number[10:]}"
    assert (await ask(browser, program, typed)).status_code == 200
    [message] = await code_messages(api, boris)
    assert (message["channel"], message["to"]) == ("sms", number)
    signed = await enter(browser, program, typed, await code_of(engine, program, boris))
    assert signed.status_code == 303


async def test_an_unknown_address_gets_the_same_page(
    browsers: Any, program: ProgramContext, api: Api
) -> None:
    known = email()
    await member(api, email=known)
    unknown = email()
    first, second = browsers(), browsers()
    for_known = await ask(first, program, known)
    for_unknown = await ask(second, program, unknown)
    assert for_known.status_code == for_unknown.status_code == 200
    assert neutral(for_known, known) == neutral(for_unknown, unknown)
    assert "Join the program" in for_unknown.text  # sign-up is offered
    refused = await enter(second, program, unknown, "123456")
    assert refused.status_code == 401 and "wrong or no longer valid" in refused.text


async def test_a_badly_typed_address_is_named(browser: Browser, program: ProgramContext) -> None:
    page = await ask(browser, program, "not an address")
    assert page.status_code == 422
    assert "Enter your phone number or e-mail address." in page.text
    assert 'aria-invalid="true"' in page.text


async def test_a_wrong_code_is_counted_and_the_sixth_try_is_refused(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    address = email()
    anna = await member(api, email=address)
    await ask(browser, program, address)
    right = await code_of(engine, program, anna)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    for _ in range(CODE_TRIES):
        refused = await enter(browser, program, address, wrong)
        assert refused.status_code == 401
        assert "This code is wrong or no longer valid." in refused.text
        assert APP_COOKIE not in refused.headers.get("set-cookie", "")
    late = await enter(browser, program, address, right)
    assert late.status_code == 401  # the right code, after its tries are used up


async def test_the_right_code_on_the_last_try_still_signs_in(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    address = email()
    anna = await member(api, email=address)
    await ask(browser, program, address)
    right = await code_of(engine, program, anna)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    for _ in range(CODE_TRIES - 1):
        assert (await enter(browser, program, address, wrong)).status_code == 401
    assert (await enter(browser, program, address, f"{right[:3]} {right[3:]}")).status_code == 303


async def test_a_code_that_is_not_six_digits_is_not_a_try(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    address = email()
    anna = await member(api, email=address)
    await ask(browser, program, address)
    for _ in range(CODE_TRIES + 1):
        answer = await enter(browser, program, address, "12ab")
        assert answer.status_code == 422 and "The code is six digits." in answer.text
    assert (
        await enter(browser, program, address, await code_of(engine, program, anna))
    ).status_code == 303


async def test_a_code_lasts_ten_minutes(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    early, late = email(), email()
    first, second = await member(api, email=early), await member(api, email=late)
    one, two = browsers(), browsers()
    with clock.frozen(T0):
        await ask(one, program, early)
        await ask(two, program, late)
    with clock.frozen(T0 + timedelta(minutes=9, seconds=59)):
        assert (
            await enter(one, program, early, await code_of(engine, program, first))
        ).status_code == 303
    with clock.frozen(T0 + timedelta(minutes=10)):
        expired = await enter(two, program, late, await code_of(engine, program, second))
        assert expired.status_code == 401 and "no longer valid" in expired.text


async def test_a_used_code_and_a_replaced_code_are_refused(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    address = email()
    anna = await member(api, email=address)
    phone_browser, laptop = browsers(), browsers()
    await ask(phone_browser, program, address)
    first = await code_of(engine, program, anna)
    await ask(phone_browser, program, address)
    second = await code_of(engine, program, anna)
    assert len(await code_messages(api, anna)) == 2
    if first != second:  # one in a million they are the same digits
        assert (await enter(phone_browser, program, address, first)).status_code == 401
    assert (await enter(phone_browser, program, address, second)).status_code == 303
    assert (await enter(laptop, program, address, second)).status_code == 401  # used once


async def test_a_blocked_member_gets_no_code(
    browser: Browser, program: ProgramContext, api: Api
) -> None:
    address = email()
    anna = await member(api, email=address)
    blocked = await api.post(f"/v1/members/{anna}/block", {"reason": "fraud"})
    assert blocked.status_code == 200, blocked.text
    assert (await ask(browser, program, address)).status_code == 200
    assert await code_messages(api, anna) == []


async def test_the_code_goes_even_when_the_member_opted_out_and_at_night(
    browser: Browser, program: ProgramContext, api: Api
) -> None:
    """The member asked for it: no opt-out of service e-mail and no quiet hours hold it."""
    address = email()
    anna = await member(api, email=address)
    change = {"channel": "email", "purpose": "service", "granted": False, "source": "app"}
    opted = await api.post(f"/v1/members/{anna}/consents", {"changes": [change]})
    assert opted.status_code == 200, opted.text
    night = datetime(2031, 6, 15, 23, 30, tzinfo=UTC)  # inside the default 21:00–09:00
    with clock.frozen(night):
        await ask(browser, program, address)
    [message] = await code_messages(api, anna)
    assert message["status"] == "queued" and message["error"] is None
    assert datetime.fromisoformat(message["due_at"]) == night


async def test_no_read_path_shows_a_live_code(
    engine: AsyncEngine, browser: Browser, program: ProgramContext, api: Api
) -> None:
    """A code waiting to be sent (forever, if the channel is down) is not in the message
    log, a message's page, the customer's timeline or an export: whoever may read messages
    cannot sign in as the member."""
    address = email()
    anna = await member(api, email=address)
    await ask(browser, program, address)
    code = await code_of(engine, program, anna)
    [message] = await code_messages(api, anna)
    assert message["status"] == "queued" and message["body"] == SECRET_HIDDEN
    assert message["subject"] is None and code not in str(message)
    for path in (
        f"/v1/messages/{message['id']}",
        "/v1/messages?kind=sign_in_code&status=queued",
        f"/v1/members/{anna}/timeline",
        f"/v1/members/{anna}/export",
    ):
        answer = await api.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert code not in answer.text and "sign_in_code" in answer.text, path
    async with reading(engine) as conn:
        [row] = await messaging_service.page(
            conn, program, limit=5, before=None, member_id=UUID(anna), kind="sign_in_code"
        )
    assert code not in f"{row.subject} {row.body} {row.html}"
    assert (await enter(browser, program, address, code)).status_code == 303


async def test_a_code_is_not_asked_for_on_a_channel_the_server_cannot_send_on(
    engine: AsyncEngine, program: ProgramContext, api: Api, tmp_path: Path
) -> None:
    """Without an SMS provider a phone is told to use the e-mail (and the other way round),
    the same for a member's number as for anyone's; nothing waits in the log."""
    number, address = phone(), email()
    anna = await member(api, phone=number, email=address)
    unknown = phone()
    async for browsers in browsers_on(sending(tmp_path, sms_provider=None), engine):
        browser = browsers()
        for typed in (number, unknown):
            page = await ask(browser, program, typed)
            assert page.status_code == 422 and 'id="code-form"' not in page.text
            assert "Sign-in by SMS is not available: use your e-mail address." in page.text
        assert neutral(await ask(browser, program, number), number) == neutral(
            await ask(browser, program, unknown), unknown
        )
        joined = await browser.post(
            f"/app/{program.slug}/sign-up", {"name": "Boris", "phone": phone()}
        )
        assert joined.status_code == 422 and "Sign-in by SMS is not available" in joined.text
        assert (await ask(browser, program, address)).status_code == 200  # e-mail still works
    assert [m["channel"] for m in await code_messages(api, anna)] == ["email"]
    async for browsers in browsers_on(sending(tmp_path, mail_outbox_dir=None), engine):
        page = await ask(browsers(), program, address)
        assert page.status_code == 422
        assert "Sign-in by e-mail is not available: use your phone number." in page.text
    assert len(await code_messages(api, anna)) == 1
    assert (await api.get("/v1/members", phone=unknown)).json()["items"] == []


async def test_the_code_is_not_kept_readable_once_sent(
    engine: AsyncEngine, browser: Browser, program: ProgramContext, api: Api
) -> None:
    address = email()
    anna = await member(api, email=address)
    await ask(browser, program, address)
    code = await code_of(engine, program, anna)
    async with transaction(engine) as conn:
        [row] = await messaging_service.page(
            conn, program, limit=10, before=None, member_id=UUID(anna), kind="sign_in_code"
        )
        await delivery_service.record(conn, [SendResult(row, clock.now(), provider_id="m-1")])
    [message] = await code_messages(api, anna)
    assert message["status"] == "sent" and message["body"] == SECRET_REMOVED
    assert message["subject"] is None and code not in str(message)
    detail = (await api.get(f"/v1/messages/{message['id']}")).json()
    assert code not in str(detail)
    # Blanking the text does not spoil the code: the member got it.
    assert (await enter(browser, program, address, code)).status_code == 303


async def test_next_leads_back_into_this_app_only(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    address = email()
    anna = await member(api, email=address)
    page = await browser.get(f"/app/{program.slug}/sign-in", next=f"/app/{program.slug}/history")
    assert f'value="/app/{program.slug}/history"' in page.text
    await ask(browser, program, address)
    code = await code_of(engine, program, anna)
    signed = await enter(browser, program, address, code, next=f"/app/{program.slug}/history")
    assert signed.headers["location"] == f"/app/{program.slug}/history"
    await ask(browser, program, address)
    elsewhere = await enter(
        browser, program, address, await code_of(engine, program, anna), next="//evil.example/"
    )
    assert elsewhere.headers["location"] == f"/app/{program.slug}/"


async def test_code_requests_and_tries_are_rate_limited(
    browsers: Any, program: ProgramContext, api: Api
) -> None:
    address = email()
    await member(api, email=address)
    browser = browsers()
    for _ in range(5):
        assert (await ask(browser, program, address)).status_code == 200
    limited = await ask(browser, program, address)
    assert limited.status_code == 429
    # The address's limit lasts an hour: the answer says so, and Retry-After matches.
    assert 3590 <= int(limited.headers["retry-after"]) <= 3600
    assert "try again in 60 minutes" in limited.text
    # Another address from the same client still gets its answer, until the client's limit.
    for _ in range(24):
        assert (await ask(browser, program, email())).status_code == 200
    assert (await ask(browser, program, email())).status_code == 429
    for _ in range(10):
        assert (await enter(browser, program, address, "000000")).status_code == 401
    assert (await enter(browser, program, address, "000000")).status_code == 429


async def test_sign_out_ends_the_session_on_the_server(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    anna = await member(api, email=email())
    await app_as(browser, engine, program, UUID(anna))
    token = browser.client.cookies.get(APP_COOKIE)
    out = await browser.post(f"/app/{program.slug}/sign-out")
    assert out.status_code == 303 and out.headers["location"] == f"/app/{program.slug}/sign-in"
    assert f'{APP_COOKIE}=""' in out.headers["set-cookie"]
    browser.client.cookies.set(
        APP_COOKIE, token or "", domain="kopilka.test", path=f"/app/{program.slug}/"
    )
    again = await browser.get(f"/app/{program.slug}/")
    assert again.status_code == 303
    assert again.headers["location"].startswith(f"/app/{program.slug}/sign-in")


@pytest.mark.parametrize("ending", ["block", "erase"])
async def test_a_blocked_or_erased_members_session_stops_working(
    ending: str, browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    anna = await member(api, email=email())
    await app_as(browser, engine, program, UUID(anna))
    assert (await browser.get(f"/app/{program.slug}/")).status_code == 200
    answer = await api.post(f"/v1/members/{anna}/{ending}", {"reason": "asked"})
    assert answer.status_code == 200, answer.text
    gone = await browser.get(f"/app/{program.slug}/")
    assert gone.status_code == 303 and "/sign-in" in gone.headers["location"]


async def test_signing_up_registers_sends_a_code_and_grants_the_consents_with_it(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    """With an e-mail and a phone, the code goes to the e-mail and the member keeps only the
    e-mail (no one proved the phone theirs: the page says to add it from the profile), and
    only the e-mail's consent is granted; the phone's owner can still join with it."""
    browser = browsers()
    address, number = email(), phone()
    form = await browser.get(f"/app/{program.slug}/sign-up")
    assert form.status_code == 200 and 'id="sign-up-form"' in form.text
    assert 'type="checkbox"' in form.text and " checked" not in form.text  # unticked
    sent = await browser.post(
        f"/app/{program.slug}/sign-up",
        {
            "name": "Vera Sokolova",
            "email": address,
            "phone": number,
            "birthday": "1990-04-12",
            "marketing_sms": "yes",
            "marketing_email": "yes",
        },
    )
    assert sent.status_code == 200 and 'id="code-form"' in sent.text
    assert 'id="left-out"' in sent.text and number in sent.text
    assert f'name="address" value="{number}"' not in sent.text
    found = (await api.get("/v1/members", email=address)).json()["items"]
    assert [(m["name"], m["phone"], m["birthday"]) for m in found] == [
        ("Vera Sokolova", None, "1990-04-12")
    ]
    vera = found[0]["id"]
    assert (await api.get("/v1/members", phone=number)).json()["items"] == []
    # Nothing ticked counts until the address is shown to be hers.
    assert {c["status"] for c in await marketing_of(api, vera)} == {"none"}
    [message] = await code_messages(api, vera)
    assert (message["channel"], message["to"]) == ("email", address)
    signed = await browser.post(
        f"/app/{program.slug}/sign-in/code",
        {"address": [address, number], "code": await code_of(engine, program, vera)},
    )
    assert signed.status_code == 303
    assert "Vera Sokolova" in (await browser.get(f"/app/{program.slug}/")).text
    marketing = {c["channel"]: c for c in await marketing_of(api, vera)}
    assert marketing["email"]["status"] == "granted" and marketing["email"]["source"] == "app"
    assert marketing["sms"]["status"] == "none" and marketing["push"]["status"] == "none"
    # The phone is still free: its owner joins with it.
    owner = browsers()
    joined = await owner.post(
        f"/app/{program.slug}/sign-up", {"name": "Pavel Orlov", "phone": number}
    )
    assert joined.status_code == 200 and 'id="left-out"' not in joined.text
    [pavel] = (await api.get("/v1/members", phone=number)).json()["items"]
    assert pavel["name"] == "Pavel Orlov"


async def marketing_of(api: Api, member_id: str) -> list[dict[str, Any]]:
    consents = (await api.get(f"/v1/members/{member_id}/consents")).json()
    return [c for c in consents["items"] if c["purpose"] == "marketing"]


async def test_sign_up_consents_wait_for_the_code_and_need_an_address(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    """Ticked at sign-up, the consents are granted only when the code sent to confirm the
    address is entered (never, if it is not); SMS without a phone is ignored; the e-mail
    the code went to needs no other confirmation; a new code asked for from the sign-in
    page replaces the sign-up's and drops them."""
    first, second = browsers(), browsers()
    never, address = email(), email()
    ticks = {"marketing_email": "yes", "marketing_sms": "yes", "marketing_push": "yes"}
    for browser, typed in ((first, never), (second, address)):
        answer = await browser.post(
            f"/app/{program.slug}/sign-up", {"name": "Vera", "email": typed, **ticks}
        )
        assert answer.status_code == 200 and 'id="code-form"' in answer.text
    [idle] = (await api.get("/v1/members", email=never)).json()["items"]
    [vera] = (await api.get("/v1/members", email=address)).json()["items"]
    assert idle["consents"] == vera["consents"] == {"email": False, "sms": False, "push": False}
    signed = await enter(second, program, address, await code_of(engine, program, vera["id"]))
    assert signed.status_code == 303
    marketing = {c["channel"]: c for c in await marketing_of(api, vera["id"])}
    assert marketing["email"]["status"] == "granted" and marketing["email"]["source"] == "app"
    assert marketing["push"]["status"] == "granted"
    assert marketing["sms"]["status"] == "none"  # no phone given: nothing to send SMS to
    assert (await api.get("/v1/messages", member_id=vera["id"], kind="consent_confirm")).json()[
        "items"
    ] == []
    assert {c["status"] for c in await marketing_of(api, idle["id"])} == {"none"}
    # The one who never entered the code asks for a new one: the ticks are gone with the old.
    await ask(first, program, never)
    signed = await enter(first, program, never, await code_of(engine, program, idle["id"]))
    assert signed.status_code == 303
    assert {c["status"] for c in await marketing_of(api, idle["id"])} == {"none"}


async def test_a_strangers_ticks_are_not_granted_when_the_owner_signs_in(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    """A stranger joins with someone's e-mail, ticking every box, and never enters the code;
    the owner later asks for a code on the sign-in page and enters it: nothing is granted.
    Joining again with a taken address brings no ticks along either."""
    stranger, owner = browsers(), browsers()
    victim = email()
    ticks = {"marketing_email": "yes", "marketing_sms": "yes", "marketing_push": "yes"}
    joined = await stranger.post(
        f"/app/{program.slug}/sign-up", {"name": "Not Her", "email": victim, **ticks}
    )
    assert joined.status_code == 200
    [her] = (await api.get("/v1/members", email=victim)).json()["items"]
    again = await stranger.post(
        f"/app/{program.slug}/sign-up", {"name": "Not Her", "email": victim, **ticks}
    )
    assert again.status_code == 200
    await ask(owner, program, victim)
    signed = await enter(owner, program, victim, await code_of(engine, program, her["id"]))
    assert signed.status_code == 303
    assert {c["status"] for c in await marketing_of(api, her["id"])} == {"none"}


async def test_signing_up_with_a_taken_address_answers_the_same(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    address = email()
    anna = await member(api, email=address)
    first, second = browsers(), browsers()
    taken = await first.post(
        f"/app/{program.slug}/sign-up", {"name": "Someone Else", "email": address}
    )
    fresh_address = email()
    fresh = await second.post(
        f"/app/{program.slug}/sign-up", {"name": "Someone Else", "email": fresh_address}
    )
    assert taken.status_code == fresh.status_code == 200
    assert neutral(taken, address) == neutral(fresh, fresh_address)
    found = (await api.get("/v1/members", email=address)).json()["items"]
    assert [m["name"] for m in found] == ["Anna Petrova"]  # nothing registered, nothing changed
    signed = await enter(first, program, address, await code_of(engine, program, anna))
    assert signed.status_code == 303


async def test_a_bad_sign_up_form_is_shown_again_and_registers_no_one(
    browser: Browser, program: ProgramContext, api: Api
) -> None:
    address = email()
    no_name = await browser.post(f"/app/{program.slug}/sign-up", {"email": address})
    assert no_name.status_code == 422 and "Enter your name" in no_name.text
    assert f'value="{address}"' in no_name.text  # what was typed stays
    nothing = await browser.post(f"/app/{program.slug}/sign-up", {"name": "Vera"})
    assert (
        nothing.status_code == 422 and "Give a phone number or an e-mail address." in nothing.text
    )
    bad_phone = await browser.post(
        f"/app/{program.slug}/sign-up",
        {"name": "Vera", "email": address, "phone": "12", "marketing_email": "yes"},
    )
    assert bad_phone.status_code == 422 and "Enter a valid phone number." in bad_phone.text
    assert 'name="marketing_email" value="yes" checked' in bad_phone.text
    bad_day = await browser.post(
        f"/app/{program.slug}/sign-up", {"name": "Vera", "email": address, "birthday": "12.04"}
    )
    assert bad_day.status_code == 422 and "Enter your birthday as a date." in bad_day.text
    assert (await api.get("/v1/members", email=address)).json()["items"] == []


async def test_a_session_opens_only_its_own_programs_app(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    other = await make_program(engine)
    address = email()
    anna = await member(api, email=address)
    await app_as(browser, engine, program, UUID(anna))
    token = browser.client.cookies.get(APP_COOKIE) or ""
    browser.client.cookies.set(APP_COOKIE, token, domain="kopilka.test", path=f"/app/{other.slug}/")
    refused = await browser.get(f"/app/{other.slug}/")
    assert refused.status_code == 303 and refused.headers["location"].startswith(
        f"/app/{other.slug}/sign-in"
    )
    assert (await browser.get(f"/app/{program.slug}/")).status_code == 200
    # Anna's address means nothing in the other program's app: no code is sent to her.
    assert (await ask(browser, other, address)).status_code == 200
    assert await code_messages(api, anna) == []
