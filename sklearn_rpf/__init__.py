"""sklearn-rpf: randomized prior function ensembles and Benford-law probes as scikit-learn estimators."""

__version__ = "0.1.0"

from . import metrics
from .benford import BenfordDigitProbe
from .ensemble import RandomizedPriorRegressor

__all__ = ["BenfordDigitProbe", "RandomizedPriorRegressor", "metrics", "__version__"]
