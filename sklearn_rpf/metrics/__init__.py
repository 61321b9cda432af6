"""Scoring rules and scorers for Gaussian predictive distributions.

A regressor with uncertainty predicts, for every sample, a mean ``y_mean`` and a
standard deviation ``y_std``. The functions here measure how good that Gaussian
predictive distribution is, with the conventions of :mod:`sklearn.metrics`:
``sample_weight``, multi-output targets and ``multioutput`` in
``{"raw_values", "uniform_average"}`` or an array of output weights.

- :func:`gaussian_nll` and :func:`crps_gaussian` are proper scoring rules (lower
  is better) in the target's units.
- :func:`interval_coverage` and :func:`interval_width` describe the central
  prediction interval at a given level.
- :func:`calibration_curve` (regression-specific, unlike
  :func:`sklearn.calibration.calibration_curve` for classifiers) and
  :func:`miscalibration_area` compare observed to nominal coverage.
- :func:`make_gaussian_scorer` builds scorers for ``GridSearchCV(scoring=...)``
  and :func:`~sklearn.model_selection.cross_validate` that call
  ``estimator.predict(X, return_std=True)``; :data:`neg_gaussian_nll_scorer` and
  :data:`neg_crps_scorer` are ready to use (each access gives a fresh one).
"""

from ._calibration import calibration_curve, miscalibration_area
from ._gaussian import crps_gaussian, gaussian_nll, interval_coverage, interval_width
from ._scorers import _GaussianScorer, make_gaussian_scorer  # noqa: F401 - pickles name it here

__all__ = [
    "calibration_curve",
    "crps_gaussian",
    "gaussian_nll",
    "interval_coverage",
    "interval_width",
    "make_gaussian_scorer",
    "miscalibration_area",
    "neg_crps_scorer",  # noqa: F822 - made at each access (module __getattr__)
    "neg_gaussian_nll_scorer",  # noqa: F822 - made at each access
]

_READY_MADE = {"neg_gaussian_nll_scorer": "neg_gaussian_nll", "neg_crps_scorer": "neg_crps"}


def __getattr__(name):
    """``neg_gaussian_nll_scorer`` and ``neg_crps_scorer``: a fresh scorer at every access, as
    ``sklearn.metrics.get_scorer`` gives one, so that ``set_score_request`` on one part of a
    program's scorer cannot change how another part's scores are weighted."""
    if name in _READY_MADE:
        return make_gaussian_scorer(_READY_MADE[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
