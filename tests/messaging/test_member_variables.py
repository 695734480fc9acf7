"""What a template reads of the member, read only when a text in use asks for it: the points
that expire soonest (``expiring``) and the rewards the member's points pay for now
(``affordable``); a ``points_expiring`` message sent without its own variables (a journey's)
tells of the member's own points (SQLite and PostgreSQL)."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.messaging.composition import Outgoing
from kopilka.messaging.domain import Channel
from kopilka.messaging.records import MessageRow
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext, program_service
from tests.conftest import Api, make_key, make_program
from tests.messaging.test_flow import plain, settle
from tests.rewards.conftest import new_member, new_reward

T0 = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=20)  # the points credited at T0 expire in 10 days
CLUB = {
    "levels": [
        {"id": "base", "name": "Base"},
        {
            "id": "gold",
            "name": "Gold",
            "qualify": {"spend": 10_000_000},
            "benefits": {"exclusive_rewards": ["club"], "early_access": True},
        },
    ],
    "window": {"kind": "rolling", "months": 12},
}
PROBE = (
    "{% if expiring %}{{ expiring.amount }} on {{ expiring.expires_on }} in {{ expiring.days }}"
    "{% else %}nothing expiring{% endif %} | "
    "{% for a in affordable %}{{ a.key }}:{{ a.points }};{% endfor %}"
)


@dataclass
class Shop:
    engine: AsyncEngine
    program: ProgramContext
    api: Api
    anna: UUID  # 900 points expiring in 10 days, base tier
    gold: UUID  # the same, on the tier that unlocks the club's rewards
    bob: UUID  # 900 points expiring in 30 days: nothing inside the window


async def shop(engine: AsyncEngine, http: httpx.AsyncClient) -> Shop:
    """Rewards of 300, 800 (the club's: gold only) and 1,200 points; members with 900."""
    with clock.frozen(T0):
        program = await make_program(engine, tiers=CLUB, expiry={"policy": "days", "days": 30})
        api = Api(http, await make_key(engine, program, "admin"))
        await settle(api, quiet_hours=None, expiring_days=14)
        for key, name, price, extra in (
            ("coffee", "Coffee", 300, {}),
            ("cinema", "Cinema night", 800, {"exclusive_tag": "club"}),
            ("headphones", "Headphones", 1200, {}),
        ):
            await new_reward(api, key=key, name=name, price=price, **extra)
        anna = await new_member(api, points=900)
        gold = await new_member(api, points=900, tier="gold")
    with clock.frozen(NOW):
        bob = await new_member(api, points=900)
        for member in (anna, gold, bob):
            english = await api.patch(f"/v1/members/{member}", {"language": "en"})
            assert english.status_code == 200, english.text
    return Shop(engine, program, api, UUID(anna), UUID(gold), UUID(bob))


async def compose(s: Shop, *items: Outgoing) -> list[MessageRow]:
    async with transaction(s.engine) as conn:
        program = await program_service.get(conn, s.program.id)
        return await messaging_service.compose(conn, program, list(items), NOW)


def inbox(kind: str, member: UUID, key: str, **variables: Any) -> Outgoing:
    return Outgoing(kind, member, key, variables, channels=[Channel.INBOX])


@contextmanager
def tables_read(engine: AsyncEngine) -> Iterator[dict[str, int]]:
    """The statements that read lots and rewards while inside, counted per table."""
    counted = {"lots": 0, "rewards": 0}

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        for name in re.findall(r"\bFROM (lots|rewards)\b", statement):
            counted[name] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield counted
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def test_a_template_reads_the_soonest_expiring_points_and_what_they_buy(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await shop(engine, http)
    saved = await s.api.put("/v1/templates/points_spent/en", {"parts": {"text": PROBE}})
    assert saved.status_code == 200, saved.text
    made = await compose(
        s, *(inbox("points_spent", m, f"probe:{m}", amount=1) for m in (s.anna, s.gold, s.bob))
    )
    said = {m.member_id: m.body for m in made}
    # Cheapest rewards last: the dearest a member can take comes first. The club's reward
    # is only for gold; 1,200 points are more than anyone has.
    assert said[s.anna] == "900 on 2031-04-02 in 10 | coffee:300;"
    assert said[s.gold] == "900 on 2031-04-02 in 10 | cinema:800;coffee:300;"
    assert said[s.bob] == "nothing expiring | coffee:300;"


async def test_a_reminder_without_variables_tells_of_the_members_own_points(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await shop(engine, http)
    made = await compose(
        s, inbox("points_expiring", s.anna, "remind:anna"), inbox("points_expiring", s.bob, "b")
    )
    told = {m.member_id: m for m in made}
    anna = told[s.anna]
    assert anna.status == "delivered"
    assert plain(anna.subject or "") == "900 points expire on April 2, 2031"
    assert plain(anna.body).endswith(
        ", 900 points expire on April 2, 2031, in 10 days. Spend them before then. "
        "Your points can buy: Coffee (300 points)."
    )
    # Nothing expires for Bob inside the window: a reminder would say nothing.
    assert told[s.bob].status == "skipped"
    assert told[s.bob].error == "not sent: no points expire within 14 days"


async def test_the_daily_reminders_own_amount_wins_and_sms_names_the_best_buy(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await shop(engine, http)
    reminder = Outgoing(
        "points_expiring",
        s.gold,
        "remind:gold",
        {"amount": 120, "expires_on": NOW.date() + timedelta(days=3), "days": 3},
        channels=[Channel.INBOX, Channel.SMS],
    )
    made = {m.channel: m for m in await compose(s, reminder)}
    assert plain(made["inbox"].body).endswith(
        ", 120 points expire on March 26, 2031, in 3 days. Spend them before then. "
        "Your points can buy: Cinema night (800 points), Coffee (300 points)."
    )
    assert plain(made["sms"].body) == "120 points expire on 3/26/31. Enough for Cinema night"


async def test_nothing_is_read_when_no_text_in_use_asks(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await shop(engine, http)
    with tables_read(engine) as counted:
        [plain_spent] = await compose(s, inbox("points_spent", s.anna, "a", amount=5))
    assert "can buy" not in plain_spent.body
    assert counted == {"lots": 0, "rewards": 0}
    # A text that asks for one variable reads that one only.
    saved = await s.api.put(
        "/v1/templates/points_spent/ru",
        {"parts": {"text": "{% for a in affordable %}{{ a.name }}{% endfor %}"}},
    )
    assert saved.status_code == 200, saved.text
    with tables_read(engine) as counted:
        await compose(s, inbox("points_spent", s.anna, "b", amount=5))
    assert counted["rewards"] > 0 and counted["lots"] == 0
    # The shipped reminder lists what the points buy, and a reminder without its own
    # amount reads the member's expiring points.
    with tables_read(engine) as counted:
        await compose(s, inbox("points_expiring", s.anna, "c"))
    assert counted["rewards"] > 0 and counted["lots"] > 0


async def test_a_blocked_member_can_take_nothing(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await shop(engine, http)
    with clock.frozen(NOW):
        blocked = await s.api.post(f"/v1/members/{s.anna}/block", {"reason": "fraud check"})
    assert blocked.status_code == 200, blocked.text
    saved = await s.api.put("/v1/templates/points_spent/en", {"parts": {"text": PROBE}})
    assert saved.status_code == 200, saved.text
    [made] = await compose(s, inbox("points_spent", s.anna, "blocked", amount=1))
    assert made.body == "900 on 2031-04-02 in 10 |"


async def test_early_access_counts_and_a_message_names_three_at_most(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await shop(engine, http)
    with clock.frozen(T0):
        opens = (NOW + timedelta(days=3)).isoformat()
        await new_reward(s.api, key="preview", price=500, available_from=opens, early_access_days=5)
        await new_reward(s.api, key="sticker", price=100)
    saved = await s.api.put("/v1/templates/points_spent/en", {"parts": {"text": PROBE}})
    assert saved.status_code == 200, saved.text
    made = await compose(
        s, *(inbox("points_spent", m, f"early:{m}", amount=1) for m in (s.anna, s.gold))
    )
    said = {m.member_id: m.body.split(" | ")[1] for m in made}
    # Gold opens the preview three days early; the sticker is one more than a message names.
    assert said[s.gold] == "cinema:800;preview:500;coffee:300;"
    assert said[s.anna] == "coffee:300;sticker:100;"
