"""UncertaintyDisplay: a regressor's mean with its standard-deviation bands and intervals."""

from numbers import Real

import numpy as np
from sklearn.utils import check_consistent_length

from .._arrays import numeric_array
from ._common import (
    as_1d_float,
    check_confidence,
    clip_infinite_interval,
    feature_column,
    finish_axes,
    get_axes,
    interval_predictor,
    observed_target,
    pick_target,
    predict_mean_std,
    scatter_observed,
    style,
)

_STD_BANDS = ("total", "epistemic")
_AGAINST = ("feature", "predicted")

# Along a feature each band is one filled region; against the predicted value it is one vertical
# bar per sample, a stroke (zero-width polygon) so that it stays visible whatever the x scale.
_BAND_STYLE = {
    "feature": {
        "total": {"facecolor": "0.6", "edgecolor": "none", "alpha": 0.35},
        "interval": {"facecolor": "none", "edgecolor": "C2", "linestyle": "--", "linewidth": 1.5},
        "epistemic": {"facecolor": "C0", "edgecolor": "none", "alpha": 0.35},
    },
    "predicted": {
        "total": {"facecolor": "none", "edgecolor": "0.6", "linewidth": 6, "alpha": 0.5},
        "interval": {"facecolor": "none", "edgecolor": "C2", "linewidth": 3.5, "alpha": 0.7},
        "epistemic": {"facecolor": "none", "edgecolor": "C0", "linewidth": 2},
    },
}


def _requested_bands(bands):
    """The standard-deviation bands asked for: ``"auto"`` means every one that is offered."""
    if isinstance(bands, str):
        if bands != "auto":
            raise ValueError(f'bands must be "auto" or a list among {_STD_BANDS}; got {bands!r}.')
        return set(_STD_BANDS)
    try:
        wanted = set(bands)
    except TypeError:
        raise ValueError(f'bands must be "auto" or a list among {_STD_BANDS}; got {bands!r}.') from None
    if not wanted <= set(_STD_BANDS):
        hint = ' (the interval is asked with interval="conformal")' if "interval" in wanted else ""
        raise ValueError(f"bands must be among {_STD_BANDS}{hint}; got {bands!r}.")
    return wanted


class UncertaintyDisplay:
    """Predictive mean with ``±n_std`` bands (total, epistemic) and an optional interval.

    Drawn either along one input feature (the points sorted along it: for a 1-D problem, the
    classic band plot) or against the predicted value (one bar per sample, sorted by prediction,
    with the observed targets around the diagonal). Create it with :meth:`from_estimator` or
    :meth:`from_predictions`; all parameters are stored as attributes.

    Parameters
    ----------
    x : ndarray of shape (n_samples,) or None
        Horizontal position of every prediction along a feature; None draws against the
        predicted value.
    y_mean : ndarray of shape (n_samples,)
        Predictive mean.
    y_std : ndarray of shape (n_samples,), default=None
        Total predictive standard deviation (the "total" band).
    y_std_epistemic : ndarray of shape (n_samples,), default=None
        Standard deviation of the function alone (the "epistemic" band).
    interval : tuple (lower, upper) of ndarrays of shape (n_samples,), default=None
        A prediction interval (the "interval" band), e.g. a conformal one.
    y_true : ndarray of shape (n_observed,), default=None
        Observed targets, drawn as points.
    x_true : ndarray of shape (n_observed,), default=None
        Positions of ``y_true`` along the feature when they are not at ``x`` (training points
        under predictions on a grid).
    interval_label : str, default=None
        Legend entry of the interval ("interval" when None).
    x_label, y_label : str, default=None
        Axis labels ("x" or "predicted value", and "y", when None).
    name : str, default=None
        Name of the estimator, used in the mean's legend entry.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The predictive mean (the diagonal ``y = y_mean`` when drawn against the prediction).
    bands_ : dict of matplotlib PolyCollection
        The drawn bands, keyed by ``"total"``, ``"epistemic"`` and ``"interval"``.
    scatter_ : matplotlib PathCollection or None
        The observed targets, None without ``y_true``.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    CoverageDisplay : Whether the bands cover what they claim, at every level.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_rpf import RandomizedPriorRegressor
    >>> from sklearn_rpf.datasets import make_two_clusters
    >>> from sklearn_rpf.plotting import UncertaintyDisplay
    >>> X, y = make_two_clusters(random_state=0)
    >>> reg = RandomizedPriorRegressor(n_estimators=4, max_epochs=30, hidden_layer_sizes=(16,),
    ...                                random_state=0).fit(X, y)
    >>> grid = np.linspace(-3, 3, 100)[:, None]
    >>> display = UncertaintyDisplay.from_estimator(reg, X, y, grid=grid)
    >>> sorted(display.bands_)
    ['epistemic', 'total']
    """

    def __init__(self, *, x, y_mean, y_std=None, y_std_epistemic=None, interval=None,
                 y_true=None, x_true=None, interval_label=None, x_label=None, y_label=None,
                 name=None):
        self.x = x
        self.y_mean = y_mean
        self.y_std = y_std
        self.y_std_epistemic = y_std_epistemic
        self.interval = interval
        self.y_true = y_true
        self.x_true = x_true
        self.interval_label = interval_label
        self.x_label = x_label
        self.y_label = y_label
        self.name = name

    def _checked_bounds(self, n_std):
        """``{band: (lower, upper)}`` of every band the display holds, validated."""
        mean = as_1d_float(self.y_mean, "y_mean")
        n = len(mean)
        bounds = {}
        for key, std in (("total", self.y_std), ("epistemic", self.y_std_epistemic)):
            if std is not None:
                name = "y_std" if key == "total" else "y_std_epistemic"
                std = as_1d_float(std, name, n)
                if np.any(std < 0):
                    raise ValueError(f"{name} must be non-negative; its minimum is {std.min()!r}.")
                bounds[key] = (mean - n_std * std, mean + n_std * std)
        if self.interval is not None:
            if not isinstance(self.interval, tuple | list) or len(self.interval) != 2:
                raise ValueError("interval must be a (lower, upper) pair of arrays.")
            # Infinite ends are legal: a conformal interval with too few calibration rows.
            lower = as_1d_float(self.interval[0], "interval's lower bound", n, allow_inf=True)
            upper = as_1d_float(self.interval[1], "interval's upper bound", n, allow_inf=True)
            if np.any(lower > upper):
                raise ValueError(
                    f"interval's lower bound exceeds its upper bound at {np.sum(lower > upper)} "
                    "sample(s); pass (lower, upper) in that order."
                )
            bounds["interval"] = (lower, upper)
        return mean, bounds

    def plot(self, ax=None, *, n_std=2, name=None, line_kwargs=None, band_kwargs=None,
             scatter_kwargs=None):
        """Draw the display.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        n_std : float, default=2
            Half-width of the standard-deviation bands, in standard deviations.
        name : str, default=None
            Overrides the stored ``name`` in the legend.
        line_kwargs : dict, default=None
            Passed to ``ax.plot`` for the mean.
        band_kwargs : dict, default=None
            Per band (keys ``"total"``, ``"epistemic"``, ``"interval"``), a dict passed to
            matplotlib's ``PolyCollection``.
        scatter_kwargs : dict, default=None
            Passed to ``ax.scatter`` for the observed targets.

        Returns
        -------
        display : UncertaintyDisplay
        """
        if isinstance(n_std, bool) or not isinstance(n_std, Real) or not 0 < n_std < np.inf:
            raise ValueError(f"n_std must be a positive finite number; got {n_std!r}.")
        band_kwargs = {} if band_kwargs is None else dict(band_kwargs)
        unknown = set(band_kwargs) - {"total", "epistemic", "interval"}
        if unknown:
            raise ValueError(
                f"band_kwargs keys must be among 'total', 'epistemic', 'interval'; got {unknown}."
            )
        for key, kwargs in band_kwargs.items():
            if kwargs is not None and not isinstance(kwargs, dict):
                raise ValueError(f"band_kwargs[{key!r}] must be a dict of PolyCollection "
                                 f"properties or None; got {kwargs!r}.")
        mean, bounds = self._checked_bounds(n_std)
        y_true = x_true = None
        if self.y_true is not None:
            y_true = as_1d_float(self.y_true, "y_true")
            if self.x_true is not None:
                x_true = as_1d_float(self.x_true, "x_true", len(y_true))
        elif self.x_true is not None:
            raise ValueError("x_true is where y_true's points are drawn; pass y_true with it.")
        runs_off = clip_infinite_interval(bounds, mean, y_true)
        layout = "predicted" if self.x is None else "feature"
        x = mean if self.x is None else as_1d_float(self.x, "x", len(mean))
        ax, figure = get_axes(ax, f"{type(self).__name__}.plot")
        from matplotlib.collections import PolyCollection

        order = np.argsort(x, kind="stable")
        x = x[order]
        labels = {
            "total": f"±{n_std:g} std (total)",
            "epistemic": f"±{n_std:g} std (epistemic)",
            "interval": self.interval_label or "interval",
        }
        self.bands_ = {}
        for key in ("total", "interval", "epistemic"):  # drawn back to front
            if key not in bounds:
                continue
            lower, upper = (edge[order] for edge in bounds[key])
            if layout == "feature":
                polygons = [np.concatenate([np.column_stack([x, upper]),
                                            np.column_stack([x[::-1], lower[::-1]])])]
            else:
                polygons = [[(xi, lo), (xi, hi)] for xi, lo, hi in zip(x, lower, upper, strict=True)]
            kwargs = style({**_BAND_STYLE[layout][key], "label": labels[key]}, band_kwargs.get(key))
            band = PolyCollection(polygons, **kwargs)
            if key == "interval" and runs_off:
                # Its clipped ends lie far off: only its finite ends count for the axes' limits,
                # which stay automatic for whatever else shares the axes.
                ax.add_collection(band, autolim=False)
                ends = np.r_[runs_off[0][order], runs_off[1][order]]
                finite = np.isfinite(ends)
                ax.update_datalim(np.column_stack([np.r_[x, x][finite], ends[finite]]))
                self.bands_[key] = band
            else:
                self.bands_[key] = ax.add_collection(band)

        name = self.name if name is None else name
        line_defaults = {"color": "navy", "linewidth": 2 if layout == "feature" else 1,
                         "label": "mean" if name is None else f"{name} mean"}
        self.line_ = ax.plot(x, mean[order], **style(line_defaults, line_kwargs))[0]

        self.scatter_ = None
        if y_true is not None:
            if x_true is None:
                check_consistent_length(y_true, mean)
                x_true = mean if self.x is None else as_1d_float(self.x, "x")
            self.scatter_ = scatter_observed(ax, x_true, y_true, scatter_kwargs)

        ax.autoscale_view()
        default_x_label = "x" if layout == "feature" else "predicted value"
        finish_axes(ax, self.x_label or default_x_label, self.y_label or "y")
        self.ax_, self.figure_ = ax, figure
        return self

    @classmethod
    def from_predictions(cls, x, y_mean, y_std=None, *, y_std_epistemic=None, interval=None,
                         y_true=None, x_true=None, interval_label=None, n_std=2, name=None,
                         x_label=None, y_label=None, ax=None, line_kwargs=None, band_kwargs=None,
                         scatter_kwargs=None):
        """Draw bands from predictions already made.

        Parameters
        ----------
        x : array-like of shape (n_samples,) or None
            Position of every prediction along a feature; None draws against ``y_mean``.
        y_mean : array-like of shape (n_samples,)
        y_std : array-like of shape (n_samples,), default=None
            Total standard deviation; no "total" band when None.
        y_std_epistemic : array-like of shape (n_samples,), default=None
        interval : tuple (lower, upper) of array-likes of shape (n_samples,), default=None
        y_true : array-like, default=None
            Observed targets, at ``x`` (or at ``x_true`` when given).
        x_true : array-like, default=None
        interval_label : str, default=None
        n_std : float, default=2
        name, x_label, y_label : str, default=None
        ax : matplotlib Axes, default=None
        line_kwargs, band_kwargs, scatter_kwargs : dict, default=None
            See :meth:`plot`.

        Returns
        -------
        display : UncertaintyDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> from sklearn_rpf.plotting import UncertaintyDisplay
        >>> x = np.linspace(0, 1, 5)
        >>> display = UncertaintyDisplay.from_predictions(x, 2 * x, np.full(5, 0.1), n_std=1)
        >>> display.bands_["total"].get_paths()[0].vertices[:2].round(2).tolist()
        [[0.0, 0.1], [0.25, 0.6]]
        """
        display = cls(x=x, y_mean=y_mean, y_std=y_std, y_std_epistemic=y_std_epistemic,
                      interval=interval, y_true=y_true, x_true=x_true,
                      interval_label=interval_label, x_label=x_label, y_label=y_label, name=name)
        return display.plot(ax=ax, n_std=n_std, line_kwargs=line_kwargs, band_kwargs=band_kwargs,
                            scatter_kwargs=scatter_kwargs)

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, against="feature", feature=None, grid=None,
                       target=None, bands="auto", interval=None, confidence=0.95, n_std=2,
                       name=None, ax=None, line_kwargs=None, band_kwargs=None,
                       scatter_kwargs=None):
        """Draw a fitted regressor's bands on ``X`` (or on ``grid``).

        Parameters
        ----------
        estimator : fitted regressor
            Its ``predict`` must take ``return_std=True`` (a RandomizedPriorRegressor, a
            GaussianProcessRegressor, or a Pipeline ending in one). The epistemic band needs
            ``predict(X, return_std=True, epistemic=True)``, the interval ``predict_interval``.
        X : array-like of shape (n_samples, n_features)
            Where to predict; with ``grid``, only the positions of ``y``.
        y : array-like of shape (n_samples,) or (n_samples, n_targets), default=None
            Observed targets at ``X``, drawn as points.
        against : {"feature", "predicted"}, default="feature"
            Horizontal axis: one input feature, or the predicted value.
        feature : int or str, default=None
            Index or name of the feature (``against="feature"`` only; the first when None).
        grid : array-like of shape (n_grid, n_features), default=None
            Predict here instead of at ``X`` (``against="feature"`` only), e.g. an evenly spaced
            grid through a 1-D input space.
        target : int, default=None
            Target to draw for a multi-output regressor (the first when None).
        bands : "auto" or list of {"total", "epistemic"}, default="auto"
            Standard-deviation bands; "auto" draws the epistemic one only where ``predict``
            offers ``epistemic=True``. Asking for it explicitly elsewhere raises ValueError.
        interval : str, default=None
            Draw ``estimator.predict_interval(X, confidence=confidence, method=interval)``, e.g.
            ``"conformal"``; no interval when None.
        confidence : float, default=0.95
            Nominal coverage of the interval.
        n_std : float, default=2
        name : str, default=None
            Legend name of the estimator (its class name when None).
        ax : matplotlib Axes, default=None
        line_kwargs, band_kwargs, scatter_kwargs : dict, default=None
            See :meth:`plot`.

        Returns
        -------
        display : UncertaintyDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.gaussian_process import GaussianProcessRegressor
        >>> from sklearn_rpf.datasets import make_two_clusters
        >>> from sklearn_rpf.plotting import UncertaintyDisplay
        >>> X, y = make_two_clusters(random_state=0)
        >>> gp = GaussianProcessRegressor(alpha=0.01).fit(X, y)
        >>> display = UncertaintyDisplay.from_estimator(gp, X, y, against="predicted")
        >>> list(display.bands_)  # a GP has no epistemic band of its own
        ['total']
        """
        if against not in _AGAINST:
            raise ValueError(f"against must be one of {_AGAINST}; got {against!r}.")
        wanted = _requested_bands(bands)
        asked_epistemic = not (isinstance(bands, str) and bands == "auto")
        for given, what in ((grid, "grid"), (feature, "feature")):
            if against == "predicted" and given is not None:
                raise ValueError(f'{what} only applies along a feature; drop it with '
                                 'against="predicted".')
        confidence = check_confidence(confidence)
        if y is not None:  # a y that cannot be drawn fails before anything is predicted
            y = numeric_array(y, "y")  # read once: observed_target picks its column below
            check_consistent_length(X, y)
        predict_interval = None
        if interval is not None:
            predict_interval = interval_predictor(estimator)
            if predict_interval is None:
                raise ValueError(
                    f"interval={interval!r} needs an estimator with predict_interval(X, "
                    f"confidence, method); {type(estimator).__name__} has none. Use "
                    "interval=None and the std bands."
                )
        X_eval = X if grid is None else grid
        x = x_true = x_label = None
        if against == "feature":  # a bad feature fails before anything is predicted
            names = getattr(estimator, "feature_names_in_", None)
            feature = 0 if feature is None else feature
            x, x_label = feature_column(X_eval, feature, names)
            if grid is not None and y is not None:
                x_true, _ = feature_column(X, feature, names)

        mean, std = predict_mean_std(estimator, X_eval)
        std_epistemic = None
        if "epistemic" in wanted:
            prediction = predict_mean_std(estimator, X_eval, epistemic=True)
            if prediction is None and asked_epistemic:
                raise ValueError(
                    f"The epistemic band was asked for (bands={bands!r}), but "
                    f"{type(estimator).__name__}.predict does not take epistemic=True; draw the "
                    'total band only, or use bands="auto" to skip what is not offered.'
                )
            std_epistemic = None if prediction is None else prediction[1]
        bounds = None
        if predict_interval is not None:
            bounds = predict_interval(X_eval, confidence=confidence, method=interval)
            bounds = tuple(pick_target(edge, target) for edge in bounds)
        n_targets = np.shape(mean)[1] if np.ndim(mean) == 2 else None
        mean, std, std_epistemic = (None if a is None else pick_target(a, target)
                                    for a in (mean, std if "total" in wanted else None,
                                              std_epistemic))
        if y is not None:
            y = observed_target(y, n_targets, target)
        y_label = "y" if n_targets is None else f"y[{0 if target is None else target}]"
        label = None if interval is None else f"{100 * confidence:.12g}% interval ({interval})"
        display = cls(x=x, y_mean=mean, y_std=std, y_std_epistemic=std_epistemic,
                      interval=bounds, y_true=y, x_true=x_true, interval_label=label,
                      x_label=x_label, y_label=y_label,
                      name=type(estimator).__name__ if name is None else name)
        return display.plot(ax=ax, n_std=n_std, line_kwargs=line_kwargs, band_kwargs=band_kwargs,
                            scatter_kwargs=scatter_kwargs)

