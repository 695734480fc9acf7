"""₂F₁(1, b; c; z), the Pareto/NBD's hypergeometric function, against reference values and
on the purchase history that once made the Pareto/NBD fit run for minutes."""

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pytest
from scipy.special import hyp2f1 as scipy_hyp2f1

from kopilka.analytics.lifetime.errors import FitFailed
from kopilka.analytics.lifetime.hypergeometric import _continued_fraction, _near_one, hyp2f1_a1
from kopilka.analytics.lifetime.models import Fit, PurchaseModel, Summary, fit
from kopilka.analytics.lifetime.summary import Transaction
from kopilka.analytics.lifetime.validation import validate
from tests.analytics.bgnbd_history import simulate

# (b, c, 1 − z, ₂F₁(1, b; c; z)): mpmath.hyp2f1 at 40 digits on exactly these doubles,
# printed to 17 significant digits. Chosen to cover small z (SciPy's range), z near 1 with c
# large (the continued fraction) and with c·(1 − z) small (the split integral), c − b whole
# (where the usual z → 1 − z formula has cancelling poles), and the fit that once ran for
# minutes (b ≈ 227 and 459, z ≈ 0.998 and 0.999).
REFERENCE = [
    (0.3, 0.35, 0.01, 69.963516565025569),
    (5.0, 5.6, 0.3, 2.7739332149738321),
    (2.0, 102.0, 0.09090909090909091, 1.0183145537605565),
    (0.8, 1.8, 0.4, 1.459035599616691),
    (226.78123604, 228.64503625, 0.001867844681574957, 138.83802499483558),
    (458.79307822, 460.66005229, 0.0009228015873616, 279.84537783321857),
    (1.6333896190128308, 2.6333896190128305, 0.001826381661854, 9.1334355100931787),
    (7.612508585642323, 8.612508585642324, 0.0010211495309129, 33.401176692915762),
    (30.5, 33.5, 0.02, 11.326439962805885),
    (0.05, 0.051000000000000004, 0.0001, 9714.8531627662982),
    (1.0, 3.0, 1e-06, 1.9999743689256219),
    (0.8, 1.8, 1e-09, 16.888847004351892),
    (2.6, 3.2, 1e-09, 14967.099629547076),
    (12.0, 16.0, 3.3568952806e-05, 4.9989933694398957),
    (1000.0, 1013.2, 0.001, 76.215747217330903),
    (1000.0, 1400.0, 1e-09, 3.5062656553506883),
    (25000.0, 25000.6, 0.0001, 8421.164527031291),
    (25000.0, 25002.0, 0.002, 481.14968773243512),
    (1000000.0, 1000001.5, 1e-07, 1188870.5528056935),
    (3.5, 3.501, 1e-09, 981138246.24035055),
    (40.0, 40.606, 0.5, 1.9712391460622379),
    (40.0, 40.606, 0.06, 14.067058685668691),
    (0.1, 50.1, 1e-06, 1.0020408142389456),
    (150.0, 151.000000001, 1e-05, 890.82038159887586),
]


def test_hyp2f1_a1_matches_the_reference_values() -> None:
    b, c, complement, expected = (np.array(column) for column in zip(*REFERENCE, strict=True))
    # All at once (the vectorised path) and one by one (each regime on its own).
    together = hyp2f1_a1(b, c, 1.0 - complement, complement)
    alone = [hyp2f1_a1(*row[:2], 1.0 - row[2], row[2]) for row in REFERENCE]
    assert together == pytest.approx(expected, rel=1e-11, abs=0)
    assert np.array(alone) == pytest.approx(expected, rel=1e-11, abs=0)


def test_hyp2f1_a1_from_z_alone_near_one() -> None:
    # z = 1 − 1e-9 as a double; 1 − z is then exact, so z alone is enough.
    z = 1 - 1e-9
    values = hyp2f1_a1(np.array([0.8, 2.0]), np.array([2.4000000000000004, 2.5]), z)
    assert values == pytest.approx([2.3333176349631154, 74506.41315886594], rel=1e-11, abs=0)


def test_scipy_is_silently_wrong_where_we_are_not() -> None:
    # Why the function is not simply SciPy's: near z = 1 with c − b whole, SciPy returns NaN,
    # inf or (here) a finite wrong value, even a negative one.
    b, c, complement, expected = REFERENCE[6]
    assert abs(scipy_hyp2f1(1.0, b, c, 1 - complement) - expected) > 1e-3 * expected
    assert hyp2f1_a1(b, c, 1 - complement, complement) == pytest.approx(expected, rel=1e-11)


def test_the_regimes_agree_where_they_meet() -> None:
    # SciPy below z = 1/2, the continued fraction above, the split integral once
    # c·(1 − z) < 3: at the seams the methods must agree, or the fit's finite-difference
    # gradient would see a jump.
    b = np.array([0.3, 2.0, 40.0, 226.8, 5000.0])
    c = b + np.array([0.05, 1.0, 0.606, 1.86, 3.0])
    half = np.full_like(b, 0.5)
    assert _continued_fraction(b, c, half) == pytest.approx(
        scipy_hyp2f1(1.0, b, c, half), rel=1e-13
    )
    seam = 3.0 / c[2:]
    assert _near_one(b[2:], c[2:], 1 - seam, seam) == pytest.approx(
        _continued_fraction(b[2:], c[2:], 1 - seam), rel=1e-12
    )


def simulated_log() -> tuple[list[Transaction], date]:
    """250 members of a BG/NBD process (seed 15) over 2024, and their last purchase day."""
    customers = simulate(250, date(2024, 1, 1), date(2024, 12, 31), seed=15)
    log = [
        Transaction(f"m{c.index}", day, amount / 100)
        for c in customers
        for day, amount in zip(c.days, c.amounts, strict=True)
    ]
    return log, max(t.day for t in log)


def recording(fits: list[Fit]) -> Callable[[PurchaseModel, Summary], Fit]:
    def fit_and_keep(model: PurchaseModel, summary: Summary) -> Fit:
        fits.append(fit(model, summary))
        return fits[-1]

    return fit_and_keep


def test_pareto_validation_with_many_silent_customers() -> None:
    # Calibration ending 150 days before the last purchase: the optimum has β ≫ α, so every
    # customer's z is near 1; the neighbouring cut-offs once took minutes.
    log, last = simulated_log()
    report = validate(log, last - timedelta(days=150), last, models=("pareto",))
    fitted = report.fits["pareto"]
    assert fitted.converged
    assert fitted.params["beta"] > 50 * fitted.params["alpha"]
    assert fitted.params["s"] == pytest.approx(29.4, rel=0.02)
    assert report.totals.holdout_conditional["pareto"] > 0


def test_pareto_on_a_dropout_ridge_stops() -> None:
    # Five calendar months before the last purchase (the fit that once ran for more than
    # four minutes): the likelihood keeps rising as s and β grow with s/β fixed (every
    # customer with one and the same dropout rate), so the optimiser walks a ridge towards
    # z → 1 with b and c in the thousands. It must stop soon, on the ridge's profile (r, α
    # and s/β as found by fixing s = 10⁶ and maximising over the others); a fit that says it
    # has not converged (what it should say here) is refused by validation.
    log, last = simulated_log()
    assert last == date(2024, 12, 29)
    fits: list[Fit] = []
    try:
        validate(log, date(2024, 7, 29), last, models=("pareto",), fit_model=recording(fits))
        refused = False
    except FitFailed as error:
        refused = "pareto did not converge" in str(error)
    (fitted,) = fits
    assert refused == (not fitted.converged) and np.isfinite(fitted.log_likelihood)
    assert fitted.log_likelihood > -1979.5717  # the profile's maximum at s = 100
    assert fitted.params["r"] == pytest.approx(1.827, rel=0.01)
    assert fitted.params["alpha"] == pytest.approx(11.09, rel=0.01)
    assert fitted.params["s"] / fitted.params["beta"] == pytest.approx(0.03759, rel=0.01)
