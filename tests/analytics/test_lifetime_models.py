"""The lifetime models' mathematics on their own: likelihoods against direct numerical
integration, gradients against finite differences, and the properties every prediction
must have whatever the parameters."""

import itertools
import math
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import gammaln

from kopilka.analytics.lifetime import bgnbd, gamma_gamma, pareto
from kopilka.analytics.lifetime.errors import LifetimeDataError
from kopilka.analytics.lifetime.hypergeometric import _series, hyp2f1, hyp2f1_a1
from kopilka.analytics.lifetime.models import (
    Fit,
    clv,
    expected_purchases,
    expected_spend,
    fit,
    p_alive,
    summarise,
)
from kopilka.analytics.lifetime.summary import Transaction

positive = st.floats(min_value=0.05, max_value=20.0)
purchase_params = st.tuples(positive, positive, positive, positive).map(np.array)


@st.composite
def histories(draw: st.DrawFn) -> tuple[float, float, float]:
    """(x, t_x, T) with 0 ≤ t_x ≤ T and t_x = 0 when x = 0."""
    age = draw(st.floats(min_value=0.0, max_value=200.0))
    x = draw(st.integers(min_value=0, max_value=150))
    recency = 0.0 if x == 0 else draw(st.floats(min_value=0.0, max_value=1.0)) * age
    return float(x), recency, age


def arrays(history: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = history
    return np.array([x]), np.array([t_x]), np.array([T])


# -- likelihoods ------------------------------------------------------------------------------


def pareto_by_integration(params: np.ndarray, x: float, t_x: float, T: float) -> float:
    """The Pareto/NBD likelihood from its definition: alive throughout (0, T], or dead at
    some τ in (t_x, T] (gamma mixtures of λ^x e^{−λτ} and μ e^{−μτ})."""
    r, alpha, s, beta = params
    dying = quad(
        lambda tau: (alpha + tau) ** -(r + x) * (beta + tau) ** -(s + 1),
        t_x,
        T,
        epsabs=0,
        epsrel=1e-12,
    )[0]
    scale = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
    return float(scale + np.log(alive + s * dying))


@pytest.mark.parametrize(
    "params",
    [
        [0.553, 10.578, 0.606, 11.669],  # α < β
        [0.553, 12.578, 0.606, 3.669],  # α > β
        [1.5, 0.3, 0.4, 20.0],
        [2.0, 5.0, 1.0, 5.0],  # α = β
    ],
)
@pytest.mark.parametrize(
    "history", [(0, 0, 38.86), (2, 30.43, 38.86), (7, 29.43, 38.86), (40, 10, 38), (1, 38, 38)]
)
def test_pareto_likelihood_is_the_integral_it_stands_for(
    params: list[float], history: tuple[float, float, float]
) -> None:
    vector = np.array(params)
    expected = pareto_by_integration(vector, *history)
    assert pareto.log_likelihood(vector, *arrays(history))[0] == pytest.approx(expected, abs=1e-9)


def test_bgnbd_likelihood_of_many_purchases_stays_finite() -> None:
    # Large x overflows a naive product of the two terms (Fader and Hardie's #NUM! note).
    ll = bgnbd.log_likelihood(np.array([0.243, 4.414, 0.793, 2.426]), *arrays((500, 38, 39)))
    assert np.isfinite(ll[0])


@pytest.mark.parametrize("model", [bgnbd, pareto])
def test_purchase_gradients_match_finite_differences(model: object) -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 12, 60).astype(float)
    T = rng.uniform(1, 40, 60)
    t_x = np.where(x > 0, rng.uniform(0, 1, 60) * T, 0.0)
    weights = rng.integers(1, 5, 60).astype(float)
    theta = np.log([0.7, 6.0, 0.9, 3.0])
    objective = model.objective  # type: ignore[attr-defined]
    _, gradient = objective(theta, x, t_x, T, weights)
    for k in range(4):
        step = np.zeros(4)
        step[k] = 1e-5
        numeric = (
            objective(theta + step, x, t_x, T, weights)[0]
            - objective(theta - step, x, t_x, T, weights)[0]
        ) / 2e-5
        assert gradient[k] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_gamma_gamma_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(1, 10, 50).astype(float)
    m = rng.uniform(5, 80, 50)
    weights = np.ones(50)
    theta = np.log([4.0, 3.0, 12.0])
    _, gradient = gamma_gamma.objective(theta, x, m, weights)
    for k in range(3):
        step = np.zeros(3)
        step[k] = 1e-5
        numeric = (
            gamma_gamma.objective(theta + step, x, m, weights)[0]
            - gamma_gamma.objective(theta - step, x, m, weights)[0]
        ) / 2e-5
        assert gradient[k] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


# -- properties of the predictions ----------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(params=purchase_params, history=histories())
def test_p_alive_is_a_probability(params: np.ndarray, history: tuple[float, float, float]) -> None:
    for model in (bgnbd, pareto):
        value = model.p_alive(params, *arrays(history))[0]
        assert 0.0 <= value <= 1.0


@settings(max_examples=100, deadline=None)
@given(params=purchase_params, age=st.floats(min_value=0.0, max_value=200.0))
def test_bgnbd_customer_without_repeats_is_alive(params: np.ndarray, age: float) -> None:
    # A BG/NBD customer can only drop out right after a purchase.
    assert bgnbd.p_alive(params, *arrays((0.0, 0.0, age)))[0] == 1.0


@settings(max_examples=100, deadline=None)
@given(
    params=purchase_params,
    history=histories(),
    horizons=st.lists(st.floats(min_value=0.0, max_value=300.0), min_size=2, max_size=6),
)
def test_expected_purchases_grow_with_the_horizon(
    params: np.ndarray, history: tuple[float, float, float], horizons: list[float]
) -> None:
    for model in (bgnbd, pareto):
        values = [
            model.conditional_expected(params, h, *arrays(history))[0] for h in sorted(horizons)
        ]
        assert all(np.isfinite(values)) and values[0] >= -1e-9
        assert all(b >= a - 1e-9 * max(1.0, abs(a)) for a, b in itertools.pairwise(values))


def test_conditional_expectation_of_a_new_customer_is_the_unconditional_one() -> None:
    # At T = 0 nothing has been observed, so E[Y(t) | 0, 0, 0] = E[X(t)].
    for model, params in (
        (bgnbd, [0.243, 4.414, 0.793, 2.426]),
        (pareto, [0.55, 10.6, 0.61, 11.7]),
    ):
        vector = np.array(params)
        t = np.array([1.0, 10.0, 39.0])
        conditional = [model.conditional_expected(vector, h, *arrays((0, 0, 0)))[0] for h in t]
        assert conditional == pytest.approx(model.expected_repeat(vector, t), rel=1e-9)


def test_pareto_expectation_is_continuous_at_s_equal_one() -> None:
    at_one = pareto.expected_repeat(np.array([0.5, 10.0, 1.0, 12.0]), np.array([39.0]))
    near = pareto.expected_repeat(np.array([0.5, 10.0, 1.0 + 1e-6, 12.0]), np.array([39.0]))
    assert at_one == pytest.approx(near, rel=1e-5)


def test_bgnbd_expectation_is_continuous_at_a_equal_one() -> None:
    at_one = bgnbd.expected_repeat(np.array([0.5, 4.0, 1.0, 2.5]), np.array([39.0]))
    near = bgnbd.expected_repeat(np.array([0.5, 4.0, 1.0 + 1e-4, 2.5]), np.array([39.0]))
    assert at_one == pytest.approx(near, rel=1e-3)


# -- fits on simulated cohorts ----------------------------------------------------------------


def simulated_log(seed: int, customers: int = 1500) -> list[Transaction]:
    """A Pareto/NBD cohort with Gamma-Gamma spend: weekly purchase rates gamma(r = 0.5,
    α = 5), dropout rates gamma(s = 0.7, β = 10), spend per transaction gamma(p = 5, ν) with
    ν gamma(q = 4, γ = 15); first purchases over the first 8 weeks of 2024."""
    rng = np.random.default_rng(seed)
    start = date(2024, 1, 1)
    log = []
    for i in range(customers):
        rate = rng.gamma(0.5, 1 / 5)
        day = float(rng.integers(0, 56))
        end = min(day + 7 * rng.exponential(1 / rng.gamma(0.7, 1 / 10)), 400)
        spend_rate = rng.gamma(4.0, 1 / 15)
        log.append(Transaction(f"c{i}", start + timedelta(days=int(day)), 10.0))
        while True:
            day += 7 * rng.exponential(1 / max(rate, 1e-9))
            if day > end:
                break
            amount = float(rng.gamma(5.0, 1 / spend_rate))
            log.append(Transaction(f"c{i}", start + timedelta(days=int(day)), amount))
    return log


@pytest.fixture(scope="module")
def simulated() -> tuple[Fit, Fit, Fit, object]:
    summary = summarise(simulated_log(11), date(2024, 12, 31))
    return fit("bgnbd", summary), fit("pareto", summary), fit("gammagamma", summary), summary


def test_fits_converge_and_the_optimum_beats_its_neighbours(simulated: tuple) -> None:  # type: ignore[type-arg]
    bg, pnbd, spend, summary = simulated
    rows = summary.compressed()
    for fitted, model in ((bg, bgnbd), (pnbd, pareto)):
        assert fitted.converged and fitted.customers == len(summary)
        best = fitted.vector()
        at_best = float(
            np.dot(rows.weights, model.log_likelihood(best, rows.frequency, rows.recency, rows.age))
        )
        assert at_best == pytest.approx(fitted.log_likelihood)
        for k in range(4):
            for factor in (0.97, 1.03):
                moved = best.copy()
                moved[k] *= factor
                ll = np.dot(
                    rows.weights,
                    model.log_likelihood(moved, rows.frequency, rows.recency, rows.age),
                )
                assert ll < at_best
    assert spend.converged and spend.customers == int(np.sum(summary.frequency > 0))
    # The models recover the parameters the cohort was drawn from, roughly.
    assert pnbd.params["r"] == pytest.approx(0.5, rel=0.3)
    assert pnbd.params["s"] == pytest.approx(0.7, rel=0.5)
    assert spend.params["p"] == pytest.approx(5.0, rel=0.3)
    assert spend.params["gamma"] / spend.params["q"] == pytest.approx(15 / 4, rel=0.3)


def test_predictions_per_customer(simulated: tuple) -> None:  # type: ignore[type-arg]
    bg, pnbd, spend, summary = simulated
    for purchase in (bg, pnbd):
        alive = p_alive(purchase, summary)
        assert alive.shape == (len(summary),) and np.all((alive >= 0) & (alive <= 1))
        year = expected_purchases(purchase, summary, 52)
        assert np.all(year >= 0) and np.all(expected_purchases(purchase, summary, 104) >= year)
        value = clv(purchase, spend, summary, 52, 0.1)
        undiscounted = clv(purchase, spend, summary, 52, 0.0)
        spends = expected_spend(spend, summary)
        # Without discounting CLV is expected purchases × expected spend.
        assert undiscounted == pytest.approx(year * spends, rel=1e-9)
        assert np.all(value <= undiscounted + 1e-9) and np.all(value > 0)
    mean = spend.params["p"] * spend.params["gamma"] / (spend.params["q"] - 1)
    assert np.all(expected_spend(spend, summary)[summary.frequency == 0] == mean)


def test_models_refuse_each_others_fits(simulated: tuple) -> None:  # type: ignore[type-arg]
    bg, _, spend, summary = simulated
    with pytest.raises(LifetimeDataError, match="spend model"):
        p_alive(spend, summary)
    with pytest.raises(LifetimeDataError, match="purchase model"):
        expected_spend(bg, summary)
    with pytest.raises(LifetimeDataError, match="horizon"):
        expected_purchases(bg, summary, -1)
    with pytest.raises(LifetimeDataError, match="discount_rate_per_year"):
        clv(bg, spend, summary, 52, -1.5)
    with pytest.raises(LifetimeDataError, match="unknown model"):
        fit("nbd", summary)  # type: ignore[arg-type]


def test_hypergeometric_where_scipy_gives_nan() -> None:
    # C − A − B whole, C large, z near 1: SciPy's hyp2f1 returns NaN or inf there.
    value = hyp2f1_a1(np.array([2.0]), np.array([102.0]), np.array([10 / 11]))[0]
    reference = sum(
        math.prod((2.0 + k) / (102.0 + k) for k in range(n)) * (10 / 11) ** n for n in range(400)
    )
    assert value == pytest.approx(reference, rel=1e-12)
    # Elsewhere the series and SciPy agree.
    a, b, c, z = [-0.3, 1.7, 1.0], [0.5, -0.2, 3.5], [3.2, 40.0, 9.9], [0.95, 0.7, 0.2]
    series = _series(*(np.array(v) for v in (a, b, c, z)))
    assert series == pytest.approx(hyp2f1(a, b, c, z), rel=1e-12)
