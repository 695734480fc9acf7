"""JSON typed into the console nested too deep for any document is refused at its place, as
any other mistake, never a server error."""

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.programs.service import ProgramContext
from tests.web.conftest import Browser, console_as

DEEP = "[" * 1200 + "]" * 1200


async def test_a_draft_nested_too_deep_is_an_error_at_its_line_and_saves_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    answer = await browser.post(
        "/console/program/draft", {"document": '{\n  "rules": ' + DEEP + "}"}
    )
    assert answer.status_code == 422
    assert "line 2, column" in answer.text and "nest deeper than 64 levels" in answer.text


async def test_a_segment_nested_too_deep_is_refused_at_its_field(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    answer = await browser.post(
        "/console/segments/new",
        {
            "mode": "json",
            "definition_json": '{"not": ' * 1200 + "{}" + "}" * 1200,
            "key": "deep",
            "name": "Deep",
            "action": "save",
        },
    )
    assert answer.status_code == 422 and "nest deeper than 64 levels" in answer.text
    listing = await browser.get("/console/segments")
    assert "Deep" not in listing.text
