"""The tier ladder, the part of the program document that says what each tier takes and
gives (it is versioned and published with the rules; the tiers feature applies it)."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kopilka.kit.types import Flag, Int

Metric = Literal["points", "spend", "visits", "tenure_months"]
TierId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]


class TierBenefits(BaseModel):
    """What a tier gives. Rules read ``earn_rate_percent`` through the ``tier_multiplier``
    effect and the tier itself through the ``tier`` condition; the rest is for the till,
    the shop and the member app."""

    model_config = ConfigDict(extra="forbid")

    earn_rate_percent: Int = Field(default=100, ge=100, le=1000, description="150 = ×1.5")
    discount_percent: Int = Field(default=0, ge=0, le=100)
    free_delivery: Flag = False
    priority_service: Flag = False
    early_access: Flag = False
    exclusive_rewards: list[str] = Field(default_factory=list, description="Reward tags.")
    events: list[str] = Field(default_factory=list, description="Events members are invited to.")


class TierLevel(BaseModel):
    """One rung of the ladder. ``qualify`` maps metrics to thresholds: the member reaches
    the tier when any of them (``match: any``) or all of them (``match: all``) are met.
    The first rung is the entry tier and needs nothing; an ``invitation_only`` rung is
    reached only by manual assignment."""

    model_config = ConfigDict(extra="forbid")

    id: TierId
    name: str = Field(min_length=1, max_length=100)
    qualify: dict[Metric, Annotated[Int, Field(ge=1, le=10**15)]] = Field(default_factory=dict)
    match: Literal["any", "all"] = "any"
    invitation_only: Flag = False
    benefits: TierBenefits = Field(default_factory=TierBenefits)


class QualificationWindow(BaseModel):
    """Which purchases count: those of the last ``months`` months (``rolling``), of the
    current calendar year in the program's time zone (``calendar_year``) or all of them
    (``lifetime``). Tenure ignores the window."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["rolling", "calendar_year", "lifetime"] = "rolling"
    months: Int = Field(default=12, ge=1, le=120)


class ReviewPolicy(BaseModel):
    """When a tier is reviewed: a year after it was reached (``anniversary``) or every
    year on ``date`` (``fixed``, month-day in the program's time zone)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["anniversary", "fixed"] = "anniversary"
    date: MonthDay | None = None

    @model_validator(mode="after")
    def _fixed_needs_a_date(self) -> "ReviewPolicy":
        if self.kind == "fixed" and self.date is None:
            raise ValueError("review.date is needed when review.kind is 'fixed'")
        return self


class DowngradePolicy(BaseModel):
    """What a review does to a member who no longer qualifies: drop to the tier they
    qualify for (``requalify``), drop one tier at most (``one_step``), or keep the tier
    ``grace_days`` longer and then requalify (``grace``)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["requalify", "one_step", "grace"] = "requalify"
    grace_days: Int = Field(default=90, ge=1, le=3660)


class TierLadder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    levels: list[TierLevel] = Field(min_length=1, max_length=20)
    window: QualificationWindow = Field(default_factory=QualificationWindow)
    review: ReviewPolicy = Field(default_factory=ReviewPolicy)
    downgrade: DowngradePolicy = Field(default_factory=DowngradePolicy)
    points_currency: str = Field(default="points", description="What the points metric counts.")
    returns_undo_upgrade: Flag = Field(
        default=True,
        description="A return of the purchase that brought an upgrade undoes the upgrade if "
        "the member no longer qualifies.",
    )

    @model_validator(mode="after")
    def _a_sound_ladder(self) -> "TierLadder":
        ids = [level.id for level in self.levels]
        if repeated := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"tiers.levels: ids must be unique; repeated: {repeated}")
        entry = self.levels[0]
        if entry.qualify or entry.invitation_only:
            raise ValueError(
                f"tiers.levels[0] ({entry.id}): the entry tier needs no qualification and "
                "is not invitation-only"
            )
        for index, level in enumerate(self.levels[1:], start=1):
            if not level.qualify and not level.invitation_only:
                raise ValueError(
                    f"tiers.levels[{index}] ({level.id}): give qualify thresholds or make "
                    "it invitation_only"
                )
        return self

    def metrics(self) -> set[str]:
        return {metric for level in self.levels for metric in level.qualify}


# --- API shapes -----------------------------------------------------------------------------
