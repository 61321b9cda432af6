"""CoverageDisplay: observed against nominal coverage, a reliability diagram for regression."""

from collections.abc import Mapping
from numbers import Integral

import numpy as np
from sklearn.utils import check_array, check_consistent_length
from sklearn.utils.validation import _num_samples

from .._arrays import numeric_array
from ..metrics import calibration_curve
from ._common import float_array, get_axes, interval_predictor, predict_mean_std, style

_METHODS = ("gaussian", "interval")
# Marks the reference line, so that several displays drawn on one axes share a single diagonal.
_DIAGONAL_GID = "sklearn_rpf.coverage.diagonal"


def _nominal_levels(levels):
    """The nominal levels exactly as metrics.calibration_curve spaces and validates them."""
    nominal, _ = calibration_curve([0.0], [0.0], [1.0], levels=levels)
    return nominal


def _interval_levels(levels):
    """Nominal levels of ``predict_interval``: an int spaces them over [0.5, 1), where a
    jackknife+ interval is defined (below 0.5 its ends can cross)."""
    if isinstance(levels, Integral) and not isinstance(levels, bool) and levels >= 1:
        return 0.5 + 0.5 * _nominal_levels(levels)
    return _nominal_levels(levels)


def _columns(values, name, n_samples=None, allow_inf=False):
    array = float_array(values, name, allow_inf)
    if array.ndim > 2:
        raise ValueError(f"{name} must be 1-D or 2-D; got shape {array.shape}.")
    if n_samples is not None and len(array) != n_samples:
        raise ValueError(f"{name} has {len(array)} rows, expected {n_samples}.")
    return array.reshape(len(array), -1)


def _select(columns, target, name):
    """One target's column, or all of them (averaged later) when ``target`` is None."""
    if target is None:
        return columns
    if isinstance(target, bool) or not isinstance(target, Integral) or not 0 <= target < columns.shape[1]:
        raise ValueError(
            f"target must be an integer in [0, {columns.shape[1] - 1}] for {name} with "
            f"{columns.shape[1]} target(s); got {target!r}."
        )
    return columns[:, [target]]


def _check_sample_weight(sample_weight, n_samples):
    if sample_weight is None:
        return None
    weight = numeric_array(sample_weight, "sample_weight")
    if weight.ndim != 1 or len(weight) != n_samples:
        raise ValueError(f"sample_weight must have shape ({n_samples},); got {weight.shape}.")
    if np.any(weight < 0) or not np.any(weight > 0):
        raise ValueError("sample_weight must be non-negative with a positive sum.")
    return weight


def _gaussian_coverage(y_true, y_mean, y_std, levels, sample_weight, target):
    y_true = _select(_columns(y_true, "y_true"), target, "y_true")
    y_mean = _select(_columns(y_mean, "y_mean", len(y_true)), target, "y_mean")
    y_std = _select(_columns(y_std, "y_std", len(y_true)), target, "y_std")
    return calibration_curve(y_true, y_mean, y_std, levels=levels, sample_weight=sample_weight)


def _interval_coverage(y_true, intervals, sample_weight, target):
    """Coverage of given ``{level: (lower, upper)}`` intervals, averaged over the targets."""
    if not isinstance(intervals, Mapping) or not intervals:
        raise ValueError("intervals must be a non-empty dict {level: (lower, upper)}.")
    y_true = _select(_columns(y_true, "y_true"), target, "y_true")
    sample_weight = _check_sample_weight(sample_weight, len(y_true))
    nominal = _nominal_levels(list(intervals))
    order = np.argsort(nominal, kind="stable")  # the curve runs from low to high levels
    items = list(intervals.items())
    observed = []
    for level, bounds in (items[i] for i in order):
        if not isinstance(bounds, tuple | list) or len(bounds) != 2:
            raise ValueError(f"intervals[{level!r}] must be a (lower, upper) pair of arrays.")
        # An infinite end (a conformal interval with too few calibration rows) covers everything.
        lower, upper = (_select(_columns(edge, f"intervals[{level!r}]", len(y_true), True),
                                target, f"intervals[{level!r}]") for edge in bounds)
        if lower.shape != y_true.shape or upper.shape != y_true.shape:
            raise ValueError(
                f"intervals[{level!r}] bounds have shapes {lower.shape} and {upper.shape}, "
                f"but y_true has {y_true.shape}."
            )
        if np.any(lower > upper):
            raise ValueError(f"intervals[{level!r}]: the lower bound exceeds the upper bound.")
        inside = (lower <= y_true) & (y_true <= upper)
        observed.append(np.average(inside, axis=0, weights=sample_weight).mean())
    return nominal[order], np.asarray(observed)


class CoverageDisplay:
    """Observed against nominal coverage of central prediction intervals (reliability diagram).

    A calibrated model lies on the diagonal; below it, its intervals are too narrow
    (over-confident), above it too wide. Several models can share one axes. Create it with
    :meth:`from_estimator` or :meth:`from_predictions`; parameters are stored as attributes.

    Parameters
    ----------
    nominal : array-like of shape (n_levels,)
        Nominal coverage levels, in (0, 1).
    observed : array-like of shape (n_levels,) or (n_curves, n_levels)
        Observed coverage at every level, one row per model.
    names : list of str, default=None
        Legend name of each curve.

    Attributes
    ----------
    nominal_ : ndarray of shape (n_levels,)
        The nominal levels drawn, increasing.
    observed_ : ndarray of shape (n_curves, n_levels)
        The observed coverages drawn, one row per curve, in the order of ``nominal_``.
    lines_ : list of matplotlib Line2D
        One line per curve.
    line_ : matplotlib Line2D or list of matplotlib Line2D
        The curve's line, or ``lines_`` where there are several (as scikit-learn's displays).
    diagonal_line_ : matplotlib Line2D
        The reference ``observed = nominal`` (one per axes, shared by displays drawn on it).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    sklearn_rpf.metrics.calibration_curve : The numbers behind the Gaussian curves.
    UncertaintyDisplay : The bands themselves.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.gaussian_process import GaussianProcessRegressor
    >>> from sklearn_rpf import RandomizedPriorRegressor
    >>> from sklearn_rpf.datasets import make_two_clusters
    >>> from sklearn_rpf.plotting import CoverageDisplay
    >>> X, y = make_two_clusters(random_state=0)
    >>> X_test, y_test = make_two_clusters(200, random_state=1)
    >>> rpf = RandomizedPriorRegressor(n_estimators=4, max_epochs=30, hidden_layer_sizes=(16,),
    ...                                random_state=0).fit(X, y)
    >>> models = {"RPF": rpf, "GP": GaussianProcessRegressor(alpha=0.01).fit(X, y)}
    >>> display = CoverageDisplay.from_estimator(models, X_test, y_test, levels=5)
    >>> display.observed_.shape
    (2, 5)
    """

    def __init__(self, *, nominal, observed, names=None):
        self.nominal = nominal
        self.observed = observed
        self.names = names

    def plot(self, ax=None, *, name=None, line_kwargs=None, diagonal_kwargs=None):
        """Draw the display: each curve from the lowest level to the highest, whatever the
        order of ``nominal`` (``nominal_`` and ``observed_`` are in that order).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        name : str or list of str, default=None
            Overrides the stored ``names`` in the legend (a str for a single curve).
        line_kwargs : dict or list of dict, default=None
            Passed to ``ax.plot`` for every curve, or one dict per curve.
        diagonal_kwargs : dict, default=None
            Passed to ``ax.plot`` for the diagonal, if this axes has none yet.

        Returns
        -------
        display : CoverageDisplay
        """
        if np.ndim(self.nominal) != 1:
            raise ValueError(f"nominal must be a 1-D array of levels; got {self.nominal!r}.")
        nominal = _nominal_levels(self.nominal)
        observed = np.atleast_2d(check_array(self.observed, ensure_2d=False, dtype=np.float64,
                                             input_name="observed"))
        if observed.ndim != 2 or observed.shape[1] != len(nominal):
            raise ValueError(
                f"observed must have shape (n_levels,) or (n_curves, n_levels) with n_levels = "
                f"{len(nominal)}; got {np.shape(self.observed)}."
            )
        if np.any((observed < 0) | (observed > 1)):  # a share of the rows: within [0, 1]
            raise ValueError(
                "observed coverages must lie between 0 and 1; got values from "
                f"{np.nanmin(observed):.3g} to {np.nanmax(observed):.3g}."
            )
        order = np.argsort(nominal, kind="stable")  # a curve, not a zig-zag through the levels
        nominal, observed = nominal[order], observed[:, order]
        n_curves = len(observed)
        names = self.names if name is None else [name] if isinstance(name, str) else name
        names = [None] * n_curves if names is None else list(names)
        if len(names) != n_curves:
            given = "names" if name is None else "name"
            raise ValueError(f"{given} has {len(names)} entries for {n_curves} curve(s).")
        if isinstance(line_kwargs, list | tuple):
            if len(line_kwargs) != n_curves:
                raise ValueError(f"line_kwargs has {len(line_kwargs)} dicts for {n_curves} curve(s).")
            per_curve = list(line_kwargs)
        else:
            per_curve = [line_kwargs] * n_curves
        ax, figure = get_axes(ax, f"{type(self).__name__}.plot")

        diagonal = [line for line in ax.get_lines() if line.get_gid() == _DIAGONAL_GID]
        if diagonal:
            self.diagonal_line_ = diagonal[0]
        else:
            defaults = {"color": "black", "linestyle": "--", "linewidth": 1, "alpha": 0.7,
                        "label": "perfectly calibrated"}
            self.diagonal_line_ = ax.plot([0, 1], [0, 1], gid=_DIAGONAL_GID,
                                          **style(defaults, diagonal_kwargs))[0]
        self.lines_ = [
            ax.plot(nominal, row, **style({"marker": "o", "markersize": 4, "label": name},
                                          kwargs))[0]
            for row, name, kwargs in zip(observed, names, per_curve, strict=True)
        ]
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="nominal coverage", ylabel="observed coverage")
        ax.set_aspect("equal")
        ax.legend(loc="upper left", fontsize="small")
        # scikit-learn's displays name their curve line_ (a list where they draw several).
        self.line_ = self.lines_[0] if n_curves == 1 else self.lines_
        self.nominal_, self.observed_ = nominal, observed
        self.ax_, self.figure_ = ax, figure
        return self

    @classmethod
    def from_predictions(cls, y_true, y_mean=None, y_std=None, *, intervals=None, levels=None,
                         target=None, sample_weight=None, name=None, ax=None, line_kwargs=None,
                         diagonal_kwargs=None):
        """Coverage of Gaussian predictions, or of intervals given level by level.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,) or (n_samples, n_targets)
        y_mean, y_std : array-like of the same shape, default=None
            Gaussian predictions: the interval at level ``p`` is the central one of
            ``N(y_mean, y_std**2)``, as in :func:`sklearn_rpf.metrics.calibration_curve`.
        intervals : dict {level: (lower, upper)}, default=None
            Instead of ``y_mean`` and ``y_std``: the interval at each nominal level, bounds
            shaped like ``y_true`` (e.g. from ``predict_interval``).
        levels : int or array-like, default=None
            Gaussian predictions only: nominal levels, or how many evenly spaced ones
            (10 when None).
        target : int, default=None
            Which target of a multi-output prediction; when None, coverage is averaged over
            the targets.
        sample_weight : array-like of shape (n_samples,), default=None
        name : str, default=None
            Legend name of the curve.
        ax : matplotlib Axes, default=None
        line_kwargs, diagonal_kwargs : dict, default=None
            See :meth:`plot`.

        Returns
        -------
        display : CoverageDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn_rpf.plotting import CoverageDisplay
        >>> y = [0.0, 1.0, 3.0]
        >>> display = CoverageDisplay.from_predictions(y, intervals={0.5: ([-1, -1, -1], [0.5] * 3),
        ...                                                          0.9: ([-1, -1, -1], [2] * 3)})
        >>> display.observed_.round(3).tolist()
        [[0.333, 0.667]]
        """
        if intervals is not None:
            if y_mean is not None or y_std is not None or levels is not None:
                raise ValueError(
                    "Pass either y_mean and y_std (with levels), or intervals {level: (lower, "
                    "upper)} whose keys are the levels; not both."
                )
            nominal, observed = _interval_coverage(y_true, intervals, sample_weight, target)
        else:
            if y_mean is None or y_std is None:
                raise ValueError("Pass y_mean and y_std, or intervals={level: (lower, upper)}.")
            nominal, observed = _gaussian_coverage(y_true, y_mean, y_std,
                                                   10 if levels is None else levels,
                                                   sample_weight, target)
        display = cls(nominal=nominal, observed=observed, names=None if name is None else [name])
        return display.plot(ax=ax, line_kwargs=line_kwargs, diagonal_kwargs=diagonal_kwargs)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, levels=10, method="gaussian", interval_method=None,
                       target=None, sample_weight=None, name=None, ax=None, line_kwargs=None,
                       diagonal_kwargs=None):
        """Coverage of one or several fitted regressors on ``(X, y)``.

        Parameters
        ----------
        estimator : fitted regressor or dict {name: fitted regressor}
            Each one's ``predict`` must take ``return_std=True`` (``method="gaussian"``) or it
            must have ``predict_interval`` (``method="interval"``); a Pipeline ending in such a
            regressor works too. A dict draws one curve per entry, named by its key.
        X : array-like of shape (n_samples, n_features)
            Held-out inputs (coverage on the training rows flatters the model).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        levels : int or array-like of shape (n_levels,), default=10
            Nominal levels in (0, 1), or how many evenly spaced ones (as in
            :func:`sklearn_rpf.metrics.calibration_curve`). With ``method="interval"`` an int
            spaces them over [0.5, 1) instead (0.525, 0.575, ..., 0.975 for 10): conformal
            intervals need a confidence of at least 0.5.
        method : {"gaussian", "interval"}, default="gaussian"
            ``"gaussian"``: central intervals of ``N(mean, std**2)`` from
            ``predict(X, return_std=True)``. ``"interval"``:
            ``predict_interval(X, confidence=level, method=interval_method)`` at every level.
        interval_method : str, default=None
            ``method`` passed to ``predict_interval`` (its own default when None), e.g.
            ``"conformal"``.
        target : int, default=None
            Which target of a multi-output regressor; averaged over targets when None.
        sample_weight : array-like of shape (n_samples,), default=None
        name : str, default=None
            Legend name for a single estimator (its class name when None).
        ax : matplotlib Axes, default=None
        line_kwargs, diagonal_kwargs : dict or list of dict, default=None
            See :meth:`plot`.

        Returns
        -------
        display : CoverageDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.gaussian_process import GaussianProcessRegressor
        >>> from sklearn_rpf.datasets import make_two_clusters
        >>> from sklearn_rpf.plotting import CoverageDisplay
        >>> X, y = make_two_clusters(random_state=0)
        >>> X_test, y_test = make_two_clusters(200, random_state=1)
        >>> gp = GaussianProcessRegressor(alpha=0.01).fit(X, y)
        >>> display = CoverageDisplay.from_estimator(gp, X_test, y_test, levels=[0.5, 0.9])
        >>> display.nominal_.tolist()
        [0.5, 0.9]
        """
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}; got {method!r}.")
        if interval_method is not None and method != "interval":
            raise ValueError('interval_method only applies with method="interval".')
        if isinstance(estimator, Mapping):
            if name is not None:
                raise ValueError("name is for a single estimator; a dict's keys name its curves.")
            if not estimator:
                raise ValueError("estimator is an empty dict; pass at least one fitted regressor.")
            named = dict(estimator)
        else:
            named = {type(estimator).__name__ if name is None else name: estimator}
        # Everything is checked before the first prediction is made.
        nominal = _interval_levels(levels) if method == "interval" else _nominal_levels(levels)
        check_consistent_length(X, y)
        _check_sample_weight(sample_weight, _num_samples(X))
        if method == "interval":
            predictors = {label: interval_predictor(model) for label, model in named.items()}
            for label, predict_interval in predictors.items():
                if predict_interval is None:
                    raise ValueError(
                        f'method="interval" needs predict_interval, which {label!r} '
                        f'({type(named[label]).__name__}) does not have; use method="gaussian".'
                    )
        observed = []
        for label, model in named.items():
            if method == "gaussian":
                y_mean, y_std = predict_mean_std(model, X)
                _, curve = _gaussian_coverage(y, y_mean, y_std, nominal, sample_weight, target)
            else:
                predict_interval = predictors[label]
                extra = {} if interval_method is None else {"method": interval_method}
                levels, asked = np.unique(nominal, return_inverse=True)  # sorted, each once
                intervals = {level: tuple(predict_interval(X, confidence=level, **extra))
                             for level in levels}
                _, by_level = _interval_coverage(y, intervals, sample_weight, target)
                curve = by_level[asked]  # back to the levels as asked, repeats included
            observed.append(curve)
        display = cls(nominal=nominal, observed=np.array(observed), names=list(named))
        return display.plot(ax=ax, line_kwargs=line_kwargs, diagonal_kwargs=diagonal_kwargs)
