"""Toy data for trying uncertainty estimates: where the data is, and where it is not."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

from .ensemble._seeding import seed_from

__all__ = ["make_two_clusters"]


@validate_params(
    {
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "spread": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_two_clusters(n_samples=40, *, noise=0.05, spread=0.15, random_state=None):
    """The 1-D toy problem of randomized prior functions: two clusters of data with a gap between.

    Half the inputs are drawn around -1 and half around +1 (normal, standard deviation
    ``spread``); the target is ``sin(2x) + 0.5 x`` plus Gaussian noise of standard deviation
    ``noise``. A good uncertainty estimate is narrow on the clusters and wide between and beyond
    them, where no data constrains the function.

    Parameters
    ----------
    n_samples : int, default=40
        Number of points; the first ``n_samples // 2`` are in the left cluster.
    noise : float, default=0.05
        Standard deviation of the Gaussian noise on the target.
    spread : float, default=0.15
        Standard deviation of each cluster along x.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws; None draws fresh OS entropy (NumPy's global generator is never used).

    Returns
    -------
    X : ndarray of shape (n_samples, 1)
    y : ndarray of shape (n_samples,)

    Examples
    --------
    >>> from sklearn_rpf.datasets import make_two_clusters
    >>> X, y = make_two_clusters(random_state=0)
    >>> X.shape, y.shape
    ((40, 1), (40,))
    """
    if isinstance(random_state, np.random.RandomState):
        rng = random_state
    else:  # None draws fresh OS entropy: check_random_state(None) is NumPy's global generator
        rng = np.random.RandomState(seed_from(random_state))  # and a bool is refused there
    n_left = n_samples // 2
    x = np.concatenate([rng.normal(-1.0, spread, n_left), rng.normal(1.0, spread, n_samples - n_left)])
    y = np.sin(2 * x) + 0.5 * x + noise * rng.normal(size=n_samples)
    return x[:, None], y
