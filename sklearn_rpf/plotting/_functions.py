"""The ``plot_*`` functions: each draws on one axes along one feature and returns the axes.

``plot_members`` and ``plot_priors`` draw what only an ensemble has (one curve per member);
``plot_uncertainty`` is a shortcut for :class:`UncertaintyDisplay`, which draws the bands.
"""

import numpy as np
from sklearn.utils import check_consistent_length

from ._common import (
    as_2d,
    feature_column,
    finish_axes,
    get_axes,
    observed_target,
    pick_target,
    scatter_observed,
)
from ._uncertainty import UncertaintyDisplay


def _ensemble_method(reg, method, caller):
    """``reg``'s ``method`` (an ensemble's), or a clear error for a regressor without it."""
    if not hasattr(reg, method):
        steps = getattr(reg, "steps", None)
        if steps and hasattr(steps[-1][1], method):
            raise TypeError(
                f"{caller} draws one curve per member, through {method}(X), which a Pipeline "
                "does not forward: pass its final step and the transformed grid, "
                "pipeline[-1] and pipeline[:-1].transform(X_grid)."
            )
        raise TypeError(
            f"{caller} draws one curve per member, through {method}(X), which "
            f"{type(reg).__name__} does not have (it is not an ensemble such as "
            "RandomizedPriorRegressor); draw its bands with UncertaintyDisplay instead."
        )
    return getattr(reg, method)


def _draw_curves(ax, x, curves, label):
    """One line per row of ``curves``, sorted along x; only the first is labelled (short legend)."""
    order = np.argsort(x, kind="stable")
    alpha = 1.0 if len(curves) == 1 else max(0.15, min(0.8, 8.0 / len(curves)))
    for k, curve in enumerate(curves):
        ax.plot(x[order], curve[order], color="C0", linewidth=1, alpha=alpha,
                label=label if k == 0 else None)


def plot_members(reg, X_grid, ax=None, X_train=None, y_train=None, feature=0, target=None):
    """Every member's prediction ``f_k(x) + prior_scale * p_k(x)``, one thin line each.

    Parameters
    ----------
    reg : fitted RandomizedPriorRegressor
        Or any estimator with ``predict_members(X)``.
    X_grid : array-like of shape (n_grid, n_features) or (n_grid,)
        Where to draw the members, sorted along ``feature``.
    ax : matplotlib Axes, default=None
        New figure when None.
    X_train, y_train : array-like, default=None
        Training data, drawn as points when both are given.
    feature : int or str, default=0
        Index or name of the feature on the horizontal axis.
    target : int, default=None
        Which target of a multi-output regressor (the first when None).

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_rpf import RandomizedPriorRegressor
    >>> from sklearn_rpf.datasets import make_two_clusters
    >>> from sklearn_rpf.plotting import plot_members
    >>> X, y = make_two_clusters(random_state=0)
    >>> reg = RandomizedPriorRegressor(n_estimators=4, max_epochs=30, hidden_layer_sizes=(16,),
    ...                                random_state=0).fit(X, y)
    >>> ax = plot_members(reg, np.linspace(-3, 3, 50), X_train=X, y_train=y)
    >>> len(ax.lines)
    4
    """
    X_grid = as_2d(X_grid)
    members = np.asarray(_ensemble_method(reg, "predict_members", "plot_members")(X_grid))
    multi, members_shape = members.ndim == 3, members.shape
    members = pick_target(members, target, sample_ndim=2)
    names = getattr(reg, "feature_names_in_", None)
    x, x_label = feature_column(X_grid, feature, names)
    observed = None
    if X_train is not None and y_train is not None:  # checked before anything is drawn
        y_train = observed_target(y_train, members_shape[2] if multi else None, target,
                                  "y_train")
        x_train = feature_column(X_train, feature, names)[0]
        check_consistent_length(x_train, y_train)
        observed = x_train, y_train
    ax, _ = get_axes(ax, "plot_members")
    _draw_curves(ax, x, members, f"members ({len(members)})")
    if observed is not None:
        scatter_observed(ax, *observed, label="training data")
    finish_axes(ax, x_label, "y")
    return ax


def plot_priors(reg, X_grid, ax=None, feature=0, target=None):
    """The frozen priors alone, ``prior_scale * p_k(x)`` in the target's units.

    A prior shared by every member (a fixed function such as ``sin(3x)``) is drawn once.

    Parameters
    ----------
    reg : fitted RandomizedPriorRegressor
        Or any estimator with ``predict_priors(X)``.
    X_grid : array-like of shape (n_grid, n_features) or (n_grid,)
    ax : matplotlib Axes, default=None
    feature : int or str, default=0
    target : int, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> import torch
    >>> from sklearn_rpf import RandomizedPriorRegressor
    >>> from sklearn_rpf.datasets import make_two_clusters
    >>> from sklearn_rpf.plotting import plot_priors
    >>> X, y = make_two_clusters(random_state=0)
    >>> reg = RandomizedPriorRegressor(n_estimators=4, max_epochs=30, hidden_layer_sizes=(16,),
    ...                                prior=torch.sin, random_state=0).fit(X, y)
    >>> [line.get_label() for line in plot_priors(reg, np.linspace(-3, 3, 50)).lines]
    ['shared prior']
    """
    X_grid = as_2d(X_grid)
    priors = pick_target(_ensemble_method(reg, "predict_priors", "plot_priors")(X_grid), target,
                         sample_ndim=2)
    x, x_label = feature_column(X_grid, feature, getattr(reg, "feature_names_in_", None))
    ax, _ = get_axes(ax, "plot_priors")
    if np.all(priors == priors[:1]):
        priors, label = priors[:1], "shared prior"
    else:
        label = f"member priors ({len(priors)})"
    _draw_curves(ax, x, priors, label)
    finish_axes(ax, x_label, "prior_scale · p(x)")
    return ax


def plot_uncertainty(reg, X_train, y_train, X_grid, ax=None, n_std=2, kind="auto", feature=0,
                     target=None):
    """Training data, mean and ``±n_std`` bands along one feature; returns the axes.

    A shortcut for ``UncertaintyDisplay.from_estimator(reg, X_train, y_train, grid=X_grid,
    ...).ax_``, which also gives the drawn artists.

    Parameters
    ----------
    reg : fitted regressor
        Its ``predict`` takes ``return_std=True`` (RandomizedPriorRegressor,
        GaussianProcessRegressor, a Pipeline ending in one).
    X_train : array-like of shape (n_train, n_features) or (n_train,)
    y_train : array-like of shape (n_train,) or (n_train, n_targets)
    X_grid : array-like of shape (n_grid, n_features) or (n_grid,)
        Where to draw the predictions, sorted along ``feature``.
    ax : matplotlib Axes, default=None
    n_std : float, default=2
    kind : {"auto", "total", "epistemic", "both"}, default="auto"
        Which standard-deviation bands: "auto" draws the epistemic one where the regressor
        offers it, "both" requires it.
    feature : int or str, default=0
    target : int, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn.gaussian_process import GaussianProcessRegressor
    >>> from sklearn_rpf.datasets import make_two_clusters
    >>> from sklearn_rpf.plotting import plot_uncertainty
    >>> X, y = make_two_clusters(random_state=0)
    >>> gp = GaussianProcessRegressor(alpha=0.01).fit(X, y)
    >>> ax = plot_uncertainty(gp, X, y, np.linspace(-3, 3, 50))
    >>> len(ax.collections)  # the total band and the training points
    2
    """
    kinds = {"auto": "auto", "total": ["total"], "epistemic": ["epistemic"],
             "both": ["total", "epistemic"]}
    if kind not in kinds:
        raise ValueError(f"kind must be one of {tuple(kinds)}; got {kind!r}.")
    display = UncertaintyDisplay.from_estimator(
        reg, as_2d(X_train), y_train, grid=as_2d(X_grid), feature=feature, target=target,
        bands=kinds[kind], n_std=n_std, ax=ax, name="ensemble" if hasattr(reg, "predict_members")
        else None, scatter_kwargs={"label": "training data"},
    )
    return display.ax_
