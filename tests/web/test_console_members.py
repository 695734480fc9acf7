"""The console's members: the search, the 360° page and its actions, duplicates, merge,
export and erasure — each checked through what the API answers afterwards."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body, unique
from tests.web.conftest import Browser, console_as

T0 = datetime(2026, 6, 3, 9, 0, tzinfo=UTC)
LADDER: dict[str, Any] = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "silver", "name": "Silver", "qualify": {"spend": 100_000}},
        {"id": "vip", "name": "VIP", "invitation_only": True},
    ]
}
ACTIONS = ("adjust-form", "tier-form", "status-form", "/export", "/erase")


@pytest.fixture
async def shop(engine: AsyncEngine) -> ProgramContext:
    return await make_program(engine, tiers=LADDER)


@pytest.fixture
async def shop_api(api: Api, engine: AsyncEngine, shop: ProgramContext) -> Api:
    return Api(api.client, await make_key(engine, shop, "admin"))


async def new_member(api: Api, **fields: Any) -> dict[str, Any]:
    body = member_body(**fields)
    created = await api.post("/v1/members", body)
    assert created.status_code == 201, created.text
    return dict(created.json()) | {"external_id": body["external_id"]}


def card_of(member: dict[str, Any]) -> str:
    return next(i["value"] for i in member["identifiers"] if i["kind"] == "card")


async def available(api: Api, member_id: str) -> int:
    balance = (await api.get(f"/v1/members/{member_id}/balance")).json()
    return int(next(b["available"] for b in balance["balances"] if b["currency"] == "points"))


def names_listed(page: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/console/members/[^"]+">([^<]+)</a>', page)


# --- the search and the list ----------------------------------------------------------------


async def test_the_search_finds_by_each_identifier_and_by_name(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api, api: Api
) -> None:
    anna = await new_member(
        shop_api, name="Анна Петрова", phone="+79161234567", email="Anna.P@example.com"
    )
    await new_member(shop_api, name="Борис Аннин")
    await new_member(shop_api, name="Clara 100%_off")
    await new_member(api, name="Анна Чужая")  # another program's
    await console_as(browser, engine, shop, Role.SUPPORT)

    async def found(q: str) -> list[str]:
        page = await browser.get("/console/members", q=q)
        assert page.status_code == 200, page.text
        return names_listed(page.text)

    assert await found(card_of(anna)) == ["Анна Петрова"]
    assert await found("8 (916) 123-45-67") == ["Анна Петрова"]
    assert await found("ANNA.P@EXAMPLE.COM") == ["Анна Петрова"]
    assert await found(anna["external_id"]) == ["Анна Петрова"]
    assert await found(anna["id"]) == ["Анна Петрова"]
    # A part of the name, case aside; newest first; never another program's member.
    assert await found("анна") == ["Анна Петрова"]
    assert await found("АНН") == ["Борис Аннин", "Анна Петрова"]
    assert await found("петров") == ["Анна Петрова"]
    # Wildcards are letters like any other.
    assert await found("%_") == ["Clara 100%_off"]
    assert await found("_") == ["Clara 100%_off"]
    nothing = await browser.get("/console/members", q="Zoltan")
    assert names_listed(nothing.text) == [] and "No member found." in nothing.text


async def test_the_list_pages_through_the_newest_members(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    for n in range(51):
        with clock.frozen(T0 + timedelta(minutes=n)):
            await new_member(shop_api, name=f"Person {n:02d}")
    await console_as(browser, engine, shop, Role.CASHIER)
    first = await browser.get("/console/members")
    listed = names_listed(first.text)
    assert listed[:2] == ["Person 50", "Person 49"] and len(listed) == 50
    after = re.search(r'<a class="button secondary" href="([^"]+)">Next page', first.text)
    assert after, "a next page link"
    second = await browser.client.get(after.group(1).replace("&amp;", "&"))
    assert names_listed(second.text) == ["Person 00"]
    assert "Next page" not in second.text


async def test_an_analyst_may_not_read_members(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    anna = await new_member(shop_api)
    await console_as(browser, engine, shop, Role.ANALYST)
    for path in (
        "/console/members",
        f"/console/members/{anna['id']}",
        "/console/members/duplicates",
    ):
        assert (await browser.get(path)).status_code == 403


# --- the 360° page --------------------------------------------------------------------------


async def test_the_360_page_shows_every_block(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    anna = await new_member(
        shop_api,
        name="Anna Petrova",
        birthday="1990-04-01",
        city="Kazan",
        gender="female",
        tags=["coffee-lover"],
        attributes={"shoe_size": 38},
    )
    member_id = anna["id"]
    with clock.frozen(T0):
        sold = await shop_api.post(
            "/v1/purchases",
            purchase_body(anna["external_id"], 25_000, occurred_at=T0.isoformat()),
        )
        assert sold.status_code == 201, sold.text
    campaign = unique("camp").lower()
    await shop_api.post(
        "/v1/coupon-campaigns",
        {"key": campaign, "name": "Spring", "discount": {"kind": "percent", "value": 10}},
    )
    codes = await shop_api.post(
        f"/v1/coupon-campaigns/{campaign}/codes", {"count": 1, "members": [{"id": member_id}]}
    )
    assert codes.status_code == 201, codes.text
    reward = unique("reward")
    made = await shop_api.post(
        "/v1/rewards",
        {"key": reward, "name": "Mug", "kind": "physical", "price": 100, "category": "gifts"},
    )
    assert made.status_code == 201, made.text
    redeemed = await shop_api.post(
        f"/v1/rewards/{reward}/redemptions", {"member": {"id": member_id}}
    )
    assert redeemed.status_code == 201, redeemed.text
    card = await shop_api.post("/v1/gift-cards", {"amount": 50_000, "member_id": member_id})
    assert card.status_code == 201, card.text
    ticket = await shop_api.post(
        "/v1/tickets", {"member_id": member_id, "subject": "Points missing", "body": "Where?"}
    )
    assert ticket.status_code == 201, ticket.text
    await shop_api.post("/v1/segments", {"key": "vips", "name": "Our VIPs", "kind": "static"})
    await shop_api.put("/v1/segments/vips/list", {"members": [member_id]})

    await console_as(browser, engine, shop, Role.CRM)
    page = await browser.get(f"/console/members/{member_id}")
    assert page.status_code == 200, page.text
    text = page.text
    for heading in (
        "Profile",
        "Points",
        "Lots",
        "Tier: Base",
        "Progress to Silver",
        "Actions",
        "Timeline",
        "Coupons",
        "Reward redemptions",
        "Gift cards",
        "Tickets",
        "Facts",
        "Consents",
        "Segments",
        "Likely duplicates",
    ):
        assert heading in text, heading
    assert card_of(anna) in text and "Kazan" in text and "Female" in text
    assert "coffee-lover" in text and "shoe_size" in text and "Apr 1, 1990" in text
    assert ">150<" in text  # 250 earned, 100 spent on the mug
    assert codes.json()["codes"][0] in text and "Mug" in text
    assert card.json()["code"] in text and "Points missing" in text
    assert "Our VIPs" in text and "RUB250.00" in text.replace("\xa0", "")
    assert '<svg class="progress"' in text and "RUB1,000.00" in text.replace("\xa0", "")
    assert "Purchase" in text and "Marketing" in text
    assert " style=" not in text and "<script>" not in text


async def test_the_timeline_filters_by_kind_and_pages(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    anna = await new_member(shop_api)
    for n in range(26):
        when = T0 + timedelta(hours=n)
        with clock.frozen(when):
            sold = await shop_api.post(
                "/v1/purchases",
                purchase_body(anna["external_id"], 1_000 + n * 100, occurred_at=when.isoformat()),
            )
            assert sold.status_code == 201, sold.text
    await console_as(browser, engine, shop, Role.SUPPORT)
    page = await browser.get(f"/console/members/{anna['id']}", type="purchase")
    items = re.findall(r'<span class="badge">([^<]+)</span>\s*([^<]+)</li>', page.text)
    assert len(items) == 25 and {kind for kind, _ in items} == {"Purchases"}
    assert "Purchase of RUB35.00" in items[0][1].replace("\xa0", "")  # the newest first
    more = re.search(r'href="(/console/members/[^"]+cursor=[^"]+)">Next page', page.text)
    assert more and "type=purchase" in more.group(1)
    rest = await browser.client.get(more.group(1).replace("&amp;", "&"))
    items = re.findall(r'<span class="badge">([^<]+)</span>\s*([^<]+)</li>', rest.text)
    assert len(items) == 1 and "RUB10.00" in items[0][1].replace("\xa0", "")
    points = await browser.get(f"/console/members/{anna['id']}", type="points")
    kinds = set(re.findall(r'<span class="badge">([^<]+)</span>\s*[^<]+</li>', points.text))
    assert kinds == {"Points"}


async def test_a_member_of_another_program_is_not_found(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, api: Api
) -> None:
    stranger = await new_member(api)
    await console_as(browser, engine, shop, Role.OWNER)
    path = f"/console/members/{stranger['id']}"
    assert (await browser.get(path)).status_code == 404
    assert (await browser.get(f"{path}/merge", merged=str(uuid.uuid4()))).status_code == 404
    assert (await browser.get(f"{path}/erase")).status_code == 404
    for action, form in (
        ("export", {}),
        ("adjust", {"adjust_amount": "100", "adjust_reason": "x", "idempotency_key": "k1"}),
        ("block", {"status_reason": "x"}),
        ("tier", {"tier_tier": "vip", "tier_reason": "x"}),
        ("erase", {"erase_card": card_of(stranger), "erase_reason": "x"}),
        ("merge", {"merged": str(uuid.uuid4()), "merge_reason": "x"}),
    ):
        answer = await browser.post(f"{path}/{action}", form)
        assert answer.status_code == 404, (action, answer.status_code)
    assert await available(api, stranger["id"]) == 0
    fetched = (await api.get(f"/v1/members/{stranger['id']}")).json()
    assert fetched["status"] == "active" and fetched["name"] == stranger["name"]


# --- actions: who may, and what they change -------------------------------------------------


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.CASHIER, Role.STORE_MANAGER])
async def test_roles_without_the_permissions_see_no_action_and_are_refused(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api, role: Role
) -> None:
    anna = await new_member(shop_api)
    dup = await new_member(shop_api)
    await console_as(browser, engine, shop, role)
    path = f"/console/members/{anna['id']}"
    page = await browser.get(path)
    assert page.status_code == 200
    assert not [a for a in ACTIONS if a in page.text] and "/merge?" not in page.text
    for action, form in (
        ("adjust", {"adjust_amount": "100", "adjust_reason": "x", "idempotency_key": "k1"}),
        ("tier", {"tier_tier": "vip", "tier_reason": "x"}),
        ("tier/clear", {}),
        ("block", {"status_reason": "x"}),
        ("unblock", {"status_reason": "x"}),
        ("merge", {"merged": dup["id"], "merge_reason": "x"}),
        ("erase", {"erase_card": card_of(anna), "erase_reason": "x"}),
        ("export", {}),
    ):
        answer = await browser.post(f"{path}/{action}", form)
        assert answer.status_code == 403, (action, answer.status_code)
    for refused in (f"{path}/erase", f"{path}/merge?merged={dup['id']}"):
        assert (await browser.client.get(refused)).status_code == 403
    assert await available(shop_api, anna["id"]) == 0
    again = (await shop_api.get(f"/v1/members/{anna['id']}")).json()
    assert again["status"] == "active" and again["name"] == anna["name"]
    assert (await shop_api.get(f"/v1/members/{dup['id']}")).json()["status"] == "active"


async def test_adjusting_points_credits_once_however_often_the_form_is_sent(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    anna = await new_member(shop_api)
    await console_as(browser, engine, shop, Role.CRM)
    path = f"/console/members/{anna['id']}"
    page = await browser.get(path)
    assert 'id="adjust-form"' in page.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert key
    form = {"adjust_amount": "250", "adjust_reason": "goodwill", "idempotency_key": key[1]}
    for _ in range(2):
        sent = await browser.post(f"{path}/adjust", form)
        assert sent.status_code == 303 and sent.headers["location"] == path
    assert await available(shop_api, anna["id"]) == 250
    shown = await browser.get(path)
    assert "Points adjusted." in shown.text
    fresh = re.search(r'name="idempotency_key" value="([^"]+)"', shown.text)
    assert fresh and fresh[1] != key[1]
    changed = await browser.post(f"{path}/adjust", form | {"adjust_amount": "300"})
    assert changed.status_code == 422 and "This form was sent already" in changed.text
    assert key[1] not in changed.text  # the form shown again has a new key
    assert await available(shop_api, anna["id"]) == 250
    debit = {"adjust_amount": "-100", "adjust_reason": "typo", "idempotency_key": fresh[1]}
    assert (await browser.post(f"{path}/adjust", debit)).status_code == 303
    assert await available(shop_api, anna["id"]) == 150
    history = (await shop_api.get(f"/v1/members/{anna['id']}/history")).json()["items"]
    assert [h["reason"] for h in history] == ["typo", "goodwill"]
    log = (await shop_api.get("/v1/audit")).json()["items"]
    # The adjustments are audited by the ledger, the replay not at all.
    assert not [e for e in log if e["action"].startswith("POST /console/members")]
    adjusted = (await shop_api.get("/v1/audit", action="points.adjusted")).json()["items"]
    assert len(adjusted) == 2


@pytest.mark.parametrize("key", ["", "   ", "k1", "not a key!", "x" * 300])
async def test_an_adjustment_without_a_good_key_is_refused(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api, key: str
) -> None:
    anna = await new_member(shop_api)
    await console_as(browser, engine, shop, Role.CRM)
    path = f"/console/members/{anna['id']}"
    form = {"adjust_amount": "250", "adjust_reason": "goodwill", "idempotency_key": key}
    for _ in range(2):
        refused = await browser.post(f"{path}/adjust", form)
        assert refused.status_code == 422 and "one-time key" in refused.text
        shown = re.search(r'name="idempotency_key" value="([^"]+)"', refused.text)
        assert shown and shown[1] != key and shown[1].startswith("console-")
    without = {"adjust_amount": "250", "adjust_reason": "goodwill"}
    assert (await browser.post(f"{path}/adjust", without)).status_code == 422
    assert await available(shop_api, anna["id"]) == 0


@pytest.mark.parametrize(
    ("amount", "reason", "field", "message"),
    [
        ("abc", "x", "adjust_amount", "a whole number"),
        ("0", "x", "adjust_amount", "must not be zero"),
        ("", "x", "adjust_amount", "required"),
        ("-5", "x", "adjust_amount", "available balance is 0"),
        ("10", "", "adjust_reason", "required"),
        ("10", "r" * 501, "adjust_reason", "at most 500"),
    ],
)
async def test_a_bad_adjustment_is_shown_beside_its_field_and_changes_nothing(
    browser: Browser,
    engine: AsyncEngine,
    shop: ProgramContext,
    shop_api: Api,
    amount: str,
    reason: str,
    field: str,
    message: str,
) -> None:
    anna = await new_member(shop_api)
    await console_as(browser, engine, shop, Role.OWNER)
    path = f"/console/members/{anna['id']}"
    key = "console-form-1-0123456789"
    form = {"adjust_amount": amount, "adjust_reason": reason, "idempotency_key": key}
    refused = await browser.post(f"{path}/adjust", form)
    assert refused.status_code == 422
    error = re.search(rf'<small id="e-{field}" class="field-error">([^<]+)</small>', refused.text)
    assert error and message in error[1], refused.text[-3000:]
    assert f'value="{amount}"' in refused.text and f'value="{key}"' in refused.text
    assert await available(shop_api, anna["id"]) == 0
    assert (await shop_api.get(f"/v1/members/{anna['id']}/history")).json()["items"] == []


async def test_a_manual_tier_is_set_and_ended(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    anna = await new_member(shop_api)
    await console_as(browser, engine, shop, Role.CRM)
    path = f"/console/members/{anna['id']}"
    set_form = {"tier_tier": "vip", "tier_reason": "invited", "tier_until": "2998-12-31"}
    assert (await browser.post(f"{path}/tier", set_form)).status_code == 303
    tier = (await shop_api.get(f"/v1/members/{anna['id']}/tier")).json()
    assert tier["tier"]["id"] == "vip" and tier["manual"]["reason"] == "invited"
    assert tier["manual"]["until"].startswith("2999-01-01")  # after the last day, UTC
    page = await browser.get(path)
    assert "Tier: VIP" in page.text and "End the manual tier" in page.text
    assert (await browser.post(f"{path}/tier/clear")).status_code == 303
    tier = (await shop_api.get(f"/v1/members/{anna['id']}/tier")).json()
    assert tier["tier"]["id"] == "base" and tier["manual"] is None
    unknown = await browser.post(f"{path}/tier", {"tier_tier": "diamond", "tier_reason": "x"})
    assert unknown.status_code == 422 and "no tier &#39;diamond&#39;" in unknown.text
    past = await browser.post(
        f"{path}/tier", {"tier_tier": "vip", "tier_reason": "x", "tier_until": "2001-01-01"}
    )
    assert past.status_code == 422 and "until must be in the future" in past.text
    not_a_day = await browser.post(
        f"{path}/tier", {"tier_tier": "vip", "tier_reason": "x", "tier_until": "soon"}
    )
    assert not_a_day.status_code == 422 and 'id="e-tier_until"' in not_a_day.text
    cleared_twice = await browser.post(f"{path}/tier/clear")
    assert cleared_twice.status_code == 422 and "no manual tier" in cleared_twice.text
    assert (await shop_api.get(f"/v1/members/{anna['id']}/tier")).json()["tier"]["id"] == "base"


async def test_block_and_unblock_with_a_reason(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    anna = await new_member(shop_api)
    await console_as(browser, engine, shop, Role.CRM)
    path = f"/console/members/{anna['id']}"
    no_reason = await browser.post(f"{path}/block", {"status_reason": "  "})
    assert no_reason.status_code == 422 and 'id="e-status_reason"' in no_reason.text
    assert (await shop_api.get(f"/v1/members/{anna['id']}")).json()["status"] == "active"
    assert (
        await browser.post(f"{path}/block", {"status_reason": "card stolen"})
    ).status_code == 303
    blocked = (await shop_api.get(f"/v1/members/{anna['id']}")).json()
    assert (blocked["status"], blocked["status_reason"]) == ("blocked", "card stolen")
    page = await browser.get(path)
    assert "Member blocked." in page.text and "Unblock the member" in page.text
    assert (await browser.post(f"{path}/unblock", {"status_reason": "found"})).status_code == 303
    assert (await shop_api.get(f"/v1/members/{anna['id']}")).json()["status"] == "active"


# --- duplicates and merging -----------------------------------------------------------------


async def test_duplicates_are_listed_and_one_is_merged_after_confirmation(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    with clock.frozen(T0):
        anna = await new_member(shop_api, name="Anna Petrova", birthday="1990-04-01")
    with clock.frozen(T0 + timedelta(days=1)):
        again = await new_member(shop_api, name="petrova  anna", birthday="1990-04-01")
    await shop_api.post(
        "/v1/adjustments", {"member": {"id": again["id"]}, "amount": 40, "reason": "old card"}
    )
    await console_as(browser, engine, shop, Role.CRM)
    listed = await browser.get("/console/members/duplicates")
    assert listed.status_code == 200 and "2 profiles" in listed.text
    link = f"/console/members/{anna['id']}/merge?merged={again['id']}"
    assert link in listed.text
    page = await browser.get(f"/console/members/{anna['id']}")
    assert "The same name and birthday" in page.text and link in page.text
    confirm = await browser.client.get(link)
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    assert "petrova  anna" in confirm.text and 'id="merge-form"' in confirm.text

    path = f"/console/members/{anna['id']}/merge"
    for bad, message in (
        (str(uuid.uuid4()), "not found"),
        ("not-an-id", "Choose the profile to merge"),
        (anna["id"], "cannot be merged into itself"),
    ):
        refused = await browser.post(path, {"merged": bad, "merge_reason": "same person"})
        assert refused.status_code == 422 and message in refused.text, bad
    no_reason = await browser.post(path, {"merged": again["id"], "merge_reason": ""})
    assert no_reason.status_code == 422 and 'id="e-merge_reason"' in no_reason.text
    assert (await shop_api.get(f"/v1/members/{again['id']}")).json()["status"] == "active"

    merged = await browser.post(path, {"merged": again["id"], "merge_reason": "same person"})
    assert (
        merged.status_code == 303 and merged.headers["location"] == f"/console/members/{anna['id']}"
    )
    gone = (await shop_api.get(f"/v1/members/{again['id']}")).json()
    assert gone["status"] == "merged" and gone["merged_into"] == anna["id"]
    assert await available(shop_api, anna["id"]) == 40
    after = await browser.get(f"/console/members/{anna['id']}")
    assert "The profile was merged into this member." in after.text
    assert "No likely duplicates." in after.text
    old = await browser.get(f"/console/members/{again['id']}")
    assert old.status_code == 200 and "This profile was merged into another one." in old.text
    assert (
        f'href="/console/members/{anna["id"]}"' in old.text and 'id="adjust-form"' not in old.text
    )


# --- the member's data: export and erasure --------------------------------------------------


async def test_the_export_is_the_api_s_document_as_a_download(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    anna = await new_member(shop_api, name="Anna Export")
    await console_as(browser, engine, shop, Role.CRM)
    page = await browser.get(f"/console/members/{anna['id']}")
    assert f'action="/console/members/{anna["id"]}/export"' in page.text
    assert f'href="/console/members/{anna["id"]}/export"' not in page.text
    download = await browser.post(f"/console/members/{anna['id']}/export")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == (
        f'attachment; filename="member-{anna["id"]}.json"'
    )
    document = download.json()
    from_api = (await shop_api.get(f"/v1/members/{anna['id']}/export")).json()
    assert sorted(document) == sorted(from_api)
    assert document["profile"]["name"] == "Anna Export"
    audit = (await shop_api.get("/v1/audit", action="member.exported")).json()["items"]
    assert len(audit) == 2  # the page's and the API's


async def test_the_export_is_not_made_by_a_link_nor_a_form_from_elsewhere(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    anna = await new_member(shop_api, name="Anna Export")
    await console_as(browser, engine, shop, Role.CRM)
    path = f"/console/members/{anna['id']}/export"
    linked = await browser.client.get(path)  # a link, or an image, on another site
    assert linked.status_code == 405 and "Anna Export" not in linked.text
    forged = await browser.client.post(path, data={})  # a form without this browser's token
    assert forged.status_code == 403 and "Anna Export" not in forged.text
    assert (await shop_api.get("/v1/audit", action="member.exported")).json()["items"] == []


async def test_erasure_needs_the_member_s_card_number(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    anna = await new_member(shop_api, name="Anna Gone", phone="+79161234568")
    await console_as(browser, engine, shop, Role.CRM)
    path = f"/console/members/{anna['id']}/erase"
    confirm = await browser.get(path)
    assert confirm.status_code == 200 and 'id="erase-form"' in confirm.text
    wrong = await browser.post(path, {"erase_card": "7700000000000000", "erase_reason": "asked"})
    assert wrong.status_code == 422 and "This is not the member&#39;s card number." in wrong.text
    no_reason = await browser.post(path, {"erase_card": card_of(anna), "erase_reason": ""})
    assert no_reason.status_code == 422 and 'id="e-erase_reason"' in no_reason.text
    assert (await shop_api.get(f"/v1/members/{anna['id']}")).json()["name"] == "Anna Gone"
    card = card_of(anna)
    spaced = " ".join(card[i : i + 4] for i in range(0, 16, 4))
    done = await browser.post(path, {"erase_card": spaced, "erase_reason": "asked by e-mail"})
    assert done.status_code == 303
    erased = (await shop_api.get(f"/v1/members/{anna['id']}")).json()
    assert erased["status"] == "erased" and erased["name"] is None and erased["identifiers"] == []
    page = await browser.get(f"/console/members/{anna['id']}")
    assert "personal data was erased" in page.text and 'id="adjust-form"' not in page.text
