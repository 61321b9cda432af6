"""Standardisation of inputs and targets, safe at any finite magnitude.

Networks train well on inputs and targets of about unit scale, and the default prior is built so
that ``prior_scale`` reads in target standard deviations; so the estimator standardises both itself
(``normalize_X``, ``normalize_y``). Moments are computed on values divided by each column's largest
magnitude first, so that 1e200 squares without overflow, and in row chunks, so that no full-size
temporary is made. Predictions go back to the target's units through the standard deviation, never
the variance (``(1e200)**2`` is not a float).
"""

from dataclasses import dataclass

import numpy as np

# Rows per chunk: bounds the temporaries of moments and transforms to a few MB.
_CHUNK_ROWS = 65_536


def _chunks(n):
    return (slice(start, min(start + _CHUNK_ROWS, n)) for start in range(0, n, _CHUNK_ROWS))


def weighted_location_scale(A, weight=None):
    """Weighted mean and standard deviation of each column of ``A``, without overflow.

    Parameters
    ----------
    A : ndarray of shape (n, m), finite
    weight : ndarray of shape (n,), non-negative with a positive sum, optional

    Returns
    -------
    mean, std, peak : ndarrays of shape (m,)
        ``peak`` is each column's largest magnitude (1 for an all-zero column).
    """
    n, m = A.shape
    peak = np.zeros(m)
    for rows in _chunks(n):
        np.maximum(peak, np.abs(A[rows]).max(axis=0, initial=0.0), out=peak)
    peak[peak == 0] = 1.0
    if weight is None:
        weight = np.ones(n)
    weight = weight / weight.max()  # weights of 1e300 must not overflow either
    # Chan et al.'s pairwise update: chunk moments combined without a full-size temporary.
    total, mean, m2 = 0.0, np.zeros(m), np.zeros(m)
    for rows in _chunks(n):
        w = weight[rows]
        w_sum = w.sum()
        if w_sum == 0:
            continue
        z = A[rows] / peak
        chunk_mean = (w @ z) / w_sum
        chunk_m2 = w @ (z - chunk_mean) ** 2
        delta = chunk_mean - mean
        new_total = total + w_sum
        mean = mean + delta * (w_sum / new_total)
        m2 = m2 + chunk_m2 + delta**2 * (total * w_sum / new_total)
        total = new_total
    std = np.sqrt(m2 / total)
    return mean * peak, std * peak, peak


@dataclass(frozen=True)
class Standardizer:
    """Affine maps of inputs and targets to about zero mean and unit variance.

    Attributes
    ----------
    x_offset, x_scale : ndarray of shape (n_features,)
    y_offset, y_scale : ndarray of shape (n_targets,)
    """

    x_offset: np.ndarray
    x_scale: np.ndarray
    y_offset: np.ndarray
    y_scale: np.ndarray

    @classmethod
    def fit(cls, X, y, sample_weight, normalize_X=True, normalize_y=True):
        """Moments of ``X`` and ``y`` (2-D, finite), weighted by ``sample_weight``."""
        return cls(*_offset_scale(X, sample_weight, normalize_X),
                   *_offset_scale(y, sample_weight, normalize_y))

    def transform_X(self, X, dtype=np.float32, rows=slice(None)):
        """Standardised ``X[rows]`` in ``dtype``; a clear error if it leaves ``dtype``'s range."""
        X = X[rows]
        out = np.empty(X.shape, dtype=dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
            for chunk in _chunks(len(X)):
                np.divide(X[chunk] - self.x_offset, self.x_scale, out=out[chunk], casting="unsafe")
            finite = np.isfinite(out).all()
            if not finite:
                _refine_overflow(out, X, self.x_offset, self.x_scale)
                finite = np.isfinite(out).all()
        if not finite:
            where = np.argwhere(~np.isfinite(out))[0]
            raise ValueError(
                f"X[{where[0]}, {where[1]}] = {X[tuple(where)]!r} is too far from the training "
                f"data (offset {self.x_offset[where[1]]:.3g}, scale {self.x_scale[where[1]]:.3g})"
                f" to be represented in {np.dtype(dtype).name} once standardised; fit with "
                "dtype='float64' or bring the inputs to a common scale."
            )
        return out

    def transform_y(self, y):
        """Standardised targets, float64, shape ``(n, n_targets)``."""
        with np.errstate(over="ignore", invalid="ignore"):
            out = (y - self.y_offset) / self.y_scale
            if not np.isfinite(out).all():
                _refine_overflow(out, y, self.y_offset, self.y_scale)
        return out

    def inverse_mean(self, mean):
        """From standardised to original units (last axis: targets)."""
        return mean * self.y_scale + self.y_offset

    def inverse_std(self, std):
        """Standard deviations back to original units; scaled as stds so they cannot overflow."""
        return std * self.y_scale


def _refine_overflow(out, A, offset, scale):
    """Where ``(A - offset) / scale`` overflowed in the subtraction (values of opposite signs near
    float64's limit, 1.7e308), recompute it as ``A / scale - offset / scale``, which stays finite.
    Only those entries: everywhere else the result stays bit for bit the usual one."""
    bad = ~np.isfinite(out) & np.isfinite(A)
    if bad.any():
        rows, cols = np.nonzero(bad)
        out[rows, cols] = A[rows, cols] / scale[cols] - offset[cols] / scale[cols]


def _offset_scale(A, weight, normalize):
    if not normalize:
        return np.zeros(A.shape[1]), np.ones(A.shape[1])
    mean, std, peak = weighted_location_scale(A, weight)
    # A constant column (one whose spread is within the rounding of its values) gets unit scale, as
    # in StandardScaler, with its test (sklearn.preprocessing._data._is_constant_feature, n the
    # number of rows; StandardScaler uses the weights' sum when weighted): a spread of 1e-4 around
    # 1e9 is real and is scaled up, not taken for rounding (the cut was 1e-12 of the peak before).
    eps, n = np.finfo(np.float64).eps, A.shape[0]
    variance, location = (std / peak) ** 2, mean / peak
    constant = variance <= n * eps * variance + (n * location * eps) ** 2
    return mean, np.where(constant, 1.0, std)
