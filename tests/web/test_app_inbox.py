"""The member's inbox in the app: their messages, unread ones marked and counted, opening
one marks it read as the API's ``read`` does; another member's message is not found."""

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.programs.service import ProgramContext
from tests.conftest import Api
from tests.fixtures.factories import member_body
from tests.web.conftest import app_as


async def enrol(api: Api) -> UUID:
    made = await api.post("/v1/members", member_body(language="en"))
    assert made.status_code == 201, made.text
    return UUID(made.json()["id"])


async def to_inbox(api: Api, member: UUID, key: str, amount: int) -> str:
    body = {
        "member_id": str(member),
        "kind": "points_spent",
        "variables": {"amount": amount},
        "channels": ["inbox"],
        "dedupe_key": key,
    }
    made = await api.post("/v1/messages", body)
    assert made.status_code == 202, made.text
    message_id: str = made.json()["items"][0]["id"]
    return message_id


def plain(response: Any) -> str:
    """The page's text with Babel's no-break spaces (between a number and its word) as
    spaces."""
    text: str = response.text
    return text.replace("\xa0", " ").replace("\u202f", " ")


async def unread(api: Api, member: UUID) -> int:
    count: int = (await api.get(f"/v1/members/{member}/messages")).json()["unread"]
    return count


async def test_the_inbox_marks_unread_and_opening_reads_once(
    api: Api, browsers: Any, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna, boris = await enrol(api), await enrol(api)
    first = await to_inbox(api, anna, "a1", 300)
    await to_inbox(api, anna, "a2", 451)
    theirs = await to_inbox(api, boris, "b1", 999)
    annas = await app_as(browsers(), engine, program, anna)

    page = await annas.get(f"/app/{program.slug}/inbox")
    assert page.status_code == 200, page.text
    assert "2 unread messages" in plain(page) and page.text.count(">Not read yet<") == 2
    assert "451 points spent" in plain(page) and "300 points spent" in plain(page)
    assert "999 points" not in plain(page)
    assert plain(page).index("451 points") < plain(page).index("300 points")  # newest first

    opened = await annas.get(f"/app/{program.slug}/inbox/{first}")
    assert opened.status_code == 200 and "300 points spent" in plain(opened)
    assert await unread(api, anna) == 1
    again = await annas.get(f"/app/{program.slug}/inbox/{first}")
    assert again.status_code == 200 and await unread(api, anna) == 1
    read_at = {
        m["id"]: m["read_at"]
        for m in (await api.get(f"/v1/members/{anna}/messages")).json()["items"]
    }
    assert read_at[first] is not None

    only_unread = await annas.get(f"/app/{program.slug}/inbox", unread="true")
    assert "1 unread message" in plain(only_unread) and "451 points" in plain(only_unread)
    assert "300 points" not in plain(only_unread)

    stolen = await annas.get(f"/app/{program.slug}/inbox/{theirs}")
    assert stolen.status_code == 404 and "999 points" not in plain(stolen)
    assert await unread(api, boris) == 1  # Boris's message stays unread


async def test_an_empty_inbox_says_so(
    api: Api, browsers: Any, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await enrol(api)
    page = await (await app_as(browsers(), engine, program, anna)).get(f"/app/{program.slug}/inbox")
    assert "No messages yet." in plain(page) and "Everything is read." in plain(page)
