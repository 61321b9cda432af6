"""What every plot of this package does the same way: axes, features, targets, predictions.

matplotlib is imported only inside the functions that draw, so that ``import sklearn_rpf.plotting``
does not need it.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils import _safe_indexing
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils._plotting import _validate_style_kwargs

from .._arrays import numeric_array, untracked
from .._stack import caller_stacklevel


def get_axes(ax, caller):
    """``(ax, figure)``: the given axes, or new ones; a clear ImportError without matplotlib."""
    check_matplotlib_support(caller)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax, ax.figure


def style(defaults, user_kwargs):
    """The display's defaults overridden by the user's matplotlib keywords (aliases resolved)."""
    return _validate_style_kwargs(defaults, user_kwargs or {})


def as_2d(X):
    """A 1-D array of inputs is one feature (the toy problems' convenience); others pass through."""
    if hasattr(X, "iloc"):
        return X
    X = np.asarray(untracked(X))
    return X[:, None] if X.ndim == 1 else X


def feature_column(X, feature, feature_names=None):
    """``(values, label)`` of one input feature, picked by index or by name.

    Names come from ``X``'s columns (a DataFrame) or else ``feature_names`` (an estimator's
    ``feature_names_in_``).
    """
    X = as_2d(X)
    n_features = X.shape[1]
    names = list(X.columns) if hasattr(X, "columns") else feature_names
    names = None if names is None else [str(name) for name in names]
    if isinstance(feature, str):
        if names is None:
            raise ValueError(
                f"feature={feature!r} is a name, but X has no column names and the estimator has "
                "no feature_names_in_; pass the column's integer index instead."
            )
        if feature not in names:
            raise ValueError(f"feature={feature!r} is not one of the feature names {names}.")
        index = names.index(feature)
    elif isinstance(feature, Integral) and not isinstance(feature, bool):
        if not 0 <= feature < n_features:
            raise ValueError(
                f"feature={feature!r} is out of range: X has {n_features} feature(s), "
                f"so feature must be in [0, {n_features - 1}]."
            )
        index = int(feature)
    else:
        raise TypeError(f"feature must be an integer index or a feature name; got {feature!r}.")
    if names is not None:
        label = names[index]
    else:
        label = "x" if n_features == 1 else f"x[{index}]"
    # Dates would be drawn as nanoseconds since 1970, text fail in NumPy's words: both refused
    # here, naming the feature (the model may well use it through a transformer).
    values = numeric_array(_safe_indexing(X, index, axis=1), f"feature {label!r}",
                           "the horizontal axis", ensure_all_finite=False)
    return values.reshape(len(values)), label


def pick_target(values, target, sample_ndim=1):
    """``values[..., target]`` for multi-output predictions (first target when ``target`` is None).

    ``sample_ndim`` is the number of axes before the target axis (1 for ``predict``, 2 for
    ``predict_members``); an array with no target axis is single-output.
    """
    values = np.asarray(untracked(values), dtype=np.float64)
    if values.ndim == sample_ndim:
        if target not in (None, 0):
            raise ValueError(
                f"target={target!r}, but the estimator predicts a single target; leave target=None."
            )
        return values
    n_targets = values.shape[-1]
    if target is None:
        target = 0
    if isinstance(target, bool) or not isinstance(target, Integral) or not 0 <= target < n_targets:
        raise ValueError(
            f"target must be an integer in [0, {n_targets - 1}] for this {n_targets}-output "
            f"prediction; got {target!r}."
        )
    return values[..., target]


def check_confidence(confidence):
    if isinstance(confidence, bool) or not isinstance(confidence, Real) or not 0 < confidence < 1:
        raise ValueError(
            f"confidence must be a float in the open interval (0, 1); got {confidence!r}."
        )
    return float(confidence)


def predict_mean_std(estimator, X, epistemic=False):
    """``estimator.predict(X, return_std=True[, epistemic=True])`` as ``(mean, std)``.

    With ``epistemic=True``, returns None when ``predict`` does not take that keyword (a
    GaussianProcessRegressor, or a Pipeline ending in one): the capability is found by trying,
    so any estimator offering it is drawn the same way.
    """
    kwargs = {"return_std": True, "epistemic": True} if epistemic else {"return_std": True}
    try:
        prediction = estimator.predict(X, **kwargs)
    except TypeError as exc:
        if epistemic and "epistemic" in str(exc):
            return None
        if "return_std" in str(exc):
            raise TypeError(
                f"{type(estimator).__name__}.predict does not accept return_std=True; this plot "
                "needs a regressor whose predict(X, return_std=True) returns (mean, std), such "
                "as RandomizedPriorRegressor or GaussianProcessRegressor."
            ) from exc
        raise
    if not isinstance(prediction, tuple) or len(prediction) != 2:
        raise TypeError(
            f"{type(estimator).__name__}.predict(X, **{kwargs}) must return a (mean, std) tuple; "
            f"got {type(prediction).__name__}."
        )
    return prediction


def interval_predictor(estimator):
    """``predict_interval`` of the estimator, or of a Pipeline's last step; None without one."""
    if hasattr(estimator, "predict_interval"):
        return estimator.predict_interval
    steps = getattr(estimator, "steps", None)
    if steps and hasattr(steps[-1][1], "predict_interval"):
        # A Pipeline forwards predict but not predict_interval: transform, then ask the last step.
        def predict_interval(X, **kwargs):
            return steps[-1][1].predict_interval(estimator[:-1].transform(X), **kwargs)

        return predict_interval
    return None


def float_array(values, name, allow_inf=False):
    """A float64 array, finite (or, with ``allow_inf``, infinite values allowed but no NaN)."""
    array = numeric_array(values, name, ensure_all_finite=not allow_inf)
    if allow_inf and np.isnan(array).any():
        raise ValueError(f"Input {name} contains NaN.")
    return array


def as_1d_float(values, name, n_samples=None, allow_inf=False):
    """A finite 1-D float array (clear errors for 2-D arrays, NaN and a wrong length); with
    ``allow_inf``, infinite values pass (NaN still fails)."""
    array = float_array(values, name, allow_inf)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D of shape (n_samples,); got shape {array.shape}. For a "
            "multi-output prediction, pass one target's column."
        )
    if n_samples is not None and len(array) != n_samples:
        raise ValueError(f"{name} has {len(array)} values, expected {n_samples} (one per sample).")
    return array


def scatter_observed(ax, x, y, scatter_kwargs=None, label="observed"):
    defaults = {"color": "C3", "s": 14, "zorder": 3, "label": label}
    return ax.scatter(x, y, **style(defaults, scatter_kwargs))


def finish_axes(ax, xlabel, ylabel):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize="small")


def observed_target(y, n_targets, target, name="y"):
    """The observed column matching the drawn prediction (``n_targets`` None: single output)."""
    y = numeric_array(y, name)
    if n_targets in (None, 1) and y.ndim in (1, 2) and y.size == len(y):
        y = y.reshape(-1) if n_targets is None else y.reshape(-1, 1)  # (n,) and (n, 1) alike
    if y.ndim != (1 if n_targets is None else 2) or (n_targets is not None
                                                     and y.shape[1] != n_targets):
        raise ValueError(
            f"{name} has shape {y.shape}, but the estimator predicts {n_targets or 1} target(s) "
            "per sample."
        )
    return y if n_targets is None else pick_target(y, target)


def clip_infinite_interval(bounds, mean, y_true):
    """Infinite interval ends, clipped in place to far past the finite values drawn; returns the
    unclipped ``(lower, upper)`` (to tell which ends were infinite), or None when all are finite.
    ``y_true`` is None or already checked (a float array)."""
    if "interval" not in bounds:
        return None
    lower, upper = bounds["interval"]
    infinite = np.isinf(lower) | np.isinf(upper)
    if not infinite.any():
        return None
    warnings.warn(
        f"The interval is infinite at {infinite.sum()} of {len(lower)} point(s) (for a conformal "
        "interval: too few calibration rows for its confidence); it runs off the axes there.",
        UserWarning, stacklevel=caller_stacklevel(),
    )
    finite = [mean] + [edge[np.isfinite(edge)] for pair in bounds.values() for edge in pair]
    if y_true is not None:
        finite.append(y_true.ravel())
    finite = np.concatenate(finite)
    finite = finite[np.isfinite(finite)]
    low, high = finite.min(), finite.max()
    margin = 0.05 * max(high - low, abs(high), 1e-12)
    far = 1e3 * (high - low + margin)
    bounds["interval"] = (np.maximum(lower, low - far), np.minimum(upper, high + far))
    return lower, upper
