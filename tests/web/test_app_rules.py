"""The program's rules for members: in words, the version in force, without the rules that
are switched off or tried on a share of members only; open to visitors."""

import html
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.programs.service import ProgramContext
from tests.conftest import make_program
from tests.web.conftest import Browser, app_as

RULES: list[dict[str, Any]] = [
    {
        "id": "regulars",
        "name": "Regulars' bonus",
        "conditions": [{"type": "purchases_in_window", "days": 30, "min": 8}],
        "effects": [{"type": "points", "amount": 50}],
    },
    {
        "id": "sleeping",
        "name": "Switched off",
        "enabled": False,
        "effects": [{"type": "points", "amount": 10}],
    },
    {
        "id": "trial",
        "name": "Tried on a few",
        "experiment": {"experiment": "double", "arm": "test"},
        "effects": [{"type": "points", "amount": 20}],
    },
]
EXPERIMENTS = [
    {
        "name": "double",
        "arms": [{"name": "test", "percent": 10}, {"name": "holdout", "percent": 90}],
    }
]


async def test_members_and_visitors_read_the_rules_in_force_in_their_language(
    browsers: Any, engine: AsyncEngine
) -> None:
    program: ProgramContext = await make_program(
        engine, rules=RULES, experiments=EXPERIMENTS, expiry={"policy": "days", "days": 365}
    )
    visitor: Browser = browsers()
    page = await visitor.get(f"/app/{program.slug}/rules")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Regulars' bonus" in text and "+50 points" in text
    assert "+1 point for every RUB1.00" in text
    assert "Points expire 365 days after they are earned" in text
    assert "Switched off" not in text and "Tried on a few" not in text
    assert "Join" in text  # a visitor is offered to join

    russian = await visitor.client.get(
        f"/app/{program.slug}/rules", headers={"accept-language": "ru"}
    )
    assert "Как устроена программа" in russian.text and "+50 баллов" in html.unescape(russian.text)


async def test_the_card_leads_to_the_rules_and_shows_wallet_buttons_only_when_set_up(
    browsers: Any, engine: AsyncEngine, program: ProgramContext, api: Any
) -> None:
    member = (await api.post("/v1/members", json={"name": "Ann"})).json()
    browser = await app_as(browsers(), engine, program, uuid.UUID(member["id"]))
    card = await browser.get(f"/app/{program.slug}/")
    assert f'href="/app/{program.slug}/rules"' in card.text
    assert "Add to Apple Wallet" not in card.text and "Add to Google Wallet" not in card.text
