"""Randomized prior function ensembles: the regressor and the pieces it is built from.

Only :class:`RandomizedPriorRegressor` is public; the private modules hold one concept each
(see the README's layout table).
"""

from ._regressor import RandomizedPriorRegressor

__all__ = ["RandomizedPriorRegressor"]
