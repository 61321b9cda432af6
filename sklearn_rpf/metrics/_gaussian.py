"""Proper scoring rules and central intervals of Gaussian predictive distributions."""


import numpy as np
from scipy.special import erf
from scipy.stats import norm

from ._validation import (
    _LEVEL,
    _average_per_sample,
    _check_gaussian_targets,
    _validated,
)


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
    with np.errstate(over="ignore", under="ignore"):  # inf for an error of 1e200 stds: exact
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
    with np.errstate(over="ignore", under="ignore"):  # the limits above, computed on purpose
        spread = 2 * norm.pdf(z) - 1 / np.sqrt(np.pi)
        inside = erf(np.abs(z) / np.sqrt(2))
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
    with np.errstate(over="ignore", under="ignore"):  # inf beyond float range: exact
        width = 2 * y_std * _half_width(level)
    return _average_per_sample(width, sample_weight, multioutput)


def _standardized(y_true, y_mean, y_std):
    """``(e, z)``: the error ``y - mu`` and ``z = e / s``; where ``e`` overflows (both huge and
    of opposite signs), ``z`` as ``y / s - mu / s``, which stays finite when it is."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
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
    with np.errstate(over="ignore", under="ignore"):
        return np.abs(y_true - y_mean) <= y_std * _half_width(level)


def _central_pit(y_true, y_mean, y_std):
    """Smallest central level whose interval contains each target, in [0, 1] (1 where the
    error is past float range in standard deviations, 0 where it is below it)."""
    with np.errstate(over="ignore", under="ignore"):
        return 2 * norm.cdf(np.abs(y_true - y_mean) / y_std) - 1
