"""What ``RandomizedPriorRegressor.fit`` and ``partial_fit`` accept: the training data, the
options that depend on each other, and ``net_params`` that would contradict the regressor."""

import warnings
from numbers import Integral

import numpy as np
from sklearn.utils.validation import _check_sample_weight, _num_samples, validate_data
from skorch.callbacks import Callback

from .._arrays import check_numeric, check_numeric_features, finite_even_if_assumed, untracked
from .._stack import caller_stacklevel
from ._training import weight_decay_kwargs


def check_training_data(estimator, X, y, sample_weight, reset=True):
    """What ``fit`` and ``partial_fit`` accept, checked before anything changes: ``(X, y as
    (n, t), sample_weight, y's ndim)`` as float64 arrays, or an error in scikit-learn's words
    (text, dates, NaN, float128 past float64, too few rows, contradicting ``net_params``,
    options that need the bootstrap)."""
    X, y, sample_weight = (untracked(a) for a in (X, y, sample_weight))
    y_shape = check_numeric(y, "y", "a regression target").shape
    if len(y_shape) == 2 and y_shape[1] == 0:  # scikit-learn would say "0 feature(s)"
        raise ValueError(f"y has no target column (shape {y_shape}); at least one is needed.")
    if reset and y_shape[:1] == (1,) and _rows(X) == 1:
        raise ValueError(
            "Found 1 sample, but the first fit or partial_fit call needs at least 2: the "
            "inputs and targets are scaled from its rows (later partial_fit calls may have "
            "one)."
        )
    if sample_weight is not None:
        check_numeric(sample_weight, "sample_weight", "non-negative weights")
    X = check_numeric_features(X)
    X, y = validate_data(
        estimator, X, y, multi_output=True, y_numeric=True, dtype=np.float64,
        ensure_min_samples=2 if reset else 1, reset=reset,
    )
    if y.dtype.kind == "f" and y.dtype.itemsize > 8:  # float128: torch has no such type
        with np.errstate(over="ignore"):
            wide, y = y, y.astype(np.float64)
        if np.any(np.isinf(y) & np.isfinite(wide)):
            raise ValueError("y has values beyond float64's range (about 1.8e308); the "
                             "regressor computes in float64 at most. Rescale y.")
    if not np.isfinite(y).all():  # None in an object y passes scikit-learn's check as NaN
        raise ValueError("Input y contains NaN or infinity (None counts as missing).")
    sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                         ensure_non_negative=True)
    finite_even_if_assumed(X, "X")
    finite_even_if_assumed(sample_weight, "sample_weight")
    weight_decay_kwargs(estimator.optimizer, estimator.weight_decay)  # an optimizer without it
    for key in estimator.net_params or {}:
        if key in NET_PARAMS_REFUSED:
            raise ValueError(f"net_params may not set {key!r}: {NET_PARAMS_REFUSED[key]}.")
    _check_callbacks((estimator.net_params or {}).get("callbacks"))
    _check_batch_size((estimator.net_params or {}).get("batch_size", 1))
    for name in ("early_stopping", "calibrate_epistemic"):
        if getattr(estimator, name) and not estimator.bootstrap:
            raise ValueError(
                f"{name}=True needs bootstrap=True: it relies on the out-of-bag rows of each "
                "member."
            )
    estimator._hidden_layer_sizes()
    return X, y.reshape(len(y), -1), sample_weight, y.ndim


# Keys of net_params that would silently contradict a parameter of the regressor (get_params
# would report one value and training use another) or replace a part it builds itself.
NET_PARAMS_REFUSED = {
    "device": "use the device parameter, which is checked and also places the data and the priors",
    "verbose": "use the verbose parameter",
    "lr": "use the lr parameter (the learning-rate schedule reads it too)",
    "optimizer__lr": "use the lr parameter (the learning-rate schedule reads it too)",
    "optimizer": "use the optimizer parameter",
    "optimizer__weight_decay": "use the weight_decay parameter",
    "max_epochs": "use the max_epochs parameter (the learning-rate schedule counts its steps)",
    "module": "the regressor builds the ensemble's module from its module and prior parameters",
    "criterion": "the members' bootstrap-weighted loss is the regressor's (see the loss parameter)",
    "train_split": "the out-of-bag rows are the members' validation sets (early_stopping)",
    "iterator_train": "the regressor's batches carry each member's bootstrap weights",
    "iterator_valid": "the regressor's batches carry each member's bootstrap weights",
}


def _check_callbacks(callbacks):
    """net_params' callbacks as skorch takes them: a list of callbacks (instances or classes)
    or of (name, callback) pairs; skorch's own error for anything else names none of this."""
    def is_callback(c):
        return isinstance(c, Callback) or (isinstance(c, type) and issubclass(c, Callback))

    if callbacks is None:
        return
    if not isinstance(callbacks, list | tuple) or not all(
            is_callback(c) or (isinstance(c, tuple | list) and len(c) == 2
                               and isinstance(c[0], str) and is_callback(c[1]))
            for c in callbacks):
        raise ValueError(
            "net_params['callbacks'] must be a list of skorch callbacks or of (name, callback) "
            f"pairs, e.g. [skorch.callbacks.LRScheduler(...)]; got {callbacks!r}."
        )


def _check_batch_size(batch_size):
    """net_params' batch_size as skorch and the loss scale both read it: a positive int (skorch
    takes -1 for the whole data, but the loss scale turned negative and training climbed)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(
            "net_params['batch_size'] must be a positive integer; got "
            f"{batch_size!r}. For the whole data set in one batch, use the batch_size=None "
            "parameter."
        )


def _rows(X):
    """Rows of ``X`` as scikit-learn counts them; None where it cannot (its check will say)."""
    try:
        return _num_samples(X)
    except TypeError:
        return None


def check_out_of_bag(oob_weight):
    """Early stopping judges each member on the rows it left out: an error when no member left
    any out, a warning naming the members that train the whole budget for want of them."""
    why = ("identical rows are drawn together, so a few distinct rows, or large integer sample "
           "weights, let a member draw every one")
    empty = np.flatnonzero(~oob_weight.any(axis=0))
    if len(empty) == oob_weight.shape[1]:
        raise ValueError(
            f"early_stopping=True but no row is out of bag for any member ({why}); turn early "
            "stopping off, or use more distinct rows or smaller weights."
        )
    if len(empty):
        warnings.warn(
            f"early_stopping=True but member(s) {empty.tolist()} left no row out of bag ({why}); "
            "they cannot be judged and train for the whole budget.", UserWarning, stacklevel=caller_stacklevel(),
        )
