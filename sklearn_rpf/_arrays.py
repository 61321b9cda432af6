"""Inputs as NumPy reads them, whatever the container."""

import datetime
from numbers import Number

import numpy as np
import torch
from sklearn.utils import check_array

# Floating types NumPy has no dtype for: read as float32, which holds every one of their values.
_WIDENED = {torch.bfloat16} | {getattr(torch, name) for name in (
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz") if hasattr(torch, name)}


def untracked(array):
    """A torch tensor as NumPy can read it: detached from autograd, on the CPU and, for bfloat16
    and float8, widened to float32 (NumPy's ``__array__`` refuses all three with a torch error);
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
        return array.float() if array.dtype in _WIDENED else array
    if isinstance(array, (list, tuple)) and any(isinstance(a, torch.Tensor) for a in array):
        return [untracked(a) for a in array]  # a list whatever the sequence (a namedtuple too)
    return array


def check_numeric(values, name, what=None):
    """Text, dates and durations are not numbers: scikit-learn's checks parse numeric strings
    held in an object array or a pandas Series (with an explicit float dtype, in a list too) and
    turn dates into nanoseconds. In an object array (time-zone-aware dates, Timestamps,
    Periods, text), every cell must be a number or None (missing: the finiteness check names
    it); pandas' NA, which NumPy cannot convert, is named here. ``what`` says what the values
    are for, in the message. Returns ``values`` as NumPy read them (``np.asarray``)."""
    array = np.asarray(values)
    kind = array.dtype.kind
    odd = None
    if kind == "O":
        odd = next((v for v in array.ravel() if v is not None
                    and not isinstance(v, Number | np.bool_)), None)
    if type(odd).__name__ == "NAType":  # pandas.NA, e.g. from a nullable column's to_numpy()
        raise ValueError(f"Input {name} contains missing values (pandas.NA); drop or fill them.")
    if kind in "USVMm" or odd is not None:
        if kind in "USV" or isinstance(odd, str | bytes):
            sort = "text"
        elif kind == "M" or isinstance(odd, datetime.date):
            sort = "dates"
        elif kind == "m" or isinstance(odd, datetime.timedelta):
            sort = "durations"
        else:
            sort = f"{type(odd).__name__} values"
        purpose = f" ({what})" if what else ""
        raise ValueError(
            f"{name} must be numeric{purpose}; got {sort} (an array of dtype {array.dtype}). "
            "Convert it to numbers first, e.g. with pandas.to_numeric."
        )
    return array


def numeric_array(values, name, what=None, **check_array_params):
    """``values`` as a float64 array through scikit-learn's ``check_array`` (not forced 2-D), after
    :func:`untracked` and :func:`check_numeric`: text, dates and durations are refused whatever
    holds them, where ``check_array`` alone would parse ``"1.5"`` from an object array or a
    pandas Series."""
    values = untracked(values)
    array = check_numeric(values, name, what)
    # A list is read once (check_numeric's array is what check_array would build from it);
    # other containers go as they are, for check_array's own handling of pandas' dtypes.
    return check_array(array if isinstance(values, list | tuple) else values, ensure_2d=False,
                       dtype=np.float64, input_name=name, **check_array_params)
