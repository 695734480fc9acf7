"""The predictions over HTTP (the current fit, a member's predictions, a refit, the
validation report), the worker's ``clv-refit`` job, ``kopilka analytics refit``, and the
rules' prediction loader in every entry point."""

import asyncio
import subprocess
import sys
from datetime import time, timedelta
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import make_engine, reading
from kopilka.kit.clock import clock
from kopilka.programs.service import program_service
from kopilka.worker.repository import job_run_repository
from kopilka.worker.scheduler import JOB_NAMES, Scheduler
from tests.analytics.bgnbd_history import load, simulate
from tests.analytics.test_predictions import (  # noqa: F401 (contained: a fixture)
    END,
    START,
    contained,
    simulated_program,
)
from tests.conftest import Api, make_key, make_program
from tests.crm.support import new_member
from tests.fixtures.cli import kopilka


def field_of(response: httpx.Response) -> str:
    """The field a 422 names (a query parameter the framework refused is ``query.<name>``)."""
    return str(response.json()["errors"][0]["field"]).removeprefix("query.")


async def test_the_fit_its_bands_and_top_lists(engine: AsyncEngine, api: Api) -> None:
    program, members, _ = await simulated_program(engine, 300)
    admin = Api(api.client, await make_key(engine, program, "admin"))
    analyst = Api(api.client, await make_key(engine, program, "analyst"))

    before = (await analyst.get("/v1/analytics/clv")).json()
    assert before["current"] is None and before["predicted_members"] == 0
    assert [b["members"] for b in before["churn_risk_bands"]] == [0] * 5

    assert (await analyst.post("/v1/analytics/clv/refit")).status_code == 403
    with clock.frozen(END):
        refit = await admin.post("/v1/analytics/clv/refit")
    assert refit.status_code == 200, refit.text
    assert refit.json()["status"] == "fitted" and refit.json()["predictions"] == len(members)

    shown = await analyst.get("/v1/analytics/clv", limit=5)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["current"]["id"] == refit.json()["id"] == body["last_refit"]["id"]
    assert body["current"]["model"] in ("bgnbd", "pareto") and body["money_currency"] == "RUB"
    assert body["predicted_members"] == len(members)
    bands = body["churn_risk_bands"]
    assert [(b["low"], b["high"]) for b in bands] == [
        (0, 19),
        (20, 39),
        (40, 59),
        (60, 79),
        (80, 100),
    ]
    assert sum(b["members"] for b in bands) == sum(b["members"] for b in body["clv_bands"])
    assert sum(b["members"] for b in bands) == len(members)
    assert sum(b["clv"] for b in bands) == sum(b["clv"] for b in body["clv_bands"])
    assert body["clv_bands"][-1]["high"] is None
    top = [m["clv"] for m in body["top_clv"]]
    assert len(top) == 5 and top == sorted(top, reverse=True)
    assert all(m["churn_risk"] >= body["at_risk_from"] for m in body["top_at_risk"])
    at_risk = sum(b["members"] for b in bands if b["low"] >= 60)
    assert len(body["top_at_risk"]) == min(5, at_risk)

    for bad in ("0", "101", "ten"):
        refused = await analyst.get("/v1/analytics/clv", limit=bad)
        assert refused.status_code == 422 and field_of(refused) == "limit"


async def test_a_members_predictions(engine: AsyncEngine, api: Api) -> None:
    program, members, history = await simulated_program(engine, 250)
    admin = Api(api.client, await make_key(engine, program, "admin"))
    someone = str(members[history[0].index])
    newcomer = (await new_member(admin))["id"]

    unfitted = await admin.get(f"/v1/members/{someone}/clv")
    assert unfitted.status_code == 200
    assert unfitted.json()["predicted"] is False and "not been fitted" in unfitted.json()["reason"]

    with clock.frozen(END):
        assert (await admin.post("/v1/analytics/clv/refit")).status_code == 200
    found = (await admin.get(f"/v1/members/{someone}/clv")).json()
    assert found["predicted"] is True and found["horizon_weeks"] == 52
    assert found["churn_risk"] == round(100 * (1 - found["p_alive"]))
    assert found["clv"] >= 0 and found["expected_spend"] > 0
    none = (await admin.get(f"/v1/members/{newcomer}/clv")).json()
    assert none["predicted"] is False and none["clv"] is None and "no counted" in none["reason"]

    # Another program's key sees no such member.
    stranger = Api(api.client, await make_key(engine, await make_program(engine), "admin"))
    assert (await stranger.get(f"/v1/members/{someone}/clv")).status_code == 404
    assert (await admin.get("/v1/members/not-an-id/clv")).status_code == 422
    # The stranger's program has no fit: its own overview is empty.
    assert (await stranger.get("/v1/analytics/clv")).json()["predicted_members"] == 0


async def test_the_validation_report_on_the_programs_purchases(
    engine: AsyncEngine, api: Api
) -> None:
    program, members, _ = await simulated_program(engine, 300)
    analyst = Api(api.client, await make_key(engine, program, "analyst"))
    calibration_end = (END - timedelta(weeks=20)).date()
    with clock.frozen(END):
        report = await analyst.get(
            "/v1/analytics/clv/validation", calibration_end=calibration_end.isoformat()
        )
        assert report.status_code == 200, report.text
        body = report.json()
        assert body["holdout_end"] == END.date().isoformat() and body["unit_days"] == 7
        assert body["customers"] == len(members)
        assert {f["model"] for f in body["fits"]} == {"bgnbd", "pareto"}
        assert body["groups"][0]["label"] == "0"
        assert sum(g["customers"] for g in body["groups"]) == len(members)
        totals = body["totals"]
        # The BG/NBD forecast of the holdout lands near what the members then did.
        forecast = totals["holdout_conditional"]["bgnbd"]
        assert abs(forecast / totals["holdout_actual"] - 1) < 0.3
        assert len(body["tracking"]["periods"]) == len(body["tracking"]["actual"])

        refusals = {
            "calibration_end": {},
            "holdout_end": {
                "calibration_end": calibration_end.isoformat(),
                "holdout_end": (END.date() + timedelta(days=1)).isoformat(),
            },
        }
        for field, params in refusals.items():
            refused = await analyst.get("/v1/analytics/clv/validation", **params)
            assert refused.status_code == 422 and field_of(refused) == field, refused.text
        late = await analyst.get(
            "/v1/analytics/clv/validation", calibration_end=END.date().isoformat()
        )
        assert late.status_code == 422 and field_of(late) == "calibration_end"
        odd = await analyst.get("/v1/analytics/clv/validation", calibration_end="2025-02-30")
        assert odd.status_code == 422 and field_of(odd) == "calibration_end"


async def test_the_worker_refits_weekly_before_segments_are_refreshed(engine: AsyncEngine) -> None:
    program, members, _ = await simulated_program(engine, 250, timezone="Asia/Vladivostok")
    only_refit = frozenset(JOB_NAMES) - {"clv-refit"}
    scheduler = Scheduler(engine, daily_at=time(3, 0), disabled=only_refit)
    assert JOB_NAMES.index("crm-facts") < JOB_NAMES.index("clv-refit")
    assert JOB_NAMES.index("clv-refit") < JOB_NAMES.index("segments-refresh")
    with clock.frozen(END):
        outcomes = [o for o in await scheduler.run_due() if o.program_id == program.id]
    assert [(o.job, o.outcome) for o in outcomes] == [("clv-refit", "ok")]
    assert f"{len(members)} predictions stored" in outcomes[0].detail
    with clock.frozen(END + timedelta(days=1)):
        outcomes = [o for o in await scheduler.run_due() if o.program_id == program.id]
    assert "less than 7 days ago" in outcomes[0].detail
    async with reading(engine) as conn:
        run = await job_run_repository.get(conn, "clv-refit", program.id)
    assert run is not None and run.runs == 2


def test_kopilka_analytics_refit(tmp_path: Path) -> None:
    kopilka(tmp_path, "db", "upgrade")
    kopilka(tmp_path, "program", "create", "--slug", "shop", "--name", "Shop")
    thin = kopilka(tmp_path, "analytics", "refit", "--program", "shop", check=False)
    assert thin.returncode == 1 and "too_few_customers" in thin.stderr
    assert thin.stderr.strip().count("\n") == 0

    async def fill() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
        try:
            async with reading(engine) as conn:
                program = await program_service.get_by_slug(conn, "shop")
            await load(engine, program.id, simulate(250, START, END.date()), END)
        finally:
            await engine.dispose()

    asyncio.run(fill())
    with clock.frozen(END):
        done = kopilka(tmp_path, "analytics", "refit", "--program", "shop")
    assert "predictions stored" in done.stdout and "gammagamma (predictions)" in done.stdout
    missing = kopilka(tmp_path, "analytics", "refit", "--program", "nope", check=False)
    assert missing.returncode == 1 and "no program 'nope'" in missing.stderr


def test_every_entry_point_provides_the_prediction_loader() -> None:
    checks = {}
    for module in ("kopilka.app", "kopilka.worker.setup", "kopilka.cli.app"):
        check = (
            f"import {module}\n"
            "from kopilka.earning import prediction_facts\n"
            "assert prediction_facts.provided()\n"
        )
        # Side by side: each is a fresh interpreter importing the whole application.
        checks[module] = subprocess.Popen(
            [sys.executable, "-c", check], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    for module, process in checks.items():
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, (module, stderr)
