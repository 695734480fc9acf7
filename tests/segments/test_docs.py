"""Every predicate example in docs/segments.md finds exactly the members it should in a
small known program, on both databases (counted and paged), and every registered predicate
has an example."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.crm.predicates import PREDICATES
from kopilka.crm.service import crm_service
from kopilka.crm.tasks import daily_facts
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.models import MemberConsent, MemberPrediction, MemberTier
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from kopilka.segments.domain import parse_definition, predicates_of
from kopilka.segments.service import segment_service
from tests.conftest import Api
from tests.crm.support import buy, new_member

DOC = Path(__file__).resolve().parents[2] / "docs" / "segments.md"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

# Who each documented example finds among anna, boris and clara (see ``people``), by the
# example's JSON. An example added to the page without a line here fails the test.
EXPECTED: dict[str, set[str]] = {
    '{"type": "profile_present", "field": "email"}': {"anna"},
    '{"type": "profile", "field": "city", "one_of": ["Moscow", "Kazan"]}': {"anna", "boris"},
    '{"type": "tenure_days", "min": 365}': {"clara"},
    '{"type": "joined", "since": "2026-01-01", "until": "2026-03-31"}': {"boris"},
    '{"type": "attribute", "name": "pets", "min": 1}': {"anna"},
    '{"type": "attribute", "name": "segment_source", "one_of": ["partner", "web"]}': {
        "anna",
        "clara",
    },
    '{"type": "age", "min": 18, "max": 35}': {"anna"},
    '{"type": "birthday_month", "months": [12, 1]}': {"anna", "boris"},
    '{"type": "profile", "field": "gender", "one_of": ["female"]}': {"anna"},
    '{"type": "consent", "channel": "sms", "purpose": "marketing"}': {"boris"},
    '{"type": "tier", "tiers": ["gold", "platinum"]}': {"boris"},
    '{"type": "tags", "tags": ["vip", "wholesale"], "all": false}': {"anna", "clara"},
    '{"type": "purchases", "measure": "spend", "last_days": 90, "min": 500000}': {"anna"},
    '{"type": "purchases", "measure": "count", "since": "2026-01-01", "until": "2026-06-30",'
    ' "max": 1}': {"boris", "clara"},
    '{"type": "purchases", "measure": "average_check", "min": 200000}': {"anna"},
    '{"type": "bought", "categories": ["coffee"], "last_days": 30}': {"anna"},
    '{"type": "bought", "stores": ["store-01"], "skus": ["SKU-9"], "never": true}': {
        "boris",
        "clara",
    },
    '{"type": "days_since_last_purchase", "min": 30}': {"boris"},
    '{"type": "points_balance", "min": 1000}': {"anna"},
    '{"type": "points_expiring", "within_days": 30, "min": 100}': set(),
    '{"type": "rfm_group", "groups": ["champions", "need_attention"]}': {"anna", "boris"},
    '{"type": "rfm_score", "score": "recency", "min": 4}': {"anna"},
    '{"type": "survey_score", "survey": "after-purchase", "max": 6}': {"boris"},
    '{"type": "survey_score", "survey": "after-purchase", "measure": "average", "min": 9,'
    ' "last_days": 90}': {"anna"},
    '{"type": "churn_risk", "min": 60}': {"boris"},
    '{"type": "clv", "min": 1000000}': {"anna"},
    '{"any": [{"type": "tier", "tiers": ["gold"]}, {"not": {"type": "days_since_last_purchase",'
    ' "max": 60}}]}': {"boris", "clara"},
}


def examples() -> list[Any]:
    text = DOC.read_text()
    section = text.split("## Predicates", 1)[1].split("## Adding a predicate", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", section, re.S)]


def test_every_predicate_has_an_example() -> None:
    documented = {
        type(p).model_fields["type"].default
        for e in examples()
        for p in predicates_of(parse_definition(e))
    }
    assert documented == set(PREDICATES)


def test_every_example_has_its_expected_members() -> None:
    assert {json.dumps(e) for e in examples()} == set(EXPECTED)


async def people(api: Api, engine: AsyncEngine, program: ProgramContext) -> dict[UUID, str]:
    """Anna: Moscow, 35, woman, vip, e-mail, three big coffees this month. Boris: Kazan,
    joined in February, born in January, gold, SMS consent, one tea 100 days ago at another
    store. Clara: joined 400 days ago, wholesale, never bought."""
    with clock.frozen(T0 - timedelta(days=400)):
        clara = await new_member(api, tags=["wholesale"], attributes={"segment_source": "partner"})
    with clock.frozen(datetime(2026, 2, 15, 9, 0, tzinfo=UTC)):
        boris = await new_member(
            api,
            city="Kazan",
            birthday="2010-01-20",
            attributes={"pets": "many", "segment_source": "shop"},
        )
    anna = await new_member(
        api,
        city="Moscow",
        gender="female",
        birthday="1990-12-10",
        email="anna@example.com",
        tags=["vip"],
        attributes={"pets": 2, "segment_source": "web"},
    )
    for days in (1, 5, 20):
        await buy(api, anna, 200_000, T0 - timedelta(days=days), category="coffee")
    await buy(
        api, boris, 50_000, T0 - timedelta(days=100), category="tea", store="store-02", sku="T-1"
    )
    # Anna loves the place (10, then 9: an average of 9.5); Boris would not recommend it (8
    # long ago, 3 last). Clara never answered.
    survey = {
        "key": "after-purchase",
        "name": "After a purchase",
        "questions": [{"id": "nps", "type": "nps", "text": "Would you recommend us?"}],
    }
    assert (await api.post("/v1/surveys", survey)).status_code == 201
    for who, days, score in ((anna, 30, 10), (anna, 2, 9), (boris, 200, 8), (boris, 10, 3)):
        with clock.frozen(T0 - timedelta(days=days)):
            answer = {"member_id": who["id"], "answers": [{"question": "nps", "value": score}]}
            sent = await api.post("/v1/surveys/after-purchase/responses", answer)
            assert sent.status_code in (200, 201), sent.text
    ids = {UUID(m["id"]): n for n, m in (("anna", anna), ("boris", boris), ("clara", clara))}
    by_name = {n: i for i, n in ids.items()}
    async with transaction(engine) as conn:
        await crm_service.refresh(conn, program.id, None, clock.now())
        await conn.execute(
            insert(table(MemberConsent)).values(
                member_id=by_name["boris"],
                channel="sms",
                purpose="marketing",
                program_id=program.id,
                status="granted",
                source="test",
                text_version=None,
                updated_at=clock.now(),
            )
        )
        # Predictions as a refit stores them: Anna is worth keeping, Boris is slipping away.
        for name, risk, clv in (("anna", 10, 1_500_000), ("boris", 80, 20_000)):
            await conn.execute(
                insert(table(MemberPrediction)).values(
                    member_id=by_name[name],
                    program_id=program.id,
                    fit_id=program.id,
                    p_alive=1 - risk / 100,
                    churn_risk=risk,
                    expected_purchases=1.0,
                    expected_spend=10_000,
                    clv=clv,
                    fitted_at=clock.now(),
                )
            )
        await conn.execute(
            insert(table(MemberTier)).values(
                member_id=by_name["boris"],
                program_id=program.id,
                tier="gold",
                earned="gold",
                updated_at=clock.now(),
            )
        )
    await daily_facts(engine, program.id, clock.now())
    return ids


async def test_each_example_finds_its_members(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        names = await people(api, engine, program)
        wrong = []
        for example in examples():
            async with reading(engine) as conn:
                found = await segment_service.preview(conn, program, example, clock.now())
            members = {names[m] for m in found.sample}
            expected = EXPECTED[json.dumps(example)]
            if members != expected or found.count != len(expected):
                wrong.append((example, sorted(expected), sorted(members), found.count))
        assert wrong == []
