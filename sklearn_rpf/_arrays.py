"""Inputs as NumPy reads them, whatever the container."""

import datetime
from numbers import Number

import numpy as np
import torch
from sklearn import get_config
from sklearn.utils import check_array

# Floating types NumPy has no dtype for: read as float32, which holds every one of their values.
_WIDENED = {torch.bfloat16} | {getattr(torch, name) for name in (
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz") if hasattr(torch, name)}


def untracked(array):
    """A torch tensor as the NumPy array it holds: detached from autograd, on the CPU and, for
    bfloat16 and float8, widened to float32 (NumPy's ``__array__`` refuses all three with a torch error);
    a list or tuple of tensors element by element; anything else as it is. The caller's tensor is
    not changed. Sparse tensors and tensors on the meta device (no values) get a clear error."""
    if isinstance(array, torch.Tensor):
        if array.layout != torch.strided:
            raise ValueError(
                f"Got a torch tensor of layout {array.layout} (sparse or otherwise not strided); "
                "pass a dense one (tensor.to_dense())."
            )
        if array.device.type == "meta":
            raise ValueError("Got a torch tensor on the 'meta' device, which holds no values.")
        array = array.detach().cpu()
        # As a NumPy array (what np.asarray would read, sharing memory): left a tensor, it made
        # scikit-learn's array_api_dispatch=True validate it in torch's namespace, which fails.
        return (array.float() if array.dtype in _WIDENED else array).numpy()
    if isinstance(array, (list, tuple)) and any(isinstance(a, torch.Tensor) for a in array):
        return [untracked(a) for a in array]  # a list whatever the sequence (a namedtuple too)
    return array


# How to make numbers of each sort, in words: a date's nanoseconds since 1970 are a number, but
# rarely the one a model should see.
_HINTS = {"text": "e.g. with pandas.to_numeric",
          "dates": "e.g. as days since a reference date",
          "durations": "e.g. in seconds (pandas' Series.dt.total_seconds())"}


def _sort_of(kind, odd):
    """What a non-numeric array holds, in words: text, dates, durations or ``<type> values``."""
    if kind in "USVT" or isinstance(odd, str | bytes):  # T: NumPy 2's StringDType
        return "text"
    if kind == "M" or isinstance(odd, datetime.date | np.datetime64) or (
            type(odd).__name__ == "Period"):  # pandas' spans of time: a month, a quarter
        return "dates"
    if kind == "m" or isinstance(odd, datetime.timedelta | np.timedelta64):
        return "durations"
    return f"{type(odd).__name__} values"


def check_numeric(values, name, what=None, *, other_objects=True):
    """Text, dates and durations are not numbers: scikit-learn's checks parse numeric strings
    held in an object array or a pandas Series (with an explicit float dtype, in a list too) and
    turn dates into nanoseconds. In an object array (time-zone-aware dates, Timestamps,
    Periods, text), every cell must be a number or None (missing: the finiteness check names
    it); pandas' NA, which NumPy cannot convert, is named here. ``what`` says what the values
    are for, in the message. ``other_objects=False`` refuses only text, dates, durations and
    pandas' NA, and leaves any other object (a dict) to scikit-learn's conversion, whose
    TypeError names it (its estimator checks expect that error for X). Returns ``values`` as
    NumPy read them (``np.asarray``)."""
    array = np.asarray(values)
    kind = array.dtype.kind
    odd = None
    if kind == "O":
        odd = next((v for v in array.ravel() if v is not None
                    and not isinstance(v, Number | np.bool_)), None)
    if type(odd).__name__ == "NAType":  # pandas.NA, e.g. from a nullable column's to_numpy()
        raise ValueError(f"Input {name} contains missing values (pandas.NA); drop or fill them.")
    sort = _sort_of(kind, odd) if kind in "USVTMm" or odd is not None else None
    if sort is not None and (other_objects or not sort.endswith(" values")):
        purpose = f" ({what})" if what else ""
        raise ValueError(
            f"{name} must be numeric{purpose}; got {sort} (an array of dtype {array.dtype}). "
            f"Convert it to numbers first, {_HINTS.get(sort, _HINTS['text'])}."
        )
    return array


def check_numeric_features(X, name="X"):
    """:func:`check_numeric` for a feature matrix: text, dates and durations are refused, where
    scikit-learn's checks parse ``"1.5"`` and turn dates into nanoseconds (a silent wrong
    number); other objects are left to scikit-learn's TypeError. A pandas DataFrame is read
    column by column, only where a column is not numeric, and returned as it is (its column
    names stay for ``feature_names_in_``). A list or tuple is returned as the array NumPy read
    from it, so that it is read once; anything else is returned as it is."""
    columns = getattr(X, "columns", None)
    if columns is not None and hasattr(X, "dtypes") and hasattr(X, "iloc"):
        for j, dtype in enumerate(X.dtypes):
            if getattr(dtype, "kind", "O") not in "biufc":
                check_numeric(X.iloc[:, j].to_numpy(), f"{name}'s column {columns[j]!r}",
                              "a feature", other_objects=False)
        return X
    return _read_once(X, check_numeric(X, name, "the features", other_objects=False))


def _read_once(values, array):
    """``array`` (what NumPy read from ``values``) where ``values`` is a list or tuple, which
    scikit-learn would read again; other containers as they are, for scikit-learn's own handling
    of their dtypes (pandas')."""
    return array if isinstance(values, list | tuple) else values


def finite_even_if_assumed(array, name):
    """``array``, checked for NaN and infinity also under ``sklearn.set_config(assume_finite=
    True)``, which skips scikit-learn's own check: there a NaN in X was blamed on another cell,
    a NaN weight failed deep in the bootstrap, and a NaN target counted as not covered. The
    check costs one pass; without that setting scikit-learn's check has run already."""
    if get_config()["assume_finite"] and array is not None and not np.isfinite(array).all():
        raise ValueError(f"Input {name} contains NaN or infinity (checked although "
                         "assume_finite=True: the result would be wrong).")
    return array


def numeric_array(values, name, what=None, **check_array_params):
    """``values`` as a float64 array through scikit-learn's ``check_array`` (not forced 2-D), after
    :func:`untracked` and :func:`check_numeric`: text, dates and durations are refused whatever
    holds them, where ``check_array`` alone would parse ``"1.5"`` from an object array or a
    pandas Series."""
    values = untracked(values)
    array = check_array(_read_once(values, check_numeric(values, name, what)), ensure_2d=False,
                        dtype=np.float64, input_name=name, **check_array_params)
    if check_array_params.get("ensure_all_finite", True) is True:
        finite_even_if_assumed(array, name)
    return array
