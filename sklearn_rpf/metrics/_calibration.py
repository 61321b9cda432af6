"""Observed against nominal coverage: the reliability diagram of a regressor."""

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval

from .._arrays import numeric_array, untracked
from ._gaussian import _central_pit, _half_width
from ._validation import (
    _check_gaussian_targets,
    _combine_outputs,
    _validated,
)


@_validated({"levels": [Interval(Integral, 1, None, closed="left"), "array-like"]})
def calibration_curve(
    y_true, y_mean, y_std, *, levels=20, sample_weight=None, multioutput="uniform_average"
):
    """Observed against nominal coverage of central intervals, for regression.

    Regression counterpart of :func:`sklearn.calibration.calibration_curve` (which
    is for classifiers): for each nominal ``level`` it returns the (weighted)
    fraction of targets inside the central interval at that level, as
    :func:`interval_coverage` computes it. A calibrated model lies on the
    diagonal; below it the intervals are too narrow (over-confident).

    Parameters
    ----------
    y_true, y_mean, y_std
        As in :func:`gaussian_nll`.
    levels : int or array-like of shape (n_levels,), default=20
        Nominal levels in (0, 1), or how many evenly spaced ones to use
        (the midpoints ``(k - 0.5) / levels`` for ``k = 1 .. levels``).
    sample_weight, multioutput
        As in :func:`gaussian_nll`; outputs are combined level by level.

    Returns
    -------
    nominal : ndarray of shape (n_levels,)
    observed : ndarray of shape (n_levels,) or (n_levels, n_outputs)
        The latter when ``multioutput="raw_values"``.

    Examples
    --------
    >>> from sklearn_rpf.metrics import calibration_curve
    >>> nominal, observed = calibration_curve([0.0, 1.0, 3.0], [0, 0, 0], [1, 1, 1], levels=2)
    >>> nominal.tolist(), observed.round(3).tolist()
    ([0.25, 0.75], [0.333, 0.667])
    """
    if isinstance(levels, bool) or (np.isscalar(levels) and not isinstance(levels, Integral)) or (
            isinstance(levels, Integral) and levels < 1):
        raise ValueError(
            "levels must be a positive int (how many evenly spaced levels) or a 1-D array of "
            f"values in the open interval (0, 1); got {levels!r}."
        )
    if isinstance(levels, Integral):
        nominal = (np.arange(int(levels)) + 0.5) / int(levels)
    else:
        try:
            shape = np.shape(untracked(levels))
        except ValueError:  # ragged nesting
            shape = None
        if shape is None or len(shape) != 1 or shape[0] == 0:  # check_array: "0 sample(s)"
            raise ValueError("levels must be a non-empty 1-D array of values in the open "
                             f"interval (0, 1); got {levels!r:.80}.")
        nominal = numeric_array(levels, "levels")
        if np.any((nominal <= 0) | (nominal >= 1)):  # 1-D and non-empty: checked above
            raise ValueError(
                "levels must be a 1-D array of values in the open interval (0, 1); "
                f"got {nominal!r}."
            )
    y_true, y_mean, y_std, sample_weight, multioutput = _check_gaussian_targets(
        y_true, y_mean, y_std, sample_weight, multioutput
    )
    per_output = _coverage_by_level(y_true, y_mean, y_std, nominal, sample_weight)
    return nominal, _combine_outputs(per_output, multioutput)


def _coverage_by_level(y_true, y_mean, y_std, nominal, sample_weight):
    """``interval_coverage`` at every level of ``nominal``: ``(n_levels, n_outputs)``.

    The same test as interval_coverage (a PIT compared with the level rounds otherwise for
    targets on a bound), but not level by level: the half-width grows with the level, so each
    target is inside from some level on, which a binary search over the sorted levels finds in
    about ``log2(n_levels)`` passes over the targets instead of ``n_levels``.
    """
    order = np.argsort(nominal, kind="stable")
    half = _half_width(nominal[order])  # non-decreasing
    low = np.zeros(y_true.shape, dtype=np.intp)  # first sorted level inside is in [low, high]
    high = np.full(y_true.shape, len(half), dtype=np.intp)  # len(half): inside at none
    with np.errstate(over="ignore", under="ignore"):
        distance = np.abs(y_true - y_mean)
        while np.any(open_ := low < high):
            middle = (low + high) // 2
            inside = distance <= y_std * half[np.minimum(middle, len(half) - 1)]
            high = np.where(open_ & inside, middle, high)
            low = np.where(open_ & ~inside, middle + 1, low)
    weight = np.ones(len(y_true)) if sample_weight is None else sample_weight
    covered = np.empty((len(half), y_true.shape[1]))
    for j in range(y_true.shape[1]):  # weight of the targets first inside at each level, summed
        summed = np.cumsum(np.bincount(low[:, j], weights=weight, minlength=len(half) + 1))
        covered[:, j] = summed[:-1] / summed[-1]  # the same sum as the total: never above 1
    per_output = np.empty_like(covered)
    per_output[order] = covered
    return per_output


@_validated()
def miscalibration_area(
    y_true, y_mean, y_std, *, sample_weight=None, multioutput="uniform_average"
):
    """Area between the regression calibration curve and the diagonal.

    The regression analogue of the expected calibration error:
    ``integral_0^1 |observed(p) - p| dp`` where ``observed(p)`` is the coverage of
    the central interval at level ``p``. Computed exactly (the observed curve is a
    step function), so no grid is needed. 0 is perfect, 0.5 the worst.

    Parameters
    ----------
    y_true, y_mean, y_std, sample_weight, multioutput
        As in :func:`gaussian_nll`.

    Returns
    -------
    area : float or ndarray of shape (n_outputs,)

    Examples
    --------
    >>> from sklearn_rpf.metrics import miscalibration_area
    >>> round(miscalibration_area([0.0], [0.0], [1.0]), 3)
    0.5
    """
    y_true, y_mean, y_std, sample_weight, multioutput = _check_gaussian_targets(
        y_true, y_mean, y_std, sample_weight, multioutput
    )
    pit = _central_pit(y_true, y_mean, y_std)
    weights = np.ones(len(pit)) if sample_weight is None else sample_weight
    areas = np.empty(pit.shape[1])
    for output, column in enumerate(pit.T):
        order = np.argsort(column)
        edges = np.concatenate([[0.0], column[order], [1.0]])
        # observed(p) is constant, equal to `height`, on each [edges[k], edges[k+1]).
        height = np.concatenate([[0.0], np.cumsum(weights[order])]) / weights.sum()

        def antiderivative(p, height=height):  # of |p - height| in p
            return np.sign(p - height) * (p - height) ** 2 / 2

        areas[output] = np.sum(antiderivative(edges[1:]) - antiderivative(edges[:-1]))
    return _combine_outputs(areas, multioutput)
