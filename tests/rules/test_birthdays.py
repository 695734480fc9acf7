"""The daily birthday job: birthday rules run once per member and year, on both databases."""

from datetime import date

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.activities.tasks import celebrate_birthdays
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body

GIFT = {
    "id": "birthday-gift",
    "trigger": "birthday",
    "effects": [{"type": "points", "amount": 500}],
}


async def register(api: Api, birthday: str) -> str:
    created = await api.post("/v1/members", member_body(birthday=birthday))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def available(api: Api, member_id: str) -> int:
    balance = (await api.get(f"/v1/members/{member_id}/balance")).json()
    return int(balance["balances"][0]["available"])


async def test_birthdays_are_celebrated_once_on_the_day(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    program = await make_program(engine, rules=[GIFT], timezone="Europe/Moscow")
    api = Api(http, await make_key(engine, program, "admin"))
    today = await register(api, "1990-02-28")
    leap = await register(api, "2000-02-29")
    other = await register(api, "1985-07-14")
    blocked = await register(api, "1970-02-28")
    block = await api.post(f"/v1/members/{blocked}/block", {"reason": "fraud"})
    assert block.status_code == 200, block.text

    first = await celebrate_birthdays(engine, program.id, date(2027, 2, 28))
    assert (first.members, first.points) == (2, 1_000)  # 28 Feb and, in 2027, 29 Feb
    again = await celebrate_birthdays(engine, program.id, date(2027, 2, 28))
    assert (again.members, again.points) == (2, 0)  # replayed: nobody gets two gifts
    assert [await available(api, m) for m in (today, leap, other, blocked)] == [500, 500, 0, 0]

    leap_year = await celebrate_birthdays(engine, program.id, date(2028, 2, 28))
    assert (leap_year.members, leap_year.points) == (1, 500)  # 2028 has a 29 February


async def test_a_program_without_birthday_rules_does_nothing(engine: AsyncEngine) -> None:
    program = await make_program(engine)
    report = await celebrate_birthdays(engine, program.id, date(2027, 2, 28))
    assert report.ran is False and report.members == 0
