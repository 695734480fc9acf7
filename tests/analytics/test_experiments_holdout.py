"""A broadcast's holdout: a stable share of the audience recorded and sent nothing, then
compared with the members sent to as the experiment ``broadcast:<id>``."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.messaging.broadcasts import broadcast_service, held_back
from kopilka.models import BroadcastRecipient, Message
from kopilka.models.base import table
from tests.conftest import Api
from tests.fixtures.factories import purchase_body
from tests.messaging.test_broadcasts import create, members

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
messages_t = table(Message)
recipients_t = table(BroadcastRecipient)


async def test_held_back_members_are_recorded_sent_nothing_and_compared(
    api: Api, engine: AsyncEngine
) -> None:
    with clock.frozen(T0):
        people = await members(api, 40)
        made = await create(api, people, channels=["email"], holdout_percent=30)
    broadcast_id = UUID(made["id"])
    held = {UUID(m) for m in people if held_back(broadcast_id, UUID(m), 30)}
    # 30 % of 40 by a hash of random ids: none or all held back has a chance below 1e-6.
    assert 0 < len(held) < 40
    assert (made["holdout_percent"], made["total"], made["done"]) == (30, 40, len(held))

    with clock.frozen(T0):
        while True:
            async with transaction(engine) as conn:
                chunk = await broadcast_service.run_chunk(conn, broadcast_id, 10, clock.now())
            if chunk is None or chunk.finished:
                break
    async with reading(engine) as conn:
        messaged = {
            r[0]
            for r in await conn.execute(
                select(messages_t.c.member_id).where(messages_t.c.broadcast_id == broadcast_id)
            )
        }
        flagged = {
            r[0]
            for r in await conn.execute(
                select(recipients_t.c.member_id).where(
                    recipients_t.c.broadcast_id == broadcast_id, recipients_t.c.holdout
                )
            )
        }
        undone = (
            await conn.execute(
                select(func.count()).where(
                    recipients_t.c.broadcast_id == broadcast_id, ~recipients_t.c.done
                )
            )
        ).scalar_one()
    assert flagged == held
    assert messaged == {UUID(m) for m in people} - held
    assert undone == 0

    # Everyone buys once after the start; the sent members' baskets are twice as large.
    bought = T0 + timedelta(days=1)
    baskets = [
        purchase_body(
            "-",
            10_000 if UUID(member_id) in held else 20_000,
            member={"id": member_id},
            occurred_at=bought.isoformat(),
        )
        for member_id in people
    ]
    with clock.frozen(bought):
        sold = await api.post("/v1/purchases/batch", {"purchases": baskets})
        assert sold.status_code == 200 and sold.json()["failed"] == 0, sold.text
    with clock.frozen(T0 + timedelta(days=15)):
        report = await api.get(f"/v1/analytics/experiments/broadcast:{broadcast_id}")
        listed = await api.get("/v1/analytics/experiments")
    assert report.status_code == 200, report.text
    analysis = report.json()["analysis"]
    arms = {a["arm"]: a for a in analysis["arms"]}
    assert (arms["sent"]["members"], arms["holdout"]["members"]) == (40 - len(held), len(held))
    assert (arms["sent"]["revenue_per_member"], arms["holdout"]["revenue_per_member"]) == (
        20_000,
        10_000,
    )
    assert analysis["control"] == "holdout"
    (lift,) = analysis["uplifts"]
    assert lift["absolute"]["estimate"] == 10_000
    assert analysis["sample_ratio"]["expected"] == {"sent": 28.0, "holdout": 12.0}
    assert [i["key"] for i in listed.json()["items"]] == [f"broadcast:{broadcast_id}"]


async def test_a_holdout_outside_0_to_50_percent_is_refused_and_none_means_no_control(
    api: Api,
) -> None:
    with clock.frozen(T0):
        people = await members(api, 1)
        for bad in (51, -1, "30", 12.5):
            answer = await api.post(
                "/v1/broadcasts",
                {
                    "name": "News",
                    "variables": {"title": "a", "body": "b"},
                    "members": people,
                    "holdout_percent": bad,
                },
            )
            assert answer.status_code == 422, answer.text
            assert "holdout_percent" in answer.text
        plain = await create(api, people)
    assert plain["holdout_percent"] == 0
    with clock.frozen(T0 + timedelta(days=1)):
        report = await api.get(f"/v1/analytics/experiments/broadcast:{plain['id']}")
        listed = await api.get("/v1/analytics/experiments")
    assert report.status_code == 200, report.text
    analysis = report.json()["analysis"]
    assert [a["arm"] for a in analysis["arms"]] == ["sent"] and analysis["uplifts"] == []
    assert "no_control" in {w["code"] for w in analysis["warnings"]}
    assert listed.json()["items"] == []  # only broadcasts that held members back are listed
