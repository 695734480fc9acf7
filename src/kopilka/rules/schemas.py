"""Earning rules as data. Each ``type`` has a compiler in ``rules.registry``."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: RuleId
    currency: str = "points"
    # Lines in these categories earn nothing from this rule (e.g. tobacco, gift cards).
    exclude_categories: list[str] = Field(default_factory=list)


class PerAmountRule(_Rule):
    """``points`` for every full ``per`` minor money units of the eligible amount (floor)."""

    type: Literal["per_amount"]
    points: int = Field(default=1, ge=1)
    per: int = Field(default=100, ge=1)


class PercentRule(_Rule):
    """``basis_points``/10,000 of the eligible amount, floored (e.g. 300 = 3 % cashback)."""

    type: Literal["percent"]
    basis_points: int = Field(ge=1, le=10_000)


EarningRule = Annotated[PerAmountRule | PercentRule, Field(discriminator="type")]
