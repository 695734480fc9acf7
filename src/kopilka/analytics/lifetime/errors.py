"""Why a lifetime model could not be prepared or fitted.

Both are domain errors: the CLI prints their detail as one line, an endpoint as a problem
document (422), naming what was wrong with the data.
"""

from kopilka.errors import InvalidInput


class LifetimeDataError(InvalidInput):
    """The purchase log cannot give a model what it needs: no customers, nobody who
    repeats, a spend that is not positive, a line of a file that does not parse."""

    type_slug = "lifetime-data"
    title = "Purchase history unsuitable for the lifetime model"


class FitFailed(InvalidInput):
    """The maximum-likelihood search ended without a usable optimum (the likelihood is
    not finite anywhere near, or the optimiser gave up far from a stationary point)."""

    type_slug = "lifetime-fit-failed"
    title = "Lifetime model fit failed"
