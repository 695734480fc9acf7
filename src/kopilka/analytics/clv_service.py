"""Customer-lifetime predictions on the program's own purchases: the purchase log read
set-wise, refits that replace every member's predictions at once, and what the API, the
rules and the segments read of them. Never commits.

A refit is two steps so that a job can keep the write short: :meth:`ClvService.prepare`
reads the history (member range by member range, so memory grows with members, not
purchases) and fits the models in a thread; :meth:`ClvService.store` writes the fit and,
when it made predictions, deletes the program's old predictions and inserts the new ones
in the caller's transaction — readers see the old set or the new one, never a mixture.
:meth:`ClvService.refit` does both on one connection. The maths is in ``clv_domain``.

Importing this module provides the rules' prediction loader
(``kopilka.earning.prediction_facts``).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics.clv_figures import (
    AT_RISK,
    CHURN_BANDS,
    CLV_BANDS,
    PARETO_SECONDS,
    UNIT_DAYS,
    Band,
    FitStatus,
    ModelFit,
    bands,
)
from kopilka.analytics.clv_repository import ClvRepository, FitRow, PredictionRow, clv_repository
from kopilka.analytics.clv_schemas import (
    BandOut,
    ClvOverview,
    FitOut,
    FrequencyGroupOut,
    MemberClv,
    MemberValue,
    ModelFitOut,
    TotalsOut,
    TrackingOut,
    ValidationOut,
)
from kopilka.analytics.lifetime.transactions import Days, Transaction
from kopilka.earning import prediction_facts
from kopilka.earning.prediction_facts import PredictedFacts
from kopilka.errors import InvalidInput
from kopilka.kit.ids import new_id
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext, program_service

if TYPE_CHECKING:
    # The models and their numerical libraries (numpy, scipy) are imported by a refit or a
    # validation when it runs, never by reading predictions: every API process imports this
    # module (it provides the rules' prediction facts) and stays small (docs/performance.md).
    from kopilka.analytics.clv_domain import Outcome, Predictions
    from kopilka.analytics.lifetime.summary import Summary
    from kopilka.analytics.lifetime.validation import ValidationReport

# Members per read of the history: about ten purchases each in a large program, so a
# read is some hundred thousand rows.
READ_BATCH = 20_000
TOP_LIMIT = 100  # the longest top list the API gives
VALIDATION_SECONDS = 30.0  # the longest a validation's Pareto/NBD fit may take


@dataclass(frozen=True)
class Refit:
    """A prepared refit, not yet stored."""

    id: UUID
    program_id: UUID
    fitted_at: datetime
    calibration_end: date
    horizon_weeks: int
    discount_rate_percent: int
    outcome: "Outcome"
    seconds: float


def _fit_out(row: FitRow) -> FitOut:
    return FitOut(
        id=str(row.id),
        fitted_at=row.fitted_at,
        calibration_end=row.calibration_end,
        status=row.status,
        reason=row.reason,
        detail=row.detail,
        model=row.model,
        models=[ModelFitOut(**ModelFit.from_json(m).as_json()) for m in row.models],
        customers=row.customers,
        repeat_customers=row.repeat_customers,
        predictions=row.predictions,
        horizon_weeks=row.horizon_weeks,
        discount_rate_percent=row.discount_rate_percent,
        seconds=row.seconds,
    )


def _member_value(row: PredictionRow) -> MemberValue:
    return MemberValue(
        member_id=str(row.member_id),
        p_alive=row.p_alive,
        churn_risk=row.churn_risk,
        expected_purchases=row.expected_purchases,
        expected_spend=row.expected_spend,
        clv=row.clv,
    )


def _band_out(band: Band) -> BandOut:
    return BandOut(low=band.low, high=band.high, members=band.members, clv=band.clv)


def _prediction_rows(
    predictions: "Predictions", program_id: UUID, fit_id: UUID, fitted_at: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "member_id": UUID(member),
            "program_id": program_id,
            "fit_id": fit_id,
            "p_alive": float(alive),
            "churn_risk": int(risk),
            "expected_purchases": float(purchases),
            "expected_spend": int(spend),
            "clv": int(value),
            "fitted_at": fitted_at,
        }
        for member, alive, risk, purchases, spend, value in zip(
            predictions.members,
            predictions.p_alive.tolist(),
            predictions.churn_risk.tolist(),
            predictions.expected_purchases.tolist(),
            predictions.expected_spend.tolist(),
            predictions.clv.tolist(),
            strict=True,
        )
    ]


def _validation_out(report: "ValidationReport") -> ValidationOut:
    from kopilka.analytics.clv_domain import model_fit_of

    tracking = report.tracking
    totals = report.totals
    return ValidationOut(
        calibration_end=report.calibration_end,
        holdout_end=report.holdout_end,
        unit_days=report.unit_days,
        customers=report.customers,
        fits=[ModelFitOut(**model_fit_of(f).as_json()) for f in report.fits.values()],
        groups=[
            FrequencyGroupOut(
                label=g.label, customers=g.customers, actual=g.actual, expected=g.expected
            )
            for g in report.groups
        ],
        tracking=TrackingOut(
            periods=tracking.periods,
            actual=tracking.actual,
            expected=tracking.expected,
            calibration_periods=tracking.calibration_periods,
            unit_days=tracking.unit_days,
        ),
        totals=TotalsOut(
            calibration_actual=totals.calibration_actual,
            calibration_expected=totals.calibration_expected,
            holdout_actual=totals.holdout_actual,
            holdout_expected=totals.holdout_expected,
            holdout_conditional=totals.holdout_conditional,
        ),
    )


class ClvService:
    def __init__(
        self, repository: ClvRepository = clv_repository, pareto_seconds: float = PARETO_SECONDS
    ) -> None:
        self.repository = repository
        # How long a refit waits for Pareto/NBD before going on without it (clv_fitting).
        self.pareto_seconds = pareto_seconds

    # --- the purchase log ----------------------------------------------------------------------

    async def _member_days(
        self, conn: AsyncConnection, program: ProgramContext, until: datetime | None
    ) -> AsyncIterator[dict[str, Days]]:
        """Batch by batch of members in id order: each member's purchase days (in the
        program's time zone) → that day's counted spend net of returns (minor units), of
        purchases up to ``until`` (None: all)."""
        zone = ZoneInfo(program.settings.timezone)
        after: UUID | None = None
        while True:
            upto = await member_service.batch_end(conn, program.id, after, READ_BATCH)
            if upto is None:
                return
            members: dict[str, Days] = {}
            current: UUID | None = None
            days: Days = {}
            for member_id, occurred_at, amount in await self.repository.counted_purchases(
                conn, program.id, after, upto, until
            ):
                if member_id != current:
                    current, days = member_id, {}
                    members[str(member_id)] = days
                day = occurred_at.astimezone(zone).date()
                days[day] = days.get(day, 0.0) + amount
            yield members
            after = upto

    async def purchase_log(self, conn: AsyncConnection, program_id: UUID) -> list[Transaction]:
        """The program's purchases that count, for the lifetime models: members' only,
        each net of its returns (one returned in full left out), the customer being the
        member's id, the day the program's local date, the amount in minor units. Several
        purchases of a member on one day come as one transaction of their sum."""
        program = await program_service.get(conn, program_id)
        log: list[Transaction] = []
        async for members in self._member_days(conn, program, None):
            for member, days in members.items():
                log.extend(Transaction(member, day, amount) for day, amount in days.items())
        return log

    async def summary(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> "Summary":
        """Every member's history up to ``now`` summarised in weeks, calibration ending on
        today's local date."""
        from kopilka.analytics.clv_domain import concatenate
        from kopilka.analytics.lifetime.summary import summarise_days

        today = now.astimezone(ZoneInfo(program.settings.timezone)).date()
        parts = [
            summarise_days(members, today, unit_days=UNIT_DAYS)
            async for members in self._member_days(conn, program, now)
            if members
        ]
        return concatenate(parts, summarise_days({}, today, unit_days=UNIT_DAYS))

    # --- refits ----------------------------------------------------------------------------------

    async def prepare(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        now: datetime,
        pareto_seconds: float | None = None,
    ) -> Refit:
        """Read the history and fit the models (in a worker thread: a fit of a large
        program takes seconds of CPU); nothing is written. ``pareto_seconds``: Pareto/NBD's
        time budget, if not the service's."""
        from kopilka.analytics.clv_domain import fit_and_predict
        from kopilka.analytics.clv_fitting import budgeted

        began = time.perf_counter()
        summary = await self.summary(conn, program, now)
        analytics = program.settings.analytics
        outcome = await asyncio.to_thread(
            fit_and_predict,
            summary,
            analytics.clv_horizon_weeks,
            analytics.discount_rate_percent,
            budgeted(self.pareto_seconds if pareto_seconds is None else pareto_seconds),
        )
        return Refit(
            id=new_id(),
            program_id=program.id,
            fitted_at=now,
            calibration_end=summary.calibration_end,
            horizon_weeks=analytics.clv_horizon_weeks,
            discount_rate_percent=analytics.discount_rate_percent,
            outcome=outcome,
            seconds=time.perf_counter() - began,
        )

    async def store(self, conn: AsyncConnection, refit: Refit) -> FitOut:
        """Record the refit; a fitted one replaces the program's predictions (in the
        caller's transaction). A skipped one leaves the previous predictions in place."""
        outcome = refit.outcome
        predictions = outcome.predictions
        row = FitRow(
            id=refit.id,
            program_id=refit.program_id,
            fitted_at=refit.fitted_at,
            calibration_end=refit.calibration_end,
            status=outcome.status.value,
            reason=None if outcome.reason is None else outcome.reason.value,
            detail=outcome.detail,
            model=outcome.model,
            models=[m.as_json() for m in outcome.models],
            customers=outcome.customers,
            repeat_customers=outcome.repeat_customers,
            predictions=0 if predictions is None else len(predictions),
            horizon_weeks=refit.horizon_weeks,
            discount_rate_percent=refit.discount_rate_percent,
            seconds=refit.seconds,
        )
        await self.repository.add_fit(conn, row)
        if outcome.status is FitStatus.FITTED and predictions is not None:
            await self.repository.delete_predictions(conn, refit.program_id)
            await self.repository.insert_predictions(
                conn, _prediction_rows(predictions, refit.program_id, refit.id, refit.fitted_at)
            )
        return _fit_out(row)

    async def refit(self, conn: AsyncConnection, program: ProgramContext, now: datetime) -> FitOut:
        """Fit the models on the history up to ``now`` and store the outcome."""
        return await self.store(conn, await self.prepare(conn, program, now))

    async def last_fitted_at(self, conn: AsyncConnection, program_id: UUID) -> datetime | None:
        """When the program was last refitted, whatever the outcome."""
        row = await self.repository.latest_fit(conn, program_id, fitted_only=False)
        return None if row is None else row.fitted_at

    # --- reading ---------------------------------------------------------------------------------

    async def overview(
        self, conn: AsyncConnection, program: ProgramContext, *, limit: int = 10
    ) -> ClvOverview:
        """The current fit, the predictions in churn-risk and CLV bands, and the ``limit``
        members with the highest CLV and the at-risk ones with the most CLV left."""
        if not 1 <= limit <= TOP_LIMIT:
            raise InvalidInput(
                f"limit must be between 1 and {TOP_LIMIT}; got {limit}", field="limit"
            )
        current = await self.repository.latest_fit(conn, program.id, fitted_only=True)
        last = await self.repository.latest_fit(conn, program.id, fitted_only=False)
        churn = await self.repository.banded(conn, program.id, "churn_risk", CHURN_BANDS)
        value = await self.repository.banded(conn, program.id, "clv", CLV_BANDS)
        return ClvOverview(
            money_currency=program.settings.money_currency,
            current=None if current is None else _fit_out(current),
            last_refit=None if last is None else _fit_out(last),
            predicted_members=await self.repository.predicted_members(conn, program.id),
            at_risk_from=AT_RISK,
            churn_risk_bands=[_band_out(b) for b in bands(CHURN_BANDS, churn, 100)],
            clv_bands=[_band_out(b) for b in bands(CLV_BANDS, value, None)],
            top_clv=[
                _member_value(r) for r in await self.repository.top_by_clv(conn, program.id, limit)
            ],
            top_at_risk=[
                _member_value(r)
                for r in await self.repository.top_by_clv(
                    conn, program.id, limit, min_churn_risk=AT_RISK
                )
            ],
        )

    async def member(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> MemberClv:
        """The member's stored predictions (404 for a member of another program)."""
        await member_service.get(conn, program, member_id)
        row = await self.repository.prediction(conn, program.id, member_id)
        current = await self.repository.latest_fit(conn, program.id, fitted_only=True)
        if row is None or current is None:
            reason = (
                "the program's models have not been fitted yet"
                if current is None
                else "the member had made no counted purchase by the last fit"
            )
            return MemberClv(member_id=str(member_id), predicted=False, reason=reason)
        # The row comes from the newest fitted refit (a refit replaces every row).
        return MemberClv(
            member_id=str(member_id),
            predicted=True,
            fitted_at=row.fitted_at,
            model=current.model,
            horizon_weeks=current.horizon_weeks,
            p_alive=row.p_alive,
            churn_risk=row.churn_risk,
            expected_purchases=row.expected_purchases,
            expected_spend=row.expected_spend,
            clv=row.clv,
        )

    async def validation(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        calibration_end: date,
        holdout_end: date | None,
        now: datetime,
    ) -> ValidationOut:
        """BG/NBD and Pareto/NBD fitted on the members' purchases up to ``calibration_end``
        and compared with their purchases after it up to ``holdout_end`` (default: today's
        local date, which it may not pass); 422 naming the field when the dates or the
        history do not allow it."""
        today = now.astimezone(ZoneInfo(program.settings.timezone)).date()
        end = today if holdout_end is None else holdout_end
        if end > today:
            raise InvalidInput(
                f"holdout_end {end} is after today ({today}): the holdout has not happened",
                field="holdout_end",
            )
        if calibration_end >= end:
            raise InvalidInput(
                f"calibration_end {calibration_end} must come before the holdout's end ({end})",
                field="calibration_end",
            )
        from kopilka.analytics.clv_fitting import budgeted
        from kopilka.analytics.lifetime.validation import validate

        log = await self.purchase_log(conn, program.id)
        report = await asyncio.to_thread(
            validate,
            log,
            calibration_end,
            end,
            unit_days=UNIT_DAYS,
            # A request must answer: a fit that runs past its budget is stopped (422).
            fit_model=budgeted(min(self.pareto_seconds, VALIDATION_SECONDS)),
        )
        return _validation_out(report)

    async def facts_of_members(
        self, conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
    ) -> Mapping[UUID, PredictedFacts]:
        """What the rules read: churn risk and CLV of those of ``member_ids`` with a
        prediction."""
        found = await self.repository.facts_of(conn, program_id, member_ids)
        return {member: PredictedFacts(risk, value) for member, risk, value in found}


clv_service = ClvService()
prediction_facts.provide(clv_service.facts_of_members)
