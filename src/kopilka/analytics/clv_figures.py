"""What a refit of the customer-lifetime models records and how the console and the API
group the predictions — the light half of ``clv_domain``: no numpy, so that reading the
stored predictions (every API process) never loads the models' numerical libraries."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

UNIT_DAYS = 7  # the models count time in weeks
# Below these the fit is noise: a few hundred buyers, some of whom came back.
MIN_CUSTOMERS = 200
MIN_REPEAT_CUSTOMERS = 20
# How long a refit waits for Pareto/NBD before going on without it (``clv_fitting``).
PARETO_SECONDS = 120.0


class FitStatus(StrEnum):
    FITTED = "fitted"
    SKIPPED = "skipped"


class SkipReason(StrEnum):
    TOO_FEW_CUSTOMERS = "too_few_customers"
    TOO_FEW_REPEAT_CUSTOMERS = "too_few_repeat_customers"
    NOT_CONVERGED = "not_converged"
    UNUSABLE_FIT = "unusable_fit"  # converged, but to parameters that predict nothing finite


@dataclass(frozen=True)
class ModelFit:
    """One model as fitted: what the console and the API show of it."""

    model: str
    params: dict[str, float]
    log_likelihood: float | None
    customers: int
    converged: bool
    seconds: float
    error: str | None = None  # why the search failed, when it did

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": self.params,
            "log_likelihood": self.log_likelihood,
            "customers": self.customers,
            "converged": self.converged,
            "seconds": self.seconds,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelFit":
        return cls(
            model=str(data["model"]),
            params={k: float(v) for k, v in data.get("params", {}).items()},
            log_likelihood=data.get("log_likelihood"),
            customers=int(data.get("customers", 0)),
            converged=bool(data.get("converged", False)),
            seconds=float(data.get("seconds", 0.0)),
            error=data.get("error"),
        )


# --- how the console and the API group the predictions ---------------------------------------

# Lower edges of the churn-risk bands (percent): 0–19, 20–39, 40–59, 60–79, 80–100.
CHURN_BANDS = (0, 20, 40, 60, 80)
# Lower edges of the CLV bands (minor units): below 100.00, below 1,000.00, … (powers of ten
# suit every currency's scale).
CLV_BANDS = (0, 10_000, 100_000, 1_000_000, 10_000_000)
# A member at or above this churn risk is "at risk" (the top list, the console).
AT_RISK = 60


@dataclass(frozen=True)
class Band:
    """Members whose value is in [low, high] (``high`` None: no upper end), and their CLV
    summed (minor units)."""

    low: int
    high: int | None
    members: int
    clv: int


def bands(edges: Sequence[int], found: dict[int, tuple[int, int]], top: int | None) -> list[Band]:
    """Bands from their lower ``edges`` and what was found per band index (members, CLV);
    each band's ``high`` is the next edge less one, the last one's ``top``."""
    highs: list[int | None] = [edge - 1 for edge in edges[1:]]
    highs.append(top)
    return [
        Band(low, high, *found.get(index, (0, 0)))
        for index, (low, high) in enumerate(zip(edges, highs, strict=True))
    ]
