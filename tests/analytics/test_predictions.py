"""Customer-lifetime predictions on the database: the purchase log the models read, refits
on a history drawn from a known BG/NBD process, what a refit stores and replaces, and the
rules and segments that read the predictions."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.clv_domain import MIN_CUSTOMERS, MIN_REPEAT_CUSTOMERS
from kopilka.analytics.clv_service import clv_service
from kopilka.analytics.lifetime.summary import Transaction
from kopilka.analytics.tasks import refit_program
from kopilka.db import reading, transaction
from kopilka.kit.bulk import insert_rows
from kopilka.kit.clock import clock
from kopilka.models import Member, MemberPrediction, Purchase
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from kopilka.segments.service import segment_service
from tests.analytics.bgnbd_history import TRUE_PARAMS, Customer, load, purchase_row, simulate
from tests.conftest import Api, make_key, make_program
from tests.crm.support import buy, give_back, new_member

START = date(2025, 1, 6)
END = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a year of history, then the refit
predictions_t = table(MemberPrediction)


# Programs given a simulated history by the running test (engine, program id).
SIMULATED: list[tuple[AsyncEngine, UUID]] = []


@pytest.fixture(autouse=True)
async def contained(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Pareto/NBD gets three seconds here (the data are small; a slow fit is given up).
    Afterwards the simulated members are marked erased: the scheduler tests run every
    program's jobs, and would otherwise refit these programs' histories again."""
    monkeypatch.setattr(clv_service, "pareto_seconds", 3.0)
    yield
    while SIMULATED:
        engine, program_id = SIMULATED.pop()
        async with transaction(engine) as conn:
            members_t = table(Member)
            await conn.execute(
                members_t.update()
                .where(members_t.c.program_id == program_id)
                .values(status="erased")
            )


async def simulated_program(
    engine: AsyncEngine, customers: int = 400, **settings: Any
) -> tuple[ProgramContext, dict[int, UUID], list[Customer]]:
    program = await make_program(engine, **settings)
    history = simulate(customers, START, END.date())
    SIMULATED.append((engine, program.id))
    return program, await load(engine, program.id, history, END), history


async def stored(engine: AsyncEngine, program_id: UUID) -> dict[UUID, Any]:
    async with reading(engine) as conn:
        rows = await conn.execute(
            select(predictions_t).where(predictions_t.c.program_id == program_id)
        )
        return {r.member_id: r for r in rows}


async def test_a_refit_finds_the_true_parameters_and_predicts_every_buyer(
    engine: AsyncEngine,
) -> None:
    program, members, history = await simulated_program(engine)
    report = await refit_program(engine, program.id, END, force=True)
    fit = report.fit
    assert fit is not None and fit.status == "fitted", fit
    assert fit.model == "bgnbd"  # the process is BG/NBD: it fits better than Pareto/NBD
    assert fit.calibration_end == END.date() and fit.horizon_weeks == 52
    assert fit.customers == fit.predictions == len(members)
    assert {m.model for m in fit.models} == {"bgnbd", "pareto", "gammagamma"}
    bgnbd = next(m for m in fit.models if m.model == "bgnbd")
    assert bgnbd.converged and bgnbd.log_likelihood is not None
    params = bgnbd.params
    # Four hundred customers pin the purchase rate well, the drop-out less so.
    assert abs(params["r"] / TRUE_PARAMS["r"] - 1) < 0.25
    assert abs(params["alpha"] / TRUE_PARAMS["alpha"] - 1) < 0.25
    true_drop = TRUE_PARAMS["a"] / (TRUE_PARAMS["a"] + TRUE_PARAMS["b"])
    assert abs(params["a"] / (params["a"] + params["b"]) - true_drop) < 0.1

    rows = await stored(engine, program.id)
    assert set(rows) == set(members.values())
    for row in rows.values():
        assert 0.0 <= row.p_alive <= 1.0 and row.churn_risk == round(100 * (1 - row.p_alive))
        assert row.clv >= 0 and row.expected_spend > 0 and row.expected_purchases >= 0
        assert row.fit_id == UUID(fit.id) and row.fitted_at == END
    # Two frequent buyers: the one still buying is alive, the one silent for months is not.
    by_member = {members[c.index]: c for c in history}
    frequent = [m for m, c in by_member.items() if len(c.days) >= 6]
    recent = min(frequent, key=lambda m: (END.date() - by_member[m].days[-1]).days)
    silent = max(frequent, key=lambda m: (END.date() - by_member[m].days[-1]).days)
    assert rows[recent].churn_risk < 30 < 70 < rows[silent].churn_risk
    assert rows[recent].clv > rows[silent].clv


async def test_a_refit_replaces_every_prediction_and_a_skipped_one_keeps_them(
    engine: AsyncEngine,
) -> None:
    program, members, _ = await simulated_program(engine, 300)
    first = (await refit_program(engine, program.id, END, force=True)).fit
    # Within the week the job leaves the fit alone; asked to, it refits.
    assert (await refit_program(engine, program.id, END + timedelta(days=6))).fit is None
    later = END + timedelta(days=30)
    second = (await refit_program(engine, program.id, later, force=False)).fit
    assert first is not None and second is not None and second.id != first.id
    rows = await stored(engine, program.id)
    assert len(rows) == len(members)
    assert {r.fit_id for r in rows.values()} == {UUID(second.id)}
    assert all(r.fitted_at == later for r in rows.values())

    # A history made thin (members erased) is skipped and the predictions stay.
    async with transaction(engine) as conn:
        members_t = table(Member)
        await conn.execute(
            members_t.update().where(members_t.c.program_id == program.id).values(status="erased")
        )
    skipped = (await refit_program(engine, program.id, later, force=True)).fit
    assert skipped is not None and skipped.status == "skipped"
    assert skipped.reason == "too_few_customers" and skipped.predictions == 0
    assert {r.fit_id for r in (await stored(engine, program.id)).values()} == {UUID(second.id)}
    async with reading(engine) as conn:
        overview = await clv_service.overview(conn, program)
    assert overview.current is not None and overview.current.id == second.id
    assert overview.last_refit is not None and overview.last_refit.id == skipped.id


async def test_too_little_history_gives_no_predictions_and_says_why(engine: AsyncEngine) -> None:
    few = await make_program(engine)
    await load(engine, few.id, simulate(MIN_CUSTOMERS - 1, START, END.date()), END)
    report = (await refit_program(engine, few.id, END)).fit
    assert report is not None and report.status == "skipped"
    assert report.reason == "too_few_customers" and str(MIN_CUSTOMERS) in (report.detail or "")
    assert report.customers == MIN_CUSTOMERS - 1

    once = await make_program(engine)
    # Many buyers, hardly anyone back.
    buyers = [Customer(i, [START + timedelta(days=i % 300)], [10_000]) for i in range(300)]
    buyers += [
        Customer(1000 + i, [START, START + timedelta(days=30)], [10_000, 20_000])
        for i in range(MIN_REPEAT_CUSTOMERS - 1)
    ]
    await load(engine, once.id, buyers, END)
    report = (await refit_program(engine, once.id, END)).fit
    assert report is not None and report.reason == "too_few_repeat_customers"
    assert report.repeat_customers == MIN_REPEAT_CUSTOMERS - 1
    assert await stored(engine, few.id) == {} and await stored(engine, once.id) == {}


async def test_the_purchase_log_is_members_counted_purchases_by_local_day(
    engine: AsyncEngine, api: Api
) -> None:
    program = await make_program(engine, timezone="Europe/Moscow")
    own = Api(api.client, await make_key(engine, program, "admin"))
    anna, boris = await new_member(own), await new_member(own)
    # 22:30 UTC on 1 March is already 2 March in Moscow; two purchases of 2 March merge.
    await buy(own, anna, 10_000, datetime(2026, 3, 1, 22, 30, tzinfo=UTC))
    await buy(own, anna, 5_000, datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    partly = await buy(own, anna, 30_000, datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    fully = await buy(own, boris, 20_000, datetime(2026, 3, 11, 9, 0, tzinfo=UTC))
    await buy(own, boris, 7_000, datetime(2026, 3, 12, 9, 0, tzinfo=UTC))
    await give_back(own, partly, datetime(2026, 3, 12, 10, 0, tzinfo=UTC), amount=12_000)
    await give_back(own, fully, datetime(2026, 3, 12, 10, 0, tzinfo=UTC))
    # Another program's purchases are not read.
    await buy(api, await new_member(api), 99_900, datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
    async with reading(engine) as conn:
        log = await clv_service.purchase_log(conn, program.id)
    assert sorted(log, key=lambda t: (t.customer, t.day)) == sorted(
        [
            Transaction(anna["id"], date(2026, 3, 2), 15_000.0),
            Transaction(anna["id"], date(2026, 3, 10), 18_000.0),
            Transaction(boris["id"], date(2026, 3, 12), 7_000.0),
        ],
        key=lambda t: (t.customer, t.day),
    )


async def test_the_history_is_read_member_batch_by_batch_and_summarised_alike(
    engine: AsyncEngine, monkeypatch: Any
) -> None:
    program, members, _ = await simulated_program(engine, 250)
    async with reading(engine) as conn:
        whole = await clv_service.summary(conn, program, END)
        monkeypatch.setattr("kopilka.analytics.clv_service.READ_BATCH", 7)
        batched = await clv_service.summary(conn, program, END)
    assert len(whole) == len(batched) == len(members)
    order = {c: i for i, c in enumerate(whole.customers)}
    index = [order[c] for c in batched.customers]
    assert (whole.frequency[index] == batched.frequency).all()
    assert (whole.recency[index] == batched.recency).all()
    assert (whole.monetary[index] == batched.monetary).all()


async def test_a_churn_risk_rule_gives_points_only_to_members_at_risk(
    engine: AsyncEngine, api: Api
) -> None:
    rule = {
        "id": "win-back",
        "conditions": [{"type": "churn_risk", "min": 60}],
        "effects": [{"type": "points", "amount": 500}],
    }
    program, _, _ = await simulated_program(engine, 300, rules=[rule])
    await refit_program(engine, program.id, END, force=True)
    rows = await stored(engine, program.id)
    at_risk = next(m for m, r in rows.items() if r.churn_risk >= 60)
    safe = next(m for m, r in rows.items() if r.churn_risk < 60)
    own = Api(api.client, await make_key(engine, program, "admin"))
    newcomer = await new_member(own)  # no purchase, so no prediction: the rule does not hold
    earned = {}
    for name, member in (("at_risk", str(at_risk)), ("safe", str(safe)), ("new", newcomer["id"])):
        body = {
            "member": {"id": member},
            "external_id": f"p-{name}-{program.id.hex[:8]}",
            "occurred_at": (END + timedelta(hours=1)).isoformat(),
            "currency": "RUB",
            "lines": [{"sku": "S", "quantity": 1, "unit_price": 10_000, "discount": 0}],
            "total": 10_000,
        }
        with clock.frozen(END + timedelta(hours=1)):
            answer = await own.post("/v1/purchases", body)
        assert answer.status_code == 201, answer.text
        earned[name] = answer.json()["points_earned"]
    assert earned == {"at_risk": 600, "safe": 100, "new": 100}


async def test_segments_select_members_by_clv_and_churn_risk(engine: AsyncEngine) -> None:
    program, _, _ = await simulated_program(engine, 300)
    await refit_program(engine, program.id, END, force=True)
    rows = await stored(engine, program.id)
    values = sorted(r.clv for r in rows.values())
    threshold = values[len(values) // 2]
    # A member with no purchase has no prediction: outside both, inside their "not".
    async with transaction(engine) as conn:
        await insert_rows(
            conn,
            table(Member),
            [
                {
                    "id": (lonely := UUID(int=program.id.int ^ 1)),
                    "program_id": program.id,
                    "consents": {},
                    "status": "active",
                    "tags": [],
                    "attributes": {},
                    "created_at": END,
                    "updated_at": END,
                }
            ],
        )
    expected_rich = {m for m, r in rows.items() if r.clv >= threshold}
    expected_calm = {m for m, r in rows.items() if r.churn_risk < 60} | {lonely}
    async with reading(engine) as conn:
        rich = await segment_service.preview(conn, program, {"type": "clv", "min": threshold}, END)
        calm = await segment_service.preview(
            conn, program, {"not": {"type": "churn_risk", "min": 60}}, END
        )
        both = await segment_service.preview(
            conn,
            program,
            {"all": [{"type": "clv", "min": threshold}, {"type": "churn_risk", "max": 59}]},
            END,
        )
    assert rich.count == len(expected_rich) and set(rich.sample) <= expected_rich
    assert calm.count == len(expected_calm) and set(calm.sample) <= expected_calm
    assert both.count == len(expected_rich & (expected_calm - {lonely}))


async def test_purchases_with_a_full_return_or_after_now_are_not_read(
    engine: AsyncEngine,
) -> None:
    program, members, history = await simulated_program(engine, 250)
    member = members[history[0].index]
    async with transaction(engine) as conn:
        await insert_rows(
            conn,
            table(Purchase),
            [
                purchase_row(program.id, member, END - timedelta(days=1), 50_000, returned=50_000),
                purchase_row(program.id, member, END + timedelta(days=1), 50_000),
            ],
        )
        count = await conn.scalar(select(func.count()).where(table(Purchase).c.member_id == member))
    assert count == len(history[0].days) + 2
    async with reading(engine) as conn:
        summary = await clv_service.summary(conn, program, END)
    index = summary.customers.index(str(member))
    assert summary.frequency[index] == len(history[0].days) - 1


async def test_a_pareto_fit_past_its_budget_is_left_out_and_bgnbd_predicts(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    program, members, _ = await simulated_program(engine, 250)
    monkeypatch.setattr(clv_service, "pareto_seconds", 0.001)
    fit = (await refit_program(engine, program.id, END, force=True)).fit
    assert fit is not None and fit.status == "fitted" and fit.model == "bgnbd"
    pareto = next(m for m in fit.models if m.model == "pareto")
    assert not pareto.converged and "not fitted within" in (pareto.error or "")
    assert fit.predictions == len(members)
