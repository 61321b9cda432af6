"""What every Gaussian metric checks and how it averages: shapes, positivity, weights and
``multioutput``, as :mod:`sklearn.metrics` does."""

from numbers import Real

import numpy as np
from sklearn.utils import check_consistent_length
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_params,
)

from .._arrays import numeric_array

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
