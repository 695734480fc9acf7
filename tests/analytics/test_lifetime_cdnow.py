"""The lifetime models reproduce the literature on the CDNOW 1/10 sample (2,357 customers,
calibration to 1997-09-30 = 39 weeks, holdout to 1998-06-30 = 39 more weeks).

Sources of the figures (each compared to the precision the source prints):

* FHL 2005 — Fader, Hardie and Lee, "Counting Your Customers the Easy Way: An Alternative to
  the Pareto/NBD Model", Marketing Science 24(2): BG/NBD and Pareto/NBD estimates and
  log-likelihoods; the conditional expectation of the customer with x = 2, t_x = 30.43,
  T = 38.86 over the next 39 weeks (1.226).
* Note 004 — Fader, Hardie and Lee, "Implementing the BG/NBD Model for Customer Base
  Analysis in Excel" (2005): E[X(t)] of its workbook at six values of t (as quoted by the
  `lifetimes` package's test-suite, which checks against that workbook).
* Note 025 — Fader and Hardie, "The Gamma-Gamma Model of Monetary Value" (2013): p, q, γ on
  the 946 customers with repeat purchases; its workbook's E(M | x, m_x) for the first ten
  customers and the population mean (as quoted by `lifetimes`' tests).
* BTYD — McCarthy and Wadsworth, "Buy 'Til You Die — A Walkthrough" (the BTYD R package's
  vignette): Pareto/NBD P(alive) and conditional expectation of customer 1516 (x = 26,
  t_x = 30.86, T = 31) at the vignette's parameters.
"""

import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from kopilka.analytics.lifetime import bgnbd, pareto
from kopilka.analytics.lifetime.cdnow import read_cdnow
from kopilka.analytics.lifetime.models import (
    Fit,
    Summary,
    Transaction,
    expected_repeat,
    expected_spend,
    fit,
    population_spend,
    summarise,
)
from kopilka.analytics.lifetime.validation import ValidationReport, validate
from tests.conftest import require_data

CDNOW_DIR = Path("/work/shared/data/cdnow")
CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_END = date(1998, 6, 30)


def printed(value: float, literature: float, decimals: int) -> bool:
    """``value`` rounds to ``literature`` as the source prints it."""
    return abs(value - literature) <= 0.5 * 10**-decimals + 1e-12


def significant(value: float, literature: float, digits: int = 3) -> bool:
    """``value`` agrees with ``literature`` to ``digits`` significant digits."""
    return printed(value, literature, digits - 1 - math.floor(math.log10(abs(literature))))


@pytest.fixture(scope="module")
def log() -> list[Transaction]:
    require_data(CDNOW_DIR)
    with (CDNOW_DIR / "CDNOW_sample.txt").open() as lines:
        return read_cdnow(lines)


@pytest.fixture(scope="module")
def summary(log: list[Transaction]) -> Summary:
    return summarise(log, CALIBRATION_END, holdout_end=HOLDOUT_END)


@pytest.fixture(scope="module")
def fits(summary: Summary) -> dict[str, Fit]:
    return {model: fit(model, summary) for model in ("bgnbd", "pareto", "gammagamma")}


def test_the_cohort_as_the_literature_describes_it(summary: Summary) -> None:
    assert len(summary) == 2357
    assert int(np.sum(summary.frequency > 0)) == 946  # Note 025's repeat buyers
    first = summary.customers.index("00004")  # the sample's customer 1
    assert summary.frequency[first] == 2
    assert round(summary.recency[first], 2) == 30.43 and round(summary.age[first], 2) == 38.86


@pytest.mark.parametrize(
    ("model", "literature", "log_likelihood"),
    [
        ("bgnbd", {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4),
        ("pareto", {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0),
    ],
)
def test_purchase_models_reproduce_fhl_2005(
    fits: dict[str, Fit], model: str, literature: dict[str, float], log_likelihood: float
) -> None:
    fitted = fits[model]
    assert fitted.converged and fitted.customers == 2357
    for name, value in literature.items():
        # FHL print three decimals: at least three significant digits for every parameter.
        assert printed(fitted.params[name], value, 3), (name, fitted.params[name], value)
        assert significant(fitted.params[name], value)
    assert printed(fitted.log_likelihood, log_likelihood, 1)
    assert fitted.seconds < 2.0


def test_bgnbd_conditional_expectation_of_the_example_customer(fits: dict[str, Fit]) -> None:
    params = fits["bgnbd"].vector()
    value = bgnbd.conditional_expected(
        params, 39.0, np.array([2.0]), np.array([30.43]), np.array([38.86])
    )[0]
    assert printed(value, 1.226, 3)


def test_bgnbd_expected_repeat_transactions_of_note_004(fits: dict[str, Fit]) -> None:
    t = np.array([0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0])
    workbook = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576]
    ours = expected_repeat(fits["bgnbd"], t)
    # All but the longest horizon agree to the workbook's four decimals; at t = 78 ours is
    # 1.8580, three significant digits (the workbook's parameters are Excel Solver's, a hair
    # from the optimum).
    assert all(printed(v, e, 4) for v, e in zip(ours[:5], workbook[:5], strict=True)), ours
    assert significant(ours[5], workbook[5]) and not printed(ours[5], workbook[5], 4)


def test_gamma_gamma_reproduces_note_025(summary: Summary, fits: dict[str, Fit]) -> None:
    spend = fits["gammagamma"]
    assert spend.converged and spend.customers == 946
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert printed(spend.params[name], value, 2), (name, spend.params[name])
    workbook = [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]
    ours = expected_spend(spend, summary)[:10]
    assert all(printed(v, e, 2) for v, e in zip(ours, workbook, strict=True)), ours
    assert printed(population_spend(spend), 35.17, 2)


def test_pareto_customer_1516_of_the_btyd_walkthrough() -> None:
    params = np.array([0.5534, 10.5802, 0.6061, 11.6562])
    history = (np.array([26.0]), np.array([30.86]), np.array([31.0]))
    assert printed(pareto.p_alive(params, *history)[0], 0.9979, 4)
    # The vignette prints 25.46; at its four-decimal parameters we get 25.455.
    assert significant(pareto.conditional_expected(params, 52.0, *history)[0], 25.46)


@pytest.fixture(scope="module")
def report(log: list[Transaction]) -> ValidationReport:
    return validate(log, CALIBRATION_END, HOLDOUT_END)


def test_validation_splits_the_78_weeks(report: ValidationReport) -> None:
    tracking = report.tracking
    assert tracking.periods == list(range(1, 79)) and tracking.calibration_periods == 39
    totals = report.totals
    assert totals.calibration_actual == 2457 and totals.holdout_actual == 1882
    cumulative = tracking.cumulative_actual
    assert cumulative[38] == 2457 and cumulative[-1] == 2457 + 1882
    for model in ("bgnbd", "pareto"):
        expected = tracking.cumulative_expected(model)
        # The tracking (per birth day, per week) and the totals (per customer) are two
        # computations of the same sums.
        assert expected[38] == pytest.approx(totals.calibration_expected[model], rel=1e-9)
        assert expected[-1] - expected[38] == pytest.approx(
            totals.holdout_expected[model], rel=1e-9
        )
    # What we measure (docs/analytics.md): both models under-forecast the holdout, the
    # BG/NBD by about 11 %, the Pareto/NBD by about 7 %.
    assert totals.holdout_expected["bgnbd"] == pytest.approx(1666.7, abs=0.1)
    assert totals.holdout_expected["pareto"] == pytest.approx(1745.1, abs=0.1)


def test_conditional_expectations_by_frequency_group(report: ValidationReport) -> None:
    groups = {group.label: group for group in report.groups}
    assert list(groups) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(group.customers for group in groups.values()) == 2357
    assert groups["0"].customers == 1411 and groups["7+"].customers == 64
    weighted = sum(g.customers * g.actual for g in groups.values())
    assert weighted == pytest.approx(1882)
    for model in ("bgnbd", "pareto"):
        means = [groups[label].expected[model] for label in groups]
        # The more a customer bought in calibration, the more the model expects.
        assert means == sorted(means)
        total = sum(g.customers * g.expected[model] for g in groups.values())
        assert total == pytest.approx(report.totals.holdout_conditional[model], rel=1e-9)
