"""Where a warning should point: the user's line, past this package's and scikit-learn's frames."""

import os
import sys

import sklearn

_INTERNAL = tuple(os.path.dirname(os.path.abspath(module.__file__)) + os.sep
                  for module in (sys.modules[__package__], sklearn))


def caller_stacklevel():
    """``stacklevel`` for a ``warnings.warn`` in the calling function that names the first frame
    outside this package and scikit-learn: a fixed number breaks when a call arrives through
    one more wrapper (scikit-learn's ``set_output`` wraps ``transform``, ``_fit_context`` wraps
    ``fit``), and a warning attributed to scikit-learn escapes the user's filters."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    # Every frame internal (a joblib or Dask worker running our code): past the stack's end,
    # where Python names the warning's place "sys:1".
    return level
