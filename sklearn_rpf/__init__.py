"""sklearn-rpf: randomized prior function ensembles and Benford-law probes as scikit-learn estimators."""

__version__ = "0.1.0"

from . import metrics
from .probe import BenfordDigitProbe
from .regressor import RandomizedPriorRegressor

__all__ = ["BenfordDigitProbe", "RandomizedPriorRegressor", "metrics", "__version__"]
