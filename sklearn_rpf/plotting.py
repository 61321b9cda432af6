"""Matplotlib helpers to look at a fitted :class:`~sklearn_rpf.RandomizedPriorRegressor`.

Each helper draws on one axis along one input feature (1-D toy problems, or a slice through a
larger input space) and returns the axis. matplotlib is imported inside the functions, so that
``import sklearn_rpf`` does not need it.
"""

import numpy as np

_UNCERTAINTY_KINDS = ("total", "epistemic", "both")


def _axis(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def _as_2d(X):
    X = np.asarray(X, dtype=np.float64)
    return X[:, None] if X.ndim == 1 else X


def _pick_target(values, target):
    """``values[..., target]`` for multi-output predictions; single-output ones pass through."""
    values = np.asarray(values)
    return values if target is None else values[..., target]


def _check_target(reg, target):
    multi = getattr(reg, "_y_ndim", 1) == 2
    if multi and target is None:
        target = 0
    if not multi and target not in (None, 0):
        raise ValueError(f"target={target!r} but the regressor was fitted on a single target.")
    return target if multi else None


def _prior_outputs(reg, X):
    """``prior_scale * p_k(X)`` of every member, shape (n_estimators, n_samples, n_targets)."""
    priors = reg.predict_priors(X)
    return priors[..., None] if priors.ndim == 2 else priors


def plot_uncertainty(reg, X_train, y_train, X_grid, ax=None, n_std=2, kind="both",
                     feature=0, target=None):
    """Training data, ensemble mean and a ``±n_std`` standard-deviation band.

    Parameters
    ----------
    reg : fitted RandomizedPriorRegressor
    X_train : array-like of shape (n_train, n_features) or (n_train,)
    y_train : array-like of shape (n_train,) or (n_train, n_targets)
    X_grid : array-like of shape (n_grid, n_features) or (n_grid,)
        Where to draw the predictions, sorted along ``feature``.
    ax : matplotlib Axes, default=None
        New figure when None.
    n_std : float, default=2
        Half-width of the band in standard deviations.
    kind : {"total", "epistemic", "both"}, default="both"
        ``"total"``: the predictive std (epistemic spread plus noise), ``"epistemic"``: the
        members' spread alone, ``"both"``: a band for each.
    feature : int, default=0
        Column of ``X`` used as the horizontal axis.
    target : int, default=None
        Which target to draw for a multi-output regressor (first one when None).

    Returns
    -------
    ax : matplotlib Axes
    """
    if kind not in _UNCERTAINTY_KINDS:
        raise ValueError(f"kind must be one of {_UNCERTAINTY_KINDS}; got {kind!r}.")
    target = _check_target(reg, target)
    ax = _axis(ax)
    X_train, X_grid = _as_2d(X_train), _as_2d(X_grid)
    x = X_grid[:, feature]
    mean, std_total = reg.predict(X_grid, return_std=True)
    mean, std_total = _pick_target(mean, target), _pick_target(std_total, target)
    bands = []
    if kind in ("total", "both"):
        bands.append((std_total, "0.6", 0.35, f"±{n_std:g} std (total, with noise)"))
    if kind in ("epistemic", "both"):
        _, std_epistemic = reg.predict(X_grid, return_std=True, epistemic=True)
        bands.append((_pick_target(std_epistemic, target), "C0", 0.35,
                      f"±{n_std:g} std (epistemic)"))
    for std, color, alpha, label in bands:
        ax.fill_between(x, mean - n_std * std, mean + n_std * std, color=color, alpha=alpha,
                        linewidth=0, label=label)
    ax.plot(x, mean, color="navy", linewidth=2, label="ensemble mean")
    ax.scatter(X_train[:, feature], _pick_target(y_train, target), color="C3", s=14, zorder=3,
               label="training data")
    ax.set_xlabel(f"x[{feature}]" if X_grid.shape[1] > 1 else "x")
    ax.set_ylabel("y")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_members(reg, X_grid, ax=None, X_train=None, y_train=None, feature=0, target=None):
    """Every member's prediction ``f_k(x) + prior_scale * p_k(x)``, one thin line each.

    Parameters
    ----------
    reg : fitted RandomizedPriorRegressor
    X_grid : array-like of shape (n_grid, n_features) or (n_grid,)
    ax : matplotlib Axes, default=None
    X_train, y_train : array-like, default=None
        Training data, drawn as points when given.
    feature : int, default=0
    target : int, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    target = _check_target(reg, target)
    ax = _axis(ax)
    X_grid = _as_2d(X_grid)
    members = _pick_target(reg.predict_members(X_grid), target)
    _draw_curves(ax, X_grid[:, feature], members, f"members ({len(members)})")
    if X_train is not None and y_train is not None:
        ax.scatter(_as_2d(X_train)[:, feature], _pick_target(y_train, target), color="C3", s=14,
                   zorder=3, label="training data")
    ax.set_xlabel(f"x[{feature}]" if X_grid.shape[1] > 1 else "x")
    ax.set_ylabel("y")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_priors(reg, X_grid, ax=None, feature=0, target=None):
    """The frozen priors alone, ``prior_scale * p_k(x)`` in the target's units.

    A prior shared by every member (a fixed function such as ``sin(3x)``) is drawn once.

    Parameters
    ----------
    reg : fitted RandomizedPriorRegressor
    X_grid : array-like of shape (n_grid, n_features) or (n_grid,)
    ax : matplotlib Axes, default=None
    feature : int, default=0
    target : int, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    target = _check_target(reg, target)
    ax = _axis(ax)
    X_grid = _as_2d(X_grid)
    priors = _prior_outputs(reg, X_grid)[..., 0 if target is None else target]
    if np.all(priors == priors[:1]):
        priors = priors[:1]
        label = "shared prior"
    else:
        label = f"member priors ({len(priors)})"
    _draw_curves(ax, X_grid[:, feature], priors, label)
    ax.set_xlabel(f"x[{feature}]" if X_grid.shape[1] > 1 else "x")
    ax.set_ylabel("prior_scale · p(x)")
    ax.legend(loc="best", fontsize="small")
    return ax


def _draw_curves(ax, x, curves, label):
    """One line per row of ``curves``; only the first is labelled, so the legend stays short."""
    alpha = 1.0 if len(curves) == 1 else max(0.15, min(0.8, 8.0 / len(curves)))
    for k, curve in enumerate(curves):
        ax.plot(x, curve, color="C0", linewidth=1, alpha=alpha, label=label if k == 0 else None)
