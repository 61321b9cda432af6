"""NumPy 2's variable-width text dtype for the tests that check it is read as text: None before
NumPy 2, whose text is "<U" or object arrays, and ``needs_string_dtype`` skips a test there."""

import numpy as np
import pytest

STRING_DTYPE = getattr(getattr(np, "dtypes", None), "StringDType", None)
needs_string_dtype = pytest.mark.skipif(STRING_DTYPE is None, reason="NumPy 2's StringDType")
