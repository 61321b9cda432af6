"""Plots of a regressor's uncertainty, in the scikit-learn Display style.

- :class:`UncertaintyDisplay`: predictive mean with ``±n_std`` bands (total and, where the
  estimator offers it, epistemic) and an optional prediction interval, along a feature or against
  the predicted value.
- :class:`CoverageDisplay`: observed against nominal coverage, for one or several regressors.
- :func:`plot_members` and :func:`plot_priors`: an ensemble's member curves and frozen priors.
- :func:`plot_uncertainty`: shortcut for :meth:`UncertaintyDisplay.from_estimator` on a grid.

matplotlib is imported only when something is drawn, so ``import sklearn_rpf.plotting`` does not
need it.
"""

from ._coverage import CoverageDisplay
from ._functions import plot_members, plot_priors, plot_uncertainty
from ._uncertainty import UncertaintyDisplay

__all__ = ["CoverageDisplay", "UncertaintyDisplay", "plot_members", "plot_priors", "plot_uncertainty"]
