"""API shapes of the customer-lifetime models: the current fit, the members' predictions
in bands and top lists, one member's predictions, and the validation report."""

from datetime import date, datetime

from pydantic import BaseModel, Field


class ModelFitOut(BaseModel):
    model: str = Field(description="bgnbd, pareto or gammagamma.")
    params: dict[str, float] = Field(description="Maximum-likelihood estimates by name.")
    log_likelihood: float | None = Field(description="The fit's total log-likelihood.")
    customers: int = Field(description="Members the model was fitted to.")
    converged: bool
    seconds: float
    error: str | None = Field(default=None, description="Why the search failed, if it did.")


class FitOut(BaseModel):
    """One refit: ``fitted`` (predictions stored) or ``skipped`` with the reason."""

    id: str
    fitted_at: datetime
    calibration_end: date = Field(description="The last day of history read (local date).")
    status: str = Field(description="fitted | skipped")
    reason: str | None = Field(
        description="When skipped: too_few_customers, too_few_repeat_customers, not_converged."
    )
    detail: str | None
    model: str | None = Field(description="The purchase model the predictions come from.")
    models: list[ModelFitOut]
    customers: int = Field(description="Members with a counted purchase by calibration_end.")
    repeat_customers: int
    predictions: int = Field(description="Members' predictions stored by this fit.")
    horizon_weeks: int
    discount_rate_percent: int
    seconds: float


class BandOut(BaseModel):
    low: int
    high: int | None = Field(description="Inclusive; null: no upper end.")
    members: int
    clv: int = Field(description="The band's members' CLV summed (minor units).")


class MemberValue(BaseModel):
    member_id: str
    p_alive: float
    churn_risk: int = Field(description="1 − P(alive), whole percent.")
    expected_purchases: float = Field(description="Over the program's CLV horizon.")
    expected_spend: int = Field(description="Expected value of one purchase (minor units).")
    clv: int = Field(description="Discounted spend over the horizon (minor units).")


class ClvOverview(BaseModel):
    """The fit the members' predictions come from and how they are spread."""

    money_currency: str
    current: FitOut | None = Field(description="The newest fit that stored predictions.")
    last_refit: FitOut | None = Field(
        description="The newest refit whatever its outcome (a skipped one says why)."
    )
    predicted_members: int
    at_risk_from: int = Field(description="Churn risk (percent) from which a member is at risk.")
    churn_risk_bands: list[BandOut]
    clv_bands: list[BandOut]
    top_clv: list[MemberValue]
    top_at_risk: list[MemberValue] = Field(
        description="At-risk members with the most lifetime value left, highest first."
    )


class MemberClv(BaseModel):
    """A member's predictions (all null when there is none, with the reason)."""

    member_id: str
    predicted: bool
    reason: str | None = None
    fitted_at: datetime | None = None
    model: str | None = None
    horizon_weeks: int | None = None
    p_alive: float | None = None
    churn_risk: int | None = None
    expected_purchases: float | None = None
    expected_spend: int | None = None
    clv: int | None = None


class FrequencyGroupOut(BaseModel):
    label: str = Field(description='Calibration repeat purchases: "0" … "6", "7+".')
    customers: int
    actual: float = Field(description="Mean repeat purchases in the holdout.")
    expected: dict[str, float] = Field(description="Each model's mean conditional expectation.")


class TrackingOut(BaseModel):
    """Repeat purchases of the cohort per week from its first purchase: actual and each
    model's expectation (no member's history used)."""

    periods: list[int]
    actual: list[float]
    expected: dict[str, list[float]]
    calibration_periods: float = Field(description="Where calibration ends on that axis.")
    unit_days: int


class TotalsOut(BaseModel):
    calibration_actual: float
    calibration_expected: dict[str, float]
    holdout_actual: float
    holdout_expected: dict[str, float]
    holdout_conditional: dict[str, float] = Field(
        description="The members' conditional expectations for the holdout, summed."
    )


class ValidationOut(BaseModel):
    """The purchase models fitted on the purchases up to ``calibration_end`` and checked
    against the members' purchases after it, up to ``holdout_end``."""

    calibration_end: date
    holdout_end: date
    unit_days: int
    customers: int
    fits: list[ModelFitOut]
    groups: list[FrequencyGroupOut]
    tracking: TrackingOut
    totals: TotalsOut
