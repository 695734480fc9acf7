"""Gauss's hypergeometric function ₂F₁ where the models need it, robust where SciPy's is not.

SciPy's ``hyp2f1`` is fast and accurate over the models' ranges except where C − A − B is a
whole number, C is large and z is near 1: there it returns NaN or inf (for instance
₂F₁(1, 2; 102; 10/11), which is about 1.018). A fit can land exactly there (its starting
point has whole-number parameters), so those entries are summed from the series instead.
"""

import numpy as np
from scipy.special import hyp2f1 as scipy_hyp2f1

from kopilka.analytics.lifetime.summary import FloatArray

# The series stops when a term changes the sum by less than this, or after this many terms
# (for |z| < 1 the terms shrink geometrically once n passes the parameters).
_TOLERANCE = 1e-17
_TERMS = 400_000


def hyp2f1(a: object, b: object, c: object, z: object) -> FloatArray:
    """₂F₁(a, b; c; z) for real 0 ≤ z < 1, broadcast over the arguments."""
    a_, b_, c_, z_ = (np.asarray(v, dtype=np.float64) for v in (a, b, c, z))
    a_, b_, c_, z_ = np.broadcast_arrays(a_, b_, c_, z_)
    values = np.array(scipy_hyp2f1(a_, b_, c_, z_), dtype=np.float64)
    failed = ~np.isfinite(values)
    if np.any(failed):
        values[failed] = _series(a_[failed], b_[failed], c_[failed], z_[failed])
    return values


def hyp2f1_a1(b: object, c: object, z: object) -> FloatArray:
    """₂F₁(1, b; c; z) for c > b > 0 and 0 ≤ z < 1: the series' terms are then positive and
    at most zⁿ, so the fallback sum is stable and never above 1/(1 − z)."""
    return hyp2f1(1.0, b, c, z)


def _series(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """Σₙ (a)ₙ (b)ₙ / ((c)ₙ n!) zⁿ, summed until every entry has converged."""
    total = np.ones_like(z)
    term = np.ones_like(z)
    active = np.ones(z.shape, dtype=bool)
    for n in range(_TERMS):
        step = (a[active] + n) * (b[active] + n) / ((c[active] + n) * (n + 1)) * z[active]
        term[active] *= step
        total[active] += term[active]
        active &= np.abs(term) > _TOLERANCE * np.abs(total)
        if not np.any(active):
            break
    return total
