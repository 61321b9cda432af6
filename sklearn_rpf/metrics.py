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

import inspect
from numbers import Integral, Real

import numpy as np
from scipy.special import erf
from scipy.stats import norm
from sklearn.utils import check_consistent_length
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_params,
)
from sklearn.utils.metadata_routing import UNCHANGED, MetadataRequest

from ._arrays import numeric_array, untracked

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

_MULTIOUTPUT_OPTIONS = ("raw_values", "uniform_average")
# Shared by the public metrics' @validate_params; shapes and positivity are checked inside.
_GAUSSIAN_PARAMETERS = {
    "y_true": ["array-like"],
    "y_mean": ["array-like"],
    "y_std": ["array-like"],
    "sample_weight": ["array-like", None],
    "multioutput": [StrOptions(set(_MULTIOUTPUT_OPTIONS)), "array-like"],
}
_LEVEL = {"level": [Interval(Real, 0, 1, closed="neither")]}


def _validated(extra=None):
    return validate_params({**_GAUSSIAN_PARAMETERS, **(extra or {})},
                           prefer_skip_nested_validation=True)


def _as_columns(values, name):
    """Return a finite float64 2-D array (1-D input becomes one column)."""
    array = numeric_array(values, name)
    return array.reshape(-1, 1) if array.ndim == 1 else array


def _check_gaussian_targets(y_true, y_mean, y_std, sample_weight, multioutput):
    """Validate inputs shared by every metric; never modifies the caller's arrays."""
    y_true = _as_columns(y_true, "y_true")
    y_mean = _as_columns(y_mean, "y_mean")
    y_std = _as_columns(y_std, "y_std")
    check_consistent_length(y_true, y_mean, y_std)
    if y_mean.shape != y_true.shape or y_std.shape != y_true.shape:
        raise ValueError(
            "y_true, y_mean and y_std must have the same shape (n_samples,) or "
            f"(n_samples, n_outputs); got {y_true.shape}, {y_mean.shape} and "
            f"{y_std.shape} (1-D arrays shown as one column)."
        )
    if np.any(y_std <= 0):
        raise ValueError(
            "y_std must be strictly positive: a Gaussian with zero or negative "
            f"standard deviation has no density. Got {np.sum(y_std <= 0)} "
            f"non-positive value(s), the smallest being {y_std.min()!r}."
        )
    if sample_weight is not None:
        sample_weight = numeric_array(sample_weight, "sample_weight")
        if sample_weight.ndim != 1:
            raise ValueError(
                f"sample_weight must be 1-D of shape (n_samples,); got shape {sample_weight.shape}."
            )
        check_consistent_length(y_true, sample_weight)
        if np.any(sample_weight < 0) or not np.any(sample_weight > 0):
            raise ValueError(
                "sample_weight must be non-negative with a positive sum; got "
                f"min={sample_weight.min()!r}, sum={sample_weight.sum()!r}."
            )
        sample_weight = sample_weight / sample_weight.max()  # huge weights: no overflowing sum
    n_outputs = y_true.shape[1]
    if isinstance(multioutput, str):
        if multioutput not in _MULTIOUTPUT_OPTIONS:
            raise ValueError(
                f"multioutput must be one of {_MULTIOUTPUT_OPTIONS} or an array of "
                f"shape (n_outputs,); got {multioutput!r}."
            )
    else:
        multioutput = numeric_array(multioutput, "multioutput")
        if multioutput.shape != (n_outputs,):
            raise ValueError(
                f"multioutput weights must have shape (n_outputs,) = ({n_outputs},); "
                f"got {multioutput.shape}."
            )
        if np.any(multioutput < 0) or not np.any(multioutput > 0):
            raise ValueError("multioutput weights must be non-negative with a positive sum.")
        multioutput = multioutput / multioutput.max()
    return y_true, y_mean, y_std, sample_weight, multioutput


def _combine_outputs(per_output, multioutput):
    """Reduce per-output values of shape (..., n_outputs) as sklearn.metrics does."""
    if isinstance(multioutput, str) and multioutput == "raw_values":
        return per_output
    weights = None if isinstance(multioutput, str) else multioutput
    combined = np.average(per_output, axis=-1, weights=weights)
    return float(combined) if np.ndim(combined) == 0 else combined


def _average_per_sample(values, sample_weight, multioutput):
    return _combine_outputs(np.average(values, axis=0, weights=sample_weight), multioutput)


@_validated()
def gaussian_nll(y_true, y_mean, y_std, *, sample_weight=None, multioutput="uniform_average"):
    """Mean negative log-likelihood of ``y_true`` under ``N(y_mean, y_std**2)``.

    Per sample, ``0.5 * log(2 * pi * y_std**2) + (y_true - y_mean)**2 / (2 * y_std**2)``,
    in nats and in the target's units (rescaling ``y`` by ``c`` adds ``log(c)``).
    Lower is better.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Observed targets.
    y_mean : array-like of the same shape as ``y_true``
        Predicted means.
    y_std : array-like of the same shape as ``y_true``
        Predicted standard deviations, strictly positive.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights.
    multioutput : {"raw_values", "uniform_average"} or array-like of shape \
            (n_outputs,), default="uniform_average"
        How to combine outputs: return one value per output, their mean, or their
        weighted mean.

    Returns
    -------
    loss : float or ndarray of shape (n_outputs,)

    Examples
    --------
    >>> from sklearn_rpf.metrics import gaussian_nll
    >>> round(gaussian_nll([0.0, 1.0], [0.0, 0.0], [1.0, 1.0]), 4)
    1.1689
    """
    y_true, y_mean, y_std, sample_weight, multioutput = _check_gaussian_targets(
        y_true, y_mean, y_std, sample_weight, multioutput
    )
    _, z = _standardized(y_true, y_mean, y_std)
    per_sample = 0.5 * np.log(2 * np.pi) + np.log(y_std) + 0.5 * z**2
    return _average_per_sample(per_sample, sample_weight, multioutput)


@_validated()
def crps_gaussian(y_true, y_mean, y_std, *, sample_weight=None, multioutput="uniform_average"):
    """Mean continuous ranked probability score of Gaussian predictions.

    Uses the closed form of Gneiting & Raftery (2007) for ``F = N(mu, s**2)``:
    ``s * (z * (2 * Phi(z) - 1) + 2 * phi(z) - 1 / sqrt(pi))`` with
    ``z = (y - mu) / s``. It is in the target's units, reduces to the absolute
    error as ``s -> 0``, and lower is better.

    Parameters
    ----------
    y_true, y_mean, y_std, sample_weight, multioutput
        As in :func:`gaussian_nll`.

    Returns
    -------
    loss : float or ndarray of shape (n_outputs,)

    Examples
    --------
    >>> from sklearn_rpf.metrics import crps_gaussian
    >>> round(crps_gaussian([0.0], [0.0], [1.0]), 4)
    0.2337
    """
    y_true, y_mean, y_std, sample_weight, multioutput = _check_gaussian_targets(
        y_true, y_mean, y_std, sample_weight, multioutput
    )
    error, z = _standardized(y_true, y_mean, y_std)
    # |e| (2 Phi(|z|) - 1) + s (2 phi(z) - 1/sqrt(pi)): the absolute error as s -> 0 (where z
    # overflows), and the scaled form where e itself overflows but z does not.
    spread = 2 * norm.pdf(z) - 1 / np.sqrt(np.pi)
    inside = erf(np.abs(z) / np.sqrt(2))
    with np.errstate(over="ignore"):
        per_sample = np.where(np.isfinite(error), np.abs(error) * inside + y_std * spread,
                              y_std * (np.abs(z) * inside + spread))
    return _average_per_sample(per_sample, sample_weight, multioutput)


@_validated(_LEVEL)
def interval_coverage(
    y_true, y_mean, y_std, *, level=0.95, sample_weight=None, multioutput="uniform_average"
):
    """Fraction of targets inside the central prediction interval at ``level``.

    The interval is ``y_mean +/- y_std * Phi^{-1}(0.5 + level / 2)``, bounds
    included. A calibrated model covers about ``level`` of the targets.

    Parameters
    ----------
    y_true, y_mean, y_std
        As in :func:`gaussian_nll`.
    level : float, default=0.95
        Nominal coverage of the interval, in the open interval (0, 1).
    sample_weight, multioutput
        As in :func:`gaussian_nll`.

    Returns
    -------
    coverage : float or ndarray of shape (n_outputs,)

    Examples
    --------
    >>> from sklearn_rpf.metrics import interval_coverage
    >>> round(interval_coverage([0.0, 1.0, 3.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]), 3)
    0.667
    """
    level = float(level)  # in (0, 1): @validate_params
    y_true, y_mean, y_std, sample_weight, multioutput = _check_gaussian_targets(
        y_true, y_mean, y_std, sample_weight, multioutput
    )
    inside = _inside(y_true, y_mean, y_std, level)
    return _average_per_sample(inside.astype(np.float64), sample_weight, multioutput)


@_validated(_LEVEL)
def interval_width(
    y_true, y_mean, y_std, *, level=0.95, sample_weight=None, multioutput="uniform_average"
):
    """Mean width of the central prediction interval at ``level``.

    The width is ``2 * y_std * Phi^{-1}(0.5 + level / 2)``, in the target's units;
    report it next to :func:`interval_coverage` (narrow is only good if covered).
    ``y_true`` is used for validation and shape only.

    Parameters
    ----------
    y_true, y_mean, y_std, level, sample_weight, multioutput
        As in :func:`interval_coverage`.

    Returns
    -------
    width : float or ndarray of shape (n_outputs,)

    Examples
    --------
    >>> from sklearn_rpf.metrics import interval_width
    >>> round(interval_width([0.0, 1.0], [0.0, 0.0], [1.0, 2.0]), 3)
    5.88
    """
    level = float(level)  # in (0, 1): @validate_params
    _, _, y_std, sample_weight, multioutput = _check_gaussian_targets(
        y_true, y_mean, y_std, sample_weight, multioutput
    )
    width = 2 * y_std * _half_width(level)
    return _average_per_sample(width, sample_weight, multioutput)


def _standardized(y_true, y_mean, y_std):
    """``(e, z)``: the error ``y - mu`` and ``z = e / s``; where ``e`` overflows (both huge and
    of opposite signs), ``z`` as ``y / s - mu / s``, which stays finite when it is."""
    with np.errstate(over="ignore", invalid="ignore"):
        error = y_true - y_mean
        z = error / y_std
        overflow = ~np.isfinite(error)
        if overflow.any():
            z = np.where(overflow, y_true / y_std - y_mean / y_std, z)
    return error, z


def _half_width(level):
    """Half-width of the central ``level`` interval in standard deviations; ``isf`` of the tail
    keeps its precision up to ``level`` = 1 - 1e-16, where ``ppf(0.5 + level / 2)`` rounds to
    ``inf``."""
    return norm.isf((1 - np.asarray(level, dtype=np.float64)) / 2)


def _inside(y_true, y_mean, y_std, level):
    """Whether each target lies in the central interval at ``level``, bounds included."""
    with np.errstate(over="ignore"):
        return np.abs(y_true - y_mean) <= y_std * _half_width(level)


def _central_pit(y_true, y_mean, y_std):
    """Smallest central level whose interval contains each target, in [0, 1]."""
    return 2 * norm.cdf(np.abs(y_true - y_mean) / y_std) - 1


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
    with np.errstate(over="ignore"):
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


# name -> (metric, sign) where sign makes greater better, as sklearn scorers do.
_NAMED_SCORERS = {
    "neg_gaussian_nll": (gaussian_nll, -1),
    "neg_crps": (crps_gaussian, -1),
    "neg_miscalibration_area": (miscalibration_area, -1),
    "neg_interval_width": (interval_width, -1),
    "interval_coverage": (interval_coverage, 1),
}


class _GaussianScorer:
    """Callable ``scorer(estimator, X, y_true, sample_weight=None)``; see make_gaussian_scorer.

    ``sklearn.metrics.make_scorer`` cannot pass ``return_std=True`` to ``predict``,
    hence this small class instead of a ``_Scorer`` subclass.
    """

    def __init__(self, score_func, sign, kwargs, name=None):
        self._score_func = score_func
        self._sign = sign
        self._kwargs = kwargs
        self._name = name
        self._sample_weight_request = None

    def __repr__(self):
        if self._name is not None:
            head = repr(self._name)
        else:
            head = getattr(self._score_func, "__name__", repr(self._score_func))
            head += "" if self._sign > 0 else ", greater_is_better=False"
        extra = "".join(f", {key}={value!r}" for key, value in self._kwargs.items())
        return f"make_gaussian_scorer({head}{extra})"

    def __call__(self, estimator, X, y_true, sample_weight=None):
        try:
            prediction = estimator.predict(X, return_std=True)
        except TypeError as exc:
            if "return_std" not in str(exc):
                raise
            raise TypeError(
                f"{type(estimator).__name__}.predict does not accept return_std=True; "
                "Gaussian scorers need an estimator whose predict(X, return_std=True) "
                "returns (mean, std)."
            ) from exc
        if not isinstance(prediction, tuple) or len(prediction) != 2:
            raise TypeError(
                f"{type(estimator).__name__}.predict(X, return_std=True) must return a "
                f"(mean, std) tuple; got {type(prediction).__name__}."
            )
        y_mean, y_std = prediction
        score = self._score_func(y_true, y_mean, y_std, sample_weight=sample_weight, **self._kwargs)
        return self._sign * score

    # Without metadata routing, GridSearchCV forwards a fit's sample_weight to
    # scorers that say they accept it (sklearn's private hook, kept in sync by name).
    def _accept_sample_weight(self):
        return True

    def set_score_request(self, *, sample_weight=UNCHANGED):
        """Request ``sample_weight`` when metadata routing is enabled.

        Parameters
        ----------
        sample_weight : bool, None or str, default=sklearn.utils.metadata_routing.UNCHANGED
            ``True`` to receive ``sample_weight``, ``False`` not to, ``None`` to
            raise if it is passed, a string to receive it under that alias.

        Returns
        -------
        self : object
        """
        if sample_weight is not UNCHANGED:
            self._sample_weight_request = sample_weight
        return self

    def get_metadata_routing(self):
        """Metadata this scorer requests (``sample_weight`` for ``score``)."""
        request = MetadataRequest(owner=self)
        request.score.add_request(param="sample_weight", alias=self._sample_weight_request)
        return request


def _check_metric_kwargs(function, kwargs, name):
    """Keywords the metric does not take fail when the scorer is made (a search would otherwise
    score NaN in every fold, with a warning each)."""
    if "sample_weight" in kwargs:
        raise TypeError("sample_weight is not a keyword of the scorer: pass it when scoring, "
                        "scorer(estimator, X, y, sample_weight=w), or let GridSearchCV route it.")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return
    try:
        signature.bind(None, None, None, **kwargs)
    except TypeError as exc:
        raise TypeError(f"The metric {name} does not take these keywords {sorted(kwargs)}: "
                        f"{exc}.") from None


def make_gaussian_scorer(metric, *, greater_is_better=None, **kwargs):
    """Make a scorer that evaluates ``estimator.predict(X, return_std=True)``.

    The scorer has sklearn's signature ``scorer(estimator, X, y_true,
    sample_weight=None)``, greater is better, and works in ``GridSearchCV``,
    ``cross_validate`` (also in a ``scoring`` dict) and with a ``Pipeline``, whose
    ``predict`` forwards ``return_std`` to its last step. ``sample_weight`` is
    passed on when given: automatically by ``GridSearchCV.fit(..., sample_weight=w)``,
    or with metadata routing after ``scorer.set_score_request(sample_weight=True)``.
    With routing enabled, a Pipeline's final step also needs
    ``set_predict_request(return_std=True)``.

    Parameters
    ----------
    metric : str or callable
        A name: ``"neg_gaussian_nll"``, ``"neg_crps"``, ``"neg_miscalibration_area"``,
        ``"neg_interval_width"`` or ``"interval_coverage"`` (for reporting; it is
        not a score to maximise). Or a function
        ``metric(y_true, y_mean, y_std, sample_weight=None, **kwargs)``.
    greater_is_better : bool, default=None
        Only for a callable ``metric`` (then ``None`` means ``True``); set to
        ``False`` for a loss, whose sign the scorer flips.
    **kwargs
        Passed to the metric, e.g. ``level=0.9``.

    Returns
    -------
    scorer : callable

    Examples
    --------
    >>> from sklearn.linear_model import BayesianRidge
    >>> from sklearn.model_selection import cross_validate
    >>> from sklearn_rpf.metrics import make_gaussian_scorer, neg_crps_scorer
    >>> X, y = [[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]], [0.1, 0.9, 2.2, 2.8, 4.1, 5.0]
    >>> scoring = {"nll": make_gaussian_scorer("neg_gaussian_nll"), "crps": neg_crps_scorer}
    >>> result = cross_validate(BayesianRidge(), X, y, cv=2, scoring=scoring)
    >>> sorted(key for key in result if key.startswith("test_"))
    ['test_crps', 'test_nll']
    """
    if isinstance(metric, str):
        if metric not in _NAMED_SCORERS:
            raise ValueError(
                f"Unknown Gaussian scorer {metric!r}; expected one of "
                f"{sorted(_NAMED_SCORERS)} or a callable."
            )
        if greater_is_better is not None:
            raise ValueError(f"greater_is_better is fixed for the named scorer {metric!r}.")
        score_func, sign = _NAMED_SCORERS[metric]
        _check_metric_kwargs(score_func, kwargs, metric)
        # Our own metrics validate their parameters before reading the data: tried on three rows,
        # a bad level fails here, not as a NaN score and a warning in every fold of a search
        # (errors that depend on the data, such as weights for several outputs, are left to it).
        try:
            score_func([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [1.0, 1.0, 1.0], **kwargs)
        except InvalidParameterError:
            raise
        except (ValueError, TypeError):
            pass
        return _GaussianScorer(score_func, sign, kwargs, name=metric)
    if not callable(metric):
        raise TypeError(f"metric must be a scorer name or a callable; got {metric!r}.")
    _check_metric_kwargs(metric, kwargs, getattr(metric, "__name__", repr(metric)))
    if greater_is_better is not None and not isinstance(greater_is_better, bool | np.bool_):
        raise ValueError(f"greater_is_better must be True, False or None; got "
                         f"{greater_is_better!r}.")
    sign = -1 if greater_is_better is not None and not greater_is_better else 1
    return _GaussianScorer(metric, sign, kwargs)


_READY_MADE = {"neg_gaussian_nll_scorer": "neg_gaussian_nll", "neg_crps_scorer": "neg_crps"}


def __getattr__(name):
    """``neg_gaussian_nll_scorer`` and ``neg_crps_scorer``: a fresh scorer at every access, as
    ``sklearn.metrics.get_scorer`` gives one, so that ``set_score_request`` on one part of a
    program's scorer cannot change how another part's scores are weighted."""
    if name in _READY_MADE:
        return make_gaussian_scorer(_READY_MADE[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
