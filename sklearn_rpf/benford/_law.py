"""Benford's law for first digits, and conformity measures against it.

The functions work on their own (no language model needed): take the first-digit distribution of any
collection of numbers with :func:`first_digit_distribution`, then compare it with Benford's law with
:func:`mean_absolute_deviation` and :func:`nigrini_conformity`, :func:`kl_divergence`, or, for counts,
:func:`benford_chisquare`.
"""

import warnings
from collections import namedtuple
from numbers import Number, Real

import numpy as np
from scipy import stats
from scipy.special import rel_entr
from sklearn.utils._param_validation import validate_params

from .._arrays import check_numeric, untracked
from .._stack import caller_stacklevel
from ._first_digits import BOOLEANS, first_digits

__all__ = [
    "DIGITS",
    "NIGRINI_FIRST_DIGIT_THRESHOLDS",
    "benford_distribution",
    "benford_chisquare",
    "first_digit_distribution",
    "kl_divergence",
    "mean_absolute_deviation",
    "nigrini_conformity",
]

DIGITS = np.arange(1, 10)
DIGITS.flags.writeable = False  # shared by every helper: ``DIGITS -= 1`` must not change them

# Upper bounds of the mean absolute deviation for first digits (Nigrini, "Benford's Law", 2012, table 7.1).
NIGRINI_FIRST_DIGIT_THRESHOLDS = (
    (0.006, "close conformity"),
    (0.012, "acceptable conformity"),
    (0.015, "marginally acceptable conformity"),
)
NONCONFORMITY = "nonconformity"

BenfordChisquareResult = namedtuple("BenfordChisquareResult", ["statistic", "pvalue", "dof"])


def benford_distribution():
    """Benford's first-digit distribution, P(d) = log10(1 + 1/d) for d = 1..9.

    Returns
    -------
    p : ndarray of shape (9,)
        Probabilities of the first significant digits 1 to 9; they sum to one.

    Examples
    --------
    >>> from sklearn_rpf.benford import benford_distribution
    >>> benford_distribution().round(3)
    array([0.301, 0.176, 0.125, 0.097, 0.079, 0.067, 0.058, 0.051, 0.046])
    """
    return np.log10(1.0 + 1.0 / DIGITS)


def _as_real_array(values, name, by_digit=False):
    """float64 array of ``values``; complex input is an error, not a dropped imaginary part,
    text and dates are errors, not parsed, and so are numbers beyond float64. ``by_digit``:
    one value per digit, put in digit order where pandas labels say which is which."""
    values = _unmasked(untracked(values), name)
    if by_digit:
        values = _in_digit_order(values)
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:  # ragged nesting, say
        raise ValueError(f"{name} must be numeric, got {values!r:.80}.") from exc
    check_numeric(array, name)
    if _has_booleans(values, array):
        raise ValueError(f"{name} must be numbers; got booleans (True/False), which are not "
                         "weights or counts.")
    try:
        is_complex = array.dtype.kind == "c" or array.dtype.kind == "O" and any(
            isinstance(v, (complex, np.complexfloating)) for v in array.flat
        )
        if not is_complex:
            return array.astype(np.float64)
    except OverflowError as exc:  # Python ints past 1.8e308
        raise ValueError(f"{name} holds numbers too large for float64 (above 1.8e308); "
                         "divide them by a common factor first.") from exc
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {values!r:.80}.") from exc
    raise ValueError(f"{name} must be real numbers; got complex values {values!r:.80}.")


def _has_booleans(values, array):
    """Whether ``values`` (read by NumPy as ``array``) hold True/False: a boolean array, or
    booleans in a list beside numbers, which NumPy turns into 1 and 0."""
    if array.dtype.kind == "b":
        return True
    if array.dtype.kind == "O":
        return any(isinstance(v, bool | np.bool_) for v in array.flat)
    if isinstance(values, list | tuple):  # NumPy read them as numbers: look at the cells
        if any(isinstance(v, list | tuple) for v in values):
            values = np.asarray(values, dtype=object).ravel()
        return any(type(v) is bool or isinstance(v, np.bool_) for v in values)
    return False


def _unmasked(values, name, drop=False):
    """A masked array's data without its masked entries where they can be dropped (``drop``: a
    collection of numbers), else a clear error: ``np.asarray`` silently keeps masked values."""
    if not isinstance(values, np.ma.MaskedArray):
        return values
    if drop:
        return values.compressed()
    if np.ma.getmaskarray(values).any():
        raise ValueError(f"{name} is a masked array with masked entries; fill them "
                         "(values.filled(...)) or drop them first.")
    return values.data


def _in_digit_order(values):
    """A pandas Series (or DataFrame) labelled by the nine digits (``1``..``9``, ``1.0``,
    ``"1"``, or the probe's ``digit_1``..``digit_9``) in any order, as ``value_counts()`` gives
    them, reordered to 1..9. Other labels are read by position, as NumPy reads them."""
    labels = getattr(values, "columns" if getattr(values, "ndim", 1) == 2 else "index", None)
    if labels is None or not hasattr(values, "reindex") or len(labels) != 9:
        return values
    labels = list(labels)
    digits = [_digit_of(label) for label in labels]
    if sorted(map(str, digits)) != [str(d) for d in DIGITS]:
        return values
    order = [labels[digits.index(d)] for d in DIGITS]
    return values[order] if values.ndim == 2 else values.reindex(order)


def _digit_of(label):
    """The digit a label names, or None."""
    if isinstance(label, str):
        label = label[len("digit_"):] if label.startswith("digit_") else label
        return int(label) if label in {str(d) for d in DIGITS} else None
    if isinstance(label, Real) and not isinstance(label, bool) and float(label) in DIGITS:
        return int(label)
    return None


def _as_digit_distributions(p, name):
    """Validate rows of 9 non-negative weights and normalise each row to sum to one."""
    p = _as_real_array(p, name, by_digit=True)
    if p.ndim not in (1, 2) or p.shape[-1] != 9:
        raise ValueError(
            f"{name} must have shape (9,) or (n_samples, 9), one weight per digit 1..9; "
            f"got shape {p.shape}."
        )
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains NaN or infinity.")
    if np.any(p < 0):
        raise ValueError(f"{name} must be non-negative.")
    largest = p.max(axis=-1, keepdims=True)
    if np.any(largest == 0):
        raise ValueError(f"{name} has a row whose weights sum to zero; cannot normalise it.")
    # Dividing by the row's largest weight first: summing nine weights near 1e308 would overflow.
    p = p / largest
    return p / p.sum(axis=-1, keepdims=True)


def _expected_distribution(expected):
    """The reference distribution: Benford's by default, else one checked vector of 9."""
    if expected is None:
        return benford_distribution()
    q = _as_digit_distributions(expected, "expected")
    if q.ndim != 1:
        raise ValueError(f"expected must have shape (9,), got {q.shape}.")
    return q


@validate_params(
    {"p": ["array-like"], "expected": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def mean_absolute_deviation(p, expected=None):
    """Mean absolute deviation between a first-digit distribution and Benford's law.

    MAD = (1/9) * sum_d |p_d - expected_d|, Nigrini's conformity measure; it does not grow with the
    number of observations, unlike the chi-square statistic.

    Parameters
    ----------
    p : array-like of shape (9,) or (n_samples, 9)
        Weights of the digits 1 to 9 (probabilities or counts); each row is normalised to sum to one.
    expected : array-like of shape (9,), default=None
        Reference distribution; Benford's law when None. ``np.full(9, 1 / 9)`` gives the distance to
        the uniform distribution.

    Returns
    -------
    mad : float or ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_rpf.benford import mean_absolute_deviation
    >>> round(mean_absolute_deviation(np.full(9, 1 / 9)), 4)
    0.0597
    """
    p = _as_digit_distributions(p, "p")
    q = _expected_distribution(expected)
    mad = np.abs(p - q).mean(axis=-1)
    return float(mad) if mad.ndim == 0 else mad


@validate_params(
    {"mad": ["array-like", Real]},
    prefer_skip_nested_validation=True,
)
def nigrini_conformity(mad):
    """Nigrini's verdict for a first-digit mean absolute deviation.

    Thresholds: close conformity up to 0.006, acceptable up to 0.012, marginally acceptable up to
    0.015, nonconformity above.

    Parameters
    ----------
    mad : float or array-like of floats
        Mean absolute deviations, as returned by :func:`mean_absolute_deviation`.

    Returns
    -------
    verdict : str or ndarray of str

    Examples
    --------
    >>> from sklearn_rpf.benford import nigrini_conformity
    >>> nigrini_conformity(0.01)
    'acceptable conformity'
    """
    if isinstance(mad, bool | np.bool_) or getattr(getattr(mad, "dtype", None), "kind", "") == "b":
        raise ValueError(f"mad must be a number, a mean absolute deviation; got {mad!r:.80}.")
    mad_array = _as_real_array(mad, "mad")
    if np.any(~np.isfinite(mad_array)) or np.any(mad_array < 0):
        raise ValueError(f"mad must be finite and non-negative, got {mad!r:.80}.")
    verdicts = np.full(mad_array.shape, NONCONFORMITY, dtype=object)
    # From the loosest bound to the tightest so that the tightest matching label wins.
    for bound, label in reversed(NIGRINI_FIRST_DIGIT_THRESHOLDS):
        verdicts[mad_array <= bound] = label
    return str(verdicts[()]) if verdicts.ndim == 0 else verdicts


@validate_params(
    {"p": ["array-like"], "expected": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def kl_divergence(p, expected=None):
    """Kullback-Leibler divergence KL(p || expected) in nats, Benford's law by default.

    Parameters
    ----------
    p : array-like of shape (9,) or (n_samples, 9)
        Weights of the digits 1 to 9; each row is normalised to sum to one. Zero weights are fine.
    expected : array-like of shape (9,), default=None
        Reference distribution, Benford's law when None; it must be positive wherever p is.

    Returns
    -------
    kl : float or ndarray of shape (n_samples,)

    Examples
    --------
    >>> from sklearn_rpf.benford import benford_distribution, kl_divergence
    >>> round(kl_divergence(benford_distribution()), 12)
    0.0
    """
    p = _as_digit_distributions(p, "p")
    q = _expected_distribution(expected)
    kl = rel_entr(p, q).sum(axis=-1)
    return float(kl) if kl.ndim == 0 else kl


@validate_params(
    {"counts": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def benford_chisquare(counts):
    """Pearson's chi-square test of first-digit counts against Benford's law.

    Parameters
    ----------
    counts : array-like of shape (9,)
        Number of observations whose first digit is 1, ..., 9, for instance from
        ``first_digit_distribution(numbers, normalize=False)``.

    Returns
    -------
    result : namedtuple (statistic, pvalue, dof)
        The chi-square statistic, its p-value under Benford's law, and the degrees of freedom (8).

    Examples
    --------
    >>> from sklearn_rpf.benford import benford_chisquare
    >>> result = benford_chisquare([60, 36, 24, 20, 16, 14, 12, 10, 8])
    >>> bool(result.pvalue > 0.05)
    True
    """
    counts = _as_real_array(counts, "counts", by_digit=True)
    if counts.shape != (9,):
        raise ValueError(
            f"counts must have shape (9,), one count per digit 1..9; got {counts.shape}."
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise ValueError("counts must be non-negative whole numbers.")
    scale = counts.max()  # huge counts: no overflowing sum of squares
    if scale == 0:
        raise ValueError("counts are all zero; the chi-square test needs observations.")
    share = counts / scale
    n, p = share.sum(), benford_distribution()
    expected = scale * n * p
    if np.any(expected < 5):  # Cochran's rule, as R's chisq.test warns
        warnings.warn(
            f"benford_chisquare: {scale * n:.0f} observations give expected counts below 5 for "
            f"digit(s) {DIGITS[expected < 5].tolist()} (at least 110 observations are needed "
            "for all nine); the chi-square p-value may be inaccurate.", UserWarning, stacklevel=caller_stacklevel())
    # sum((O - E)^2 / E) = scale * n * sum((o - p)^2 / p), with o the observed shares
    statistic = scale * n * np.sum((share / n - p) ** 2 / p)
    return BenfordChisquareResult(float(statistic), float(stats.chi2.sf(statistic, 8)), 8)


@validate_params(
    {"numbers": ["array-like", Number], "normalize": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def first_digit_distribution(numbers, *, normalize=True):
    """Distribution of the first significant digit of a collection of numbers.

    Zeros, NaN, infinities, None, pandas.NA and the masked entries of a masked array have no
    first significant digit and are left out;
    the sign is ignored. Each number counts with the digit it is written with: a float is read as
    the shortest decimal that gives it back (``repr``), in its own precision (0.3 counts as 3
    although its binary value is 0.2999...; a float32 0.7 as 7), so the result does not depend on
    binary rounding. Integers of any size, ``Decimal``, ``Fraction`` and numeric strings are exact.

    Parameters
    ----------
    numbers : array-like of numbers, any shape
        Real numbers: floats (float16, float32, float64), integers (any size as Python ints),
        ``Decimal``, ``Fraction``, numeric strings, or a mix of these in an object array.
        Complex numbers and booleans are errors.
    normalize : bool, default=True
        Return frequencies that sum to one; False returns the counts.

    Returns
    -------
    distribution : ndarray of shape (9,)
        Frequencies (or counts) of the first digits 1 to 9.

    Examples
    --------
    >>> from sklearn_rpf.benford import first_digit_distribution
    >>> first_digit_distribution([12, 0.3, -150, 9e9, 0], normalize=False)
    array([2, 0, 1, 0, 0, 0, 0, 0, 1])
    """
    try:
        numbers = _unmasked(untracked(numbers), "numbers", drop=True)
        array = np.asarray(numbers)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"numbers must be an array-like of numbers: {exc}") from exc
    # first_digits refuses booleans in boolean and object arrays itself; what it cannot see is
    # a list of booleans and numbers, which NumPy read as numbers.
    if array.dtype.kind not in "bO" and _has_booleans(numbers, array):
        raise ValueError(BOOLEANS)
    digits = first_digits(array.ravel())
    if digits.size == 0:
        raise ValueError("numbers has no finite non-zero value, so no first digit to count.")
    counts = np.bincount(digits, minlength=10)[1:]
    return counts / counts.sum() if normalize else counts
