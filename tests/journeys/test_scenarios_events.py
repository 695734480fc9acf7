"""The shipped ready journeys that start on events and dates, each run as shipped over a
small history worked out by hand (SQLite and PostgreSQL): welcome, the first purchase's
coupon, birthdays by tier, the survey after a purchase and a new tier's gift."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.journeys.tasks import enter_daily
from kopilka.kit.clock import clock
from tests.journeys.scenario_support import INBOX_ONLY, Scenario, scenario, utc
from tests.journeys.support import T0

DAY = timedelta(days=1)


async def test_welcome_greets_once_and_nudges_only_who_did_not_buy(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # Anna and Boris register at T0. Each gets "Welcome to the club" and 50 points at once
    # (the consumer and the job both run twice: still once). Anna buys 100.00 on day 1
    # (100 points): the goal ends her run (converted). On day 3 Boris, who bought nothing,
    # gets the nudge and his run exits. Anna 150 points, 1 message; Boris 50, 2 messages.
    s = await scenario(engine, http)
    key = await s.ready("welcome")
    anna, boris = await s.member(), await s.member()
    for _ in range(2):
        await s.work(T0)
        await s.advance(T0)
    assert (await s.balance(anna), await s.balance(boris)) == (50, 50)
    hello = "Welcome to the club"
    assert await s.inbox(anna) == [hello] and await s.inbox(boris) == [hello]

    await s.buy(anna, T0 + DAY)
    await s.work(T0 + DAY)
    await s.advance(T0 + 2 * DAY)  # the wait is not over yet: nothing
    assert await s.inbox(boris) == [hello]
    for _ in range(2):
        await s.advance(T0 + 3 * DAY)
        await s.work(T0 + 3 * DAY)

    assert (await s.balance(anna), await s.balance(boris)) == (150, 50)
    assert await s.inbox(anna) == [hello]
    assert await s.inbox(boris) == [hello, "Your points are waiting"]
    assert await s.channels(anna) == INBOX_ONLY
    assert await s.channels(boris) == {k: 2 * n for k, n in INBOX_ONLY.items()}
    runs = {r["member_id"]: r for r in await s.runs(key)}
    assert (runs[anna]["status"], runs[boris]["status"]) == ("converted", "exited")
    assert runs[anna]["converted_at"] == utc(T0 + DAY)
    stats = await s.stats(key)
    assert (stats["entered"], stats["converted"], stats["exited"]) == (2, 1, 1)
    assert stats["conversion"] == 0.5 and stats["held_out"] == 0
    assert await s.outcomes(key) == {
        "hello": {"sent": 2},
        "gift": {"credited": 2},
        "pause": {"waiting": 2},
        "bought": {"else": 1},
        "nudge": {"sent": 1},
        "done": {"exited": 1},
    }


async def test_first_purchase_coupon_only_for_a_first_purchase_outside_the_holdout(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # Vera bought an hour before the journey was published. On day 1 Nina, Nick (treated), Hugo
    # (in the journey's 10 % holdout) make their first purchase and Vera her second: all
    # four enter. Nina and Nick get one `next-visit` code each, valid 14 days from the step;
    # Vera's branch (at most one purchase) sends her to the exit; Hugo gets nothing. Nina
    # redeems hers on day 5 (10 % off 100.00: 90 points): her run converts. Conversion
    # 1/3 treated, 0/1 held out.
    s = await scenario(engine, http)
    await s.campaign("next-visit")
    key = await s.ready("first-purchase-coupon")
    (nina, nick, vera), (hugo,) = await s.split(key, 10, treated=3, held=1)
    # Vera's first purchase is dated before the journey was published: it starts nothing.
    await s.buy(vera, T0 - timedelta(hours=1))
    await s.work(T0)
    day1 = T0 + DAY
    for member in (nina, nick, hugo, vera):
        await s.buy(member, day1)
    for _ in range(2):
        await s.work(day1)
        await s.advance(day1)

    for member in (vera, hugo):
        assert await s.coupons(member) == []
    codes = {m: await s.coupons(m) for m in (nina, nick)}
    for found in codes.values():
        assert [(c["campaign"], c["status"], c["uses"]) for c in found] == [
            ("next-visit", "active", 0)
        ]
        assert found[0]["valid_until"] == utc(day1 + 14 * DAY)

    day5 = T0 + 5 * DAY
    paid = await s.buy(nina, day5, coupon_codes=[codes[nina][0]["code"]])
    assert paid["payment"]["discount"] == 1_000 and paid["points_earned"] == 90
    await s.work(day5)
    runs = {r["member_id"]: r for r in await s.runs(key)}
    assert {m: runs[m]["status"] for m in (nina, nick, vera, hugo)} == {
        nina: "exited",
        nick: "exited",
        vera: "exited",
        hugo: "held_out",
    }
    assert runs[nina]["converted_at"] == utc(day5)
    assert [runs[m]["converted_at"] for m in (nick, vera, hugo)] == [None, None, None]
    stats = await s.stats(key)
    assert (stats["entered"], stats["held_out"], stats["converted"]) == (3, 1, 1)
    assert stats["conversion"] == 1 / 3 and stats["holdout_conversion"] == 0.0
    assert await s.outcomes(key) == {
        "first-only": {"then": 2, "else": 1},
        "coupon": {"issued": 2},
        "done": {"exited": 3},
    }
    assert (await s.balance(nina), await s.balance(nick), await s.balance(hugo)) == (190, 100, 100)


LADDER = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "silver", "name": "Silver", "qualify": {"spend": 100_000}},
        {"id": "gold", "name": "Gold", "qualify": {"spend": 500_000}},
    ]
}


async def test_birthday_bonus_by_tier_on_the_day_only(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # Base, Silver and Gold members (the last two given their tier by hand) are born on
    # 5 May; another on 6 May. The daily job at 03:30 in Moscow on 5 May (run twice) enters
    # the three; nothing moves before 10:00; at 10:00 they get 100, 300 and 500 points and
    # a `birthday` message naming that bonus. The one born on 6 May gets nothing that day,
    # and 100 points the next.
    s = await scenario(engine, http, tiers=LADDER)
    key = await s.ready("birthday-by-tier")
    base = await s.member(birthday="1990-05-05")
    silver = await s.member(birthday="1985-05-05")
    gold = await s.member(birthday="1979-05-05")
    tomorrow = await s.member(birthday="1990-05-06")
    for member, tier in ((silver, "silver"), (gold, "gold")):
        with clock.frozen(T0):
            given = await s.api.post(
                f"/v1/members/{member}/tier/manual", {"tier": tier, "reason": "test"}
            )
        assert given.status_code in (200, 201), given.text
    night = datetime(2026, 5, 5, 0, 30, tzinfo=UTC)  # 03:30 in Moscow
    assert await daily(s, night) == 3
    assert await daily(s, night) == 0
    await s.advance(datetime(2026, 5, 5, 6, 59, tzinfo=UTC))  # 09:59 in Moscow
    assert [await s.balance(m) for m in (base, silver, gold)] == [0, 0, 0]
    ten = datetime(2026, 5, 5, 7, 0, tzinfo=UTC)
    await s.advance(ten)
    await s.advance(ten)

    expected = {base: 100, silver: 300, gold: 500, tomorrow: 0}
    assert {m: await s.balance(m) for m in expected} == expected
    for member, bonus in expected.items():
        said = await s.messages(member, "birthday")
        if not bonus:
            assert said == []
            continue
        assert Counter((m["channel"], m["status"]) for m in said) == INBOX_ONLY
        inbox = next(m for m in said if m["channel"] == "inbox")
        # The program speaks Russian; a number and its word are held by a no-break space.
        assert inbox["body"].endswith(f"В подарок — {bonus}\u00a0баллов."), inbox["body"]
        assert inbox["created_at"] == utc(ten)
    assert await s.outcomes(key) == {
        "tier": {"then": 1, "else": 2},
        "silver-check": {"then": 1, "else": 1},
        "base": {"credited": 1},
        "greet-base": {"sent": 1},
        "end-base": {"exited": 1},
        "silver": {"credited": 1},
        "greet-silver": {"sent": 1},
        "end-silver": {"exited": 1},
        "gold": {"credited": 1},
        "greet-gold": {"sent": 1},
    }

    assert await daily(s, night + DAY) == 1
    await s.advance(ten + DAY)
    assert await s.balance(tomorrow) == 100
    assert [await s.balance(m) for m in (base, silver, gold)] == [100, 300, 500]
    stats = await s.stats(key)
    assert (stats["entered"], stats["exited"], stats["active"]) == (4, 4, 0)


async def daily(s: Scenario, now: datetime) -> int:
    """The daily ``journeys-entries`` job at ``now``, for that day in Moscow."""
    today = now.astimezone(ZoneInfo("Europe/Moscow")).date()
    with clock.frozen(now):
        return (await enter_daily(s.engine, s.program.id, now, today)).entered


async def test_post_purchase_survey_at_six_and_once_a_month(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # A purchase at 12:00 in Moscow on day 1: the run waits until 18:00 (17:59: nothing),
    # then asks once. A purchase on day 10 (within 30 days of that run's end) starts no
    # run; one on day 32 at 12:00 does, and asks at 18:00 that day. Two questions in all.
    s = await scenario(engine, http)
    key = await s.ready("post-purchase-survey")
    member = await s.member()
    noon = T0 + DAY  # 12:00 in Moscow
    asked = "How was your visit?"
    await s.buy(member, noon)
    for _ in range(2):
        await s.work(noon)
        await s.advance(noon)
    runs = await s.runs(key)
    assert [(r["status"], r["step"]) for r in runs] == [("waiting", "pause")]
    await s.advance(noon + timedelta(hours=5, minutes=59))
    assert await s.inbox(member) == []
    six = noon + timedelta(hours=6)
    await s.advance(six)
    await s.advance(six)
    said = await s.messages(member)
    assert [m["subject"] for m in said if m["channel"] == "inbox"] == [asked]
    assert {m["created_at"] for m in said} == {utc(six)}

    for day in (10, 32):
        await s.buy(member, T0 + day * DAY)
        await s.work(T0 + day * DAY)
        await s.advance(T0 + day * DAY)
        await s.advance(T0 + day * DAY + timedelta(hours=6))
    assert await s.inbox(member) == [asked, asked]
    runs = await s.runs(key)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"exited"}
    latest = max(runs, key=lambda r: r["entered_at"])
    assert latest["entered_at"] == utc(T0 + 32 * DAY)
    assert await s.outcomes(key) == {"pause": {"waiting": 2}, "ask": {"sent": 2}}


async def test_tier_upgrade_gift_once_per_upgrade(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # Silver at 1,000.00 spent, Gold at 5,000.00. Day 1: 600.00 (600 points, still Base);
    # day 2: 500.00 (500 points) crosses Silver: 200 points and the message, once though
    # the consumer and the job run twice; day 3: 100.00 changes no tier: nothing; day 4:
    # 4,000.00 reaches Gold: another 200 and another message. 600 + 500 + 200 + 100 +
    # 4,000 + 200 = 5,600 points. A member who spends 100.00 gets nothing from it.
    s = await scenario(engine, http, tiers=LADDER)
    key = await s.ready("tier-upgrade")
    member, other = await s.member(), await s.member()
    congratulated = "Welcome to your new tier"
    steps = [(1, 60_000, None), (2, 50_000, "silver"), (3, 10_000, None), (4, 400_000, "gold")]
    for day, total, upgraded in steps:
        at = T0 + day * DAY
        answer = await s.buy(member, at, total)
        assert answer["tier"]["changed"] is (upgraded is not None)
        if upgraded:
            assert answer["tier"]["tier"] == upgraded
        for _ in range(2):
            await s.work(at)
            await s.advance(at)
        if day == 2:
            assert await s.balance(member) == 600 + 500 + 200
            assert await s.inbox(member) == [congratulated]
    await s.buy(other, T0 + DAY)
    await s.work(T0 + DAY)
    await s.advance(T0 + 5 * DAY)

    assert await s.balance(member) == 5_600 and await s.balance(other) == 100
    assert await s.inbox(member) == [congratulated, congratulated]
    assert await s.messages(other) == []
    assert await s.outcomes(key) == {"gift": {"credited": 2}, "tell": {"sent": 2}}
    stats = await s.stats(key)
    assert (stats["entered"], stats["exited"]) == (2, 2)
