"""First significant digits, exactly: of a number as it is written, not of its binary rounding.

A binary float is the nearest representable value to the decimal its user wrote: 0.3 is stored as
0.29999999999999998889..., whose first digit is 2. What the user means is the shortest decimal that
reads back as the same float (``repr``), "0.3". Each float is read in its own precision (a float32
0.7 is "0.7", not the float64 0.69999998807907...).

The shortest decimal of a float v starts with another digit than v's exact binary value only when a
"boundary" B = m * 10**k (m = 1..10, one significant digit) reads back as v: then B itself is the
shortest decimal. So the first digit follows from a table of the boundaries rounded to the
precision: v lies between two of them, or is one of them. A lookup in that sorted table
(``np.searchsorted``) does a million floats in milliseconds, with no string formatting.

Integers (any size), ``Decimal``, ``Fraction`` and numeric strings are exact already and use
integer arithmetic (no ``str(int)``, which Python limits to 4300 digits).
"""

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cache
from numbers import Integral, Number, Rational, Real

import numpy as np

_TABLE_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_LOG10_2 = math.log10(2)


# ------------------------------------------------------------------------------ exact rationals
def ratio_first_digit(numerator, denominator=1):
    """First significant digit of numerator / denominator, two positive Python integers."""
    e = math.floor((numerator.bit_length() - denominator.bit_length()) * _LOG10_2)
    while True:  # the estimate of floor(log10) above is off by at most one
        top, bottom = (numerator, denominator * 10**e) if e >= 0 else (
            numerator * 10**-e, denominator)
        if top < bottom:
            e -= 1
        elif top >= 10 * bottom:
            e += 1
        else:
            return top // bottom


def _exact_first_digit(value):
    """First digit of a finite non-zero Fraction or Decimal; None for zero, NaN and infinities."""
    if isinstance(value, Decimal):
        if not value.is_finite() or value == 0:
            return None
        return value.as_tuple().digits[0]  # the coefficient carries no leading zeros
    if value == 0:
        return None
    value = abs(Fraction(value))
    return ratio_first_digit(value.numerator, value.denominator)


# ------------------------------------------------------------------------------------ floats
def _closer(ratio_a, ratio_b, target):
    """Whether the rational ``ratio_a`` is strictly closer to ``target`` than ``ratio_b``; all
    three are (numerator, denominator) pairs of Python ints (no gcd: fast on huge numbers)."""
    (pa, qa), (pb, qb), (n, d) = ratio_a, ratio_b, target
    return abs(pa * d - n * qa) * qb < abs(pb * d - n * qb) * qa


def _nearest_float(target, dtype):
    """The positive float of ``dtype`` nearest to the rational ``target`` = (numerator,
    denominator), ties to even; None when it rounds to zero or lies above the largest float."""
    n, d = target
    top = np.finfo(dtype).max.item().as_integer_ratio()
    if n * top[1] > top[0] * d:
        return None  # nothing between the largest float and infinity to look up
    # Rounding to float64 first (exact int division) and then to dtype can be one unit off.
    candidate = dtype.type(n / d)
    best = None
    for option in (np.nextafter(candidate, dtype.type(0)), candidate,
                   np.nextafter(candidate, dtype.type(np.inf))):
        if not np.isfinite(option):
            continue
        ratio = option.item().as_integer_ratio()
        if best is None or _closer(ratio, best[1], target) or (
            not _closer(best[1], ratio, target) and int(option.view(f"u{dtype.itemsize}")) % 2 == 0
        ):
            best = (option, ratio)
    return None if best[0] == 0 else best[0]


@cache
def _boundary_table(dtype):
    """Sorted distinct floats of ``dtype`` that one-digit decimals m * 10**k round to, with the
    first digit to give a float equal to one (``at``) and one just above it (``above``)."""
    info = np.finfo(dtype)
    low = math.floor(math.log10(info.smallest_subnormal.item())) - 1
    high = math.floor(math.log10(info.max.item()))
    groups = {}  # float -> the boundaries (numerator, denominator, digit) that round to it
    for k in range(low, high + 1):
        for m in range(1, 10):
            exact = (m * 10**k, 1) if k >= 0 else (m, 10**-k)
            if dtype == np.float64:  # CPython reads decimal strings correctly rounded, and fast
                rounded = np.float64(f"{m}e{k}")
                rounded = rounded if 0 < rounded < np.inf else None
            else:
                rounded = _nearest_float(exact, dtype)
            if rounded is not None:
                groups.setdefault(rounded, []).append((*exact, m))
    floats = np.array(sorted(groups), dtype=dtype)
    at, above = [], []
    for f in floats:
        members = groups[dtype.type(f)]  # in increasing order
        # Shortest round trip: of several one-digit decimals reading back as f (only among the
        # smallest subnormals), repr writes the closest one.
        closest = members[0]
        for member in members[1:]:
            if _closer(member[:2], closest[:2], f.item().as_integer_ratio()):
                closest = member
        at.append(closest[2])
        # A float above f exceeds every decimal that rounds to f (f is the nearest float to each),
        # so it starts with the digit of the largest of them.
        above.append(members[-1][2])
    return floats, np.array(at, dtype=np.int64), np.array(above, dtype=np.int64)


def float_first_digits(values):
    """First digit of the shortest round-trip decimal of every finite non-zero float, per precision."""
    values = np.abs(values[np.isfinite(values) & (values != 0)])
    if values.size == 0:
        return np.empty(0, dtype=np.int64)
    if values.dtype not in _TABLE_DTYPES:  # longdouble: rare, formatted one by one
        return np.array(
            [int(np.format_float_scientific(v, unique=True)[0]) for v in values], dtype=np.int64
        )
    floats, at, above = _boundary_table(values.dtype)
    index = np.searchsorted(floats, values, side="right") - 1
    return np.where(floats[index] == values, at[index], above[index])


# ---------------------------------------------------------------------------------- integers
_POWERS = [(m * 10**k, m) for k in range(20) for m in range(1, 10) if m * 10**k < 2**64]
_UINT64_BOUNDARIES = np.array([b for b, _ in _POWERS], dtype=np.uint64)
_UINT64_DIGITS = np.array([m for _, m in _POWERS], dtype=np.int64)


def integer_first_digits(values):
    """First digit of every non-zero entry of an integer array, exactly (int64's minimum too)."""
    magnitude = values.astype(np.uint64)
    if values.dtype.kind == "i":  # two's complement negation is exact in uint64
        negative = values < 0
        magnitude[negative] = ~magnitude[negative] + np.uint64(1)
    magnitude = magnitude[magnitude != 0]
    index = np.searchsorted(_UINT64_BOUNDARIES, magnitude, side="right") - 1
    return _UINT64_DIGITS[index]


# ------------------------------------------------------------------------ mixed Python objects
def _parse_text(text):
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"numbers must be numeric; {text!r:.40} is not a number.") from None


def _ascii_text(data):
    """Bytes as the ASCII text a number is written in."""
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"numbers must be numeric; {data!r:.40} is not a number.") from None


BOOLEANS = ("numbers must be numeric; got booleans (True/False), which are not numbers with a "
             "first significant digit (True would count as a 1).")


def object_first_digits(values):
    """First digits of an object array: Python ints of any size, floats (each in its own
    precision), Decimal, Fraction, numeric strings; None and pandas' NA count as missing, like
    NaN."""
    digits = []
    floats = {}  # dtype -> values, looked up together
    for value in values:
        if value is None or type(value).__name__ == "NAType":  # pandas.NA, without pandas
            continue
        if isinstance(value, (str, bytes)):
            value = _parse_text(_ascii_text(value) if isinstance(value, bytes) else value)
        if isinstance(value, (complex, np.complexfloating)):
            raise ValueError(
                f"numbers contains the complex number {value!r}; a first significant digit is "
                "defined for real numbers only (pass the real part or the modulus)."
            )
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(BOOLEANS)
        if isinstance(value, Integral):
            number = abs(int(value))
            if number:
                digits.append(ratio_first_digit(number))
        elif isinstance(value, np.floating):
            floats.setdefault(value.dtype, []).append(value)
        elif isinstance(value, float):
            floats.setdefault(np.dtype(np.float64), []).append(value)
        elif isinstance(value, (Decimal, Rational)):
            digit = _exact_first_digit(value)
            if digit is not None:
                digits.append(digit)
        elif isinstance(value, Real):
            floats.setdefault(np.dtype(np.float64), []).append(float(value))
        else:
            kind = "a number type without an order" if isinstance(value, Number) else "not a number"
            raise ValueError(
                f"numbers must be numeric; got {value!r:.40} of type {type(value).__name__} "
                f"({kind})."
            )
    parts = [np.asarray(digits, dtype=np.int64)]
    parts += [float_first_digits(np.asarray(group, dtype=dtype)) for dtype, group in floats.items()]
    return np.concatenate(parts)


def first_digits(array):
    """First significant digits (1..9) of the entries of a 1-D array that have one."""
    kind = array.dtype.kind
    if kind == "f":
        return float_first_digits(array)
    if kind in "iu":
        return integer_first_digits(array)
    if kind == "b":
        raise ValueError(BOOLEANS)
    if kind in "OUST":  # T: NumPy 2's StringDType, text as "<U" is
        return object_first_digits(array.tolist() if kind in "UST" else array)
    if kind == "c":
        raise ValueError(
            "numbers is complex; a first significant digit is defined for real numbers only "
            "(pass the real part or the modulus)."
        )
    raise ValueError(f"numbers must be numeric; got an array of dtype {array.dtype}.")
