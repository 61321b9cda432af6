"""Tests of the Benford statistics in sklearn_rpf.benford."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy_text import STRING_DTYPE, needs_string_dtype
from scipy import stats

from sklearn_rpf.benford import (
    DIGITS,
    benford_chisquare,
    benford_distribution,
    first_digit_distribution,
    kl_divergence,
    mean_absolute_deviation,
    nigrini_conformity,
)

UNIFORM = np.full(9, 1 / 9)


def test_benford_distribution():
    p = benford_distribution()
    assert p.shape == (9,)
    np.testing.assert_allclose(p.sum(), 1.0)
    np.testing.assert_allclose(p[0], np.log10(2))
    np.testing.assert_allclose(p[8], np.log10(10 / 9))
    assert np.all(np.diff(p) < 0)


def test_first_digits_of_exact_values():
    numbers = [1, 19, 0.3, 299999.99, -450, 1e-5, 9.99e300, 7, 0, np.nan, np.inf, -np.inf]
    counts = first_digit_distribution(numbers, normalize=False)
    np.testing.assert_array_equal(counts, [3, 1, 1, 1, 0, 0, 1, 0, 1])
    # 0.3 is stored as 0.2999...; dividing by a power of ten would give the digit 2.
    assert first_digit_distribution([0.3, 0.6, 0.7], normalize=False)[[2, 5, 6]].tolist() == [
        1,
        1,
        1,
    ]


def test_first_digits_of_integer_arrays():
    big = np.array([2**63 - 1, -(2**63) + 1, 5, 10**18], dtype=np.int64)
    np.testing.assert_array_equal(
        first_digit_distribution(big, normalize=False), [1, 0, 0, 0, 1, 0, 0, 0, 2]
    )
    unsigned = np.array([3, 30, 300], dtype=np.uint16)
    assert first_digit_distribution(unsigned, normalize=False)[2] == 3


def test_first_digits_of_powers_of_two_follow_benford():
    powers = [2**k for k in range(1, 3001)]  # exact Python integers, a classic Benford sequence
    p = first_digit_distribution(powers)
    np.testing.assert_allclose(p.sum(), 1.0)
    assert mean_absolute_deviation(p) < 0.006
    assert nigrini_conformity(mean_absolute_deviation(p)) == "close conformity"


def test_first_digits_of_uniform_numbers_do_not():
    numbers = np.random.default_rng(0).uniform(1, 10, size=5000)
    mad = mean_absolute_deviation(first_digit_distribution(numbers))
    assert nigrini_conformity(mad) == "nonconformity"


def test_first_digit_distribution_takes_any_array_like():
    expected = first_digit_distribution([[12, 3], [45, 6]])
    np.testing.assert_array_equal(first_digit_distribution(pd.Series([12, 3, 45, 6])), expected)
    np.testing.assert_array_equal(first_digit_distribution(["12", "3", "45", "6"]), expected)
    # Missing values are left out, whichever container marks them.
    with_missing = [pd.Series([12, None, 3, 45, 6], dtype="Int64"),
                    np.array([12, pd.NA, 3, None, 45, 6], dtype=object),
                    pd.array(["12", None, "3", "45", "6"], dtype="string")]
    for numbers in with_missing:
        np.testing.assert_array_equal(first_digit_distribution(numbers), expected)


@pytest.mark.parametrize("numbers", [[], [0, 0.0, np.nan], ["a", "b"]])
def test_first_digit_distribution_bad_input(numbers):
    with pytest.raises(ValueError, match="numbers"):
        first_digit_distribution(numbers)


def test_mean_absolute_deviation():
    assert mean_absolute_deviation(benford_distribution()) == pytest.approx(0.0, abs=1e-15)
    expected = np.abs(UNIFORM - benford_distribution()).mean()
    assert mean_absolute_deviation(UNIFORM) == pytest.approx(expected)
    assert mean_absolute_deviation(UNIFORM * 7) == pytest.approx(expected)  # counts normalised
    rows = mean_absolute_deviation(np.vstack([UNIFORM, benford_distribution()]))
    np.testing.assert_allclose(rows, [expected, 0.0], atol=1e-15)
    assert mean_absolute_deviation(UNIFORM, expected=UNIFORM) == 0.0


@pytest.mark.parametrize(
    "p, match",
    [
        (np.ones(8), "shape"),
        (np.ones((2, 3, 9)), "shape"),
        (-UNIFORM, "non-negative"),
        (np.r_[np.nan, np.ones(8)], "NaN"),
        (np.zeros(9), "sum to zero"),
        (["a"] * 9, "numeric"),
    ],
)
def test_mean_absolute_deviation_bad_input(p, match):
    with pytest.raises(ValueError, match=match):
        mean_absolute_deviation(p)


@pytest.mark.parametrize(
    "mad, verdict",
    [
        (0.0, "close conformity"),
        (0.006, "close conformity"),
        (0.0061, "acceptable conformity"),
        (0.012, "acceptable conformity"),
        (0.0121, "marginally acceptable conformity"),
        (0.015, "marginally acceptable conformity"),
        (0.0151, "nonconformity"),
    ],
)
def test_nigrini_thresholds(mad, verdict):
    assert nigrini_conformity(mad) == verdict


def test_nigrini_conformity_vectorised_and_bad_input():
    verdicts = nigrini_conformity([0.001, 0.02])
    assert verdicts.tolist() == ["close conformity", "nonconformity"]
    with pytest.raises(ValueError, match="non-negative"):
        nigrini_conformity(-0.1)


def test_kl_divergence():
    assert kl_divergence(benford_distribution()) == pytest.approx(0.0, abs=1e-15)
    b = benford_distribution()
    np.testing.assert_allclose(kl_divergence(UNIFORM), np.sum(UNIFORM * np.log(UNIFORM / b)))
    one_hot = np.eye(9)[0]  # zero weights contribute nothing
    assert kl_divergence(one_hot) == pytest.approx(-np.log(b[0]))
    assert kl_divergence(np.vstack([UNIFORM, one_hot])).shape == (2,)


def test_chisquare_against_scipy():
    counts = np.array([40, 20, 10, 10, 5, 5, 4, 3, 3]) * 2  # every expected count above 5
    result = benford_chisquare(counts)
    reference = stats.chisquare(counts, counts.sum() * benford_distribution())
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.pvalue == pytest.approx(reference.pvalue)
    assert result.dof == 8
    uniform_counts = np.full(9, 200)
    assert benford_chisquare(uniform_counts).pvalue < 1e-10


@pytest.mark.parametrize("counts", [np.ones(8), -np.ones(9), np.full(9, 0.5), np.zeros(9)])
def test_chisquare_bad_input(counts):
    with pytest.raises(ValueError, match="counts"):
        benford_chisquare(counts)


# ------------------------------------------------------------- exact first digits, any precision
def test_first_digits_follow_the_shortest_decimal():
    assert first_digit_distribution([0.0006, 0.009, 1e23], normalize=False).tolist() == [
        1, 0, 0, 0, 0, 1, 0, 0, 1
    ]
    powers = [float(f"1e{k}") for k in range(-323, 309)]  # every power of ten a float64 holds
    assert first_digit_distribution(powers, normalize=False)[0] == len(powers)
    assert first_digit_distribution(np.array(powers) * -1, normalize=False)[0] == len(powers)
    for m in range(1, 10):  # m * 10**k, all exponents: each float64 reads back as m...
        values = [float(f"{m}e{k}") for k in range(-320, 308)]
        assert first_digit_distribution(values, normalize=False)[m - 1] == len(values)
        # ... and its two neighbours start with m (just above) or the digit below (just under)
        above = np.nextafter(np.array(values), np.inf)
        below = np.nextafter(np.array(values), 0)
        assert first_digit_distribution(above, normalize=False)[m - 1] == len(values)
        assert first_digit_distribution(below, normalize=False)[m - 2 if m > 1 else 8] == len(
            values
        )


def test_float32_and_float16_are_read_in_their_own_precision():
    one_decimal = np.float32([k / 10 for k in range(1, 11)])  # 0.1, ..., 1.0
    np.testing.assert_array_equal(
        first_digit_distribution(one_decimal, normalize=False), [2, 1, 1, 1, 1, 1, 1, 1, 1]
    )
    # float16: every positive finite value against NumPy's shortest repr in float16.
    values = np.arange(1, 0x7C00, dtype=np.uint16).view(np.float16)
    expected = [int(np.format_float_scientific(v, unique=True)[0]) for v in values]
    np.testing.assert_array_equal(
        first_digit_distribution(values, normalize=False), np.bincount(expected, minlength=10)[1:]
    )
    # float32: random bit patterns, one-digit decimals and their neighbours.
    rng = np.random.default_rng(0)
    bits = rng.integers(1, 0x7F800000, 20000, dtype=np.uint32).view(np.float32)
    decimals = [float(f"{m}e{k}") for m in range(1, 10) for k in range(-45, 39)]
    decimals = np.float32([d for d in decimals if d < float(np.finfo(np.float32).max)])
    decimals = decimals[decimals > 0]
    values = np.concatenate([bits, decimals, np.nextafter(decimals, np.float32(0)),
                             np.nextafter(decimals, np.float32(np.inf))])
    expected = [int(np.format_float_scientific(v, unique=True)[0]) for v in values]
    np.testing.assert_array_equal(
        first_digit_distribution(values, normalize=False), np.bincount(expected, minlength=10)[1:]
    )


@pytest.mark.parametrize(
    "value, digit",
    [
        (5e-324, 5),  # the smallest float64 subnormal reads back as 5e-324
        (2.5e-323, 2),
        (np.float32(1e-45), 1),
        (np.float32(7e-42), 7),
        (np.float16(6e-8), 6),
        (np.float16(-3e-6), 3),
    ],
)
def test_subnormals(value, digit):
    counts = first_digit_distribution(np.array([value]), normalize=False)
    assert counts[digit - 1] == 1 and counts.sum() == 1


def test_exact_numbers_of_any_size_and_type():
    from decimal import Decimal
    from fractions import Fraction

    numbers = [10**400, -(3 * 10**100), 7 * 10**5000, 2**64 + 1, Decimal("0.00300"),
               Decimal("-8E-500"), Fraction(2, 3), Fraction(-1, 7), "1e400", "-4.5", 0, "0",
               Decimal("NaN"), None]
    counts = first_digit_distribution(np.array(numbers, dtype=object), normalize=False)
    # 1, 3, 7, 1, 3, 8, 6 (0.666...), 1 (0.142...), 1, 4
    np.testing.assert_array_equal(counts, [4, 0, 2, 1, 0, 1, 1, 1, 0])
    mixed = first_digit_distribution([1.5, 10**400], normalize=False)
    assert mixed[0] == 2
    int64 = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, -9, 0], dtype=np.int64)
    np.testing.assert_array_equal(
        first_digit_distribution(int64, normalize=False), [0, 0, 0, 0, 0, 0, 0, 0, 3]
    )
    assert first_digit_distribution(np.array([2**64 - 1], dtype=np.uint64), normalize=False)[0]
    mixed_precisions = np.array([np.float32(0.7), np.float16(0.9), 0.3], dtype=object)
    np.testing.assert_array_equal(
        first_digit_distribution(mixed_precisions, normalize=False), [0, 0, 1, 0, 0, 0, 1, 0, 1]
    )


@pytest.mark.parametrize(
    "numbers",
    [[1 + 2j], np.array([1.0, 2.0], dtype=complex), np.array([1, 2j], dtype=object)],
)
def test_complex_numbers_are_an_error(numbers):
    with pytest.raises(ValueError, match="complex"):
        first_digit_distribution(numbers)


def test_statistics_reject_complex_input():
    with pytest.raises(ValueError, match="complex"):
        mean_absolute_deviation(UNIFORM + 1j)
    with pytest.raises(ValueError, match="complex"):
        kl_divergence(UNIFORM.astype(complex))
    with pytest.raises(ValueError, match="complex"):
        benford_chisquare(np.ones(9, dtype=complex))


def test_huge_weights_do_not_overflow():
    expected_mad = mean_absolute_deviation(UNIFORM)
    assert mean_absolute_deviation(np.full(9, 1e308)) == pytest.approx(expected_mad)
    assert kl_divergence(np.full(9, 1e308)) == pytest.approx(kl_divergence(UNIFORM))
    # The chi-square statistic grows with the counts: 1e305 times that of 9 x 1e2 (it was inf).
    assert benford_chisquare(np.full(9, 1e307)).statistic == pytest.approx(
        1e305 * benford_chisquare(np.full(9, 100)).statistic, rel=1e-12)
    rows = mean_absolute_deviation(np.vstack([np.full(9, 1e308), np.full(9, 5e-324)]))
    np.testing.assert_allclose(rows, expected_mad)


def test_parameters_are_validated_in_scikit_learns_words():
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'normalize' parameter"):
        first_digit_distribution([1, 2], normalize="yes")
    with pytest.raises(InvalidParameterError, match="'p' parameter"):
        mean_absolute_deviation("abc")
    with pytest.raises(InvalidParameterError, match="'counts' parameter"):
        benford_chisquare(None)
    assert first_digit_distribution(25, normalize=False)[1] == 1  # one number is still fine


def test_chisquare_says_when_its_approximation_is_unsafe():
    with pytest.warns(UserWarning, match=r"2 observations give expected counts below 5 for "
                                         r"digit\(s\) \[1, 2, 3, 4, 5, 6, 7, 8, 9\]"):
        benford_chisquare([0, 0, 0, 0, 0, 0, 0, 0, 2])  # p = 1.5e-6 from two observations
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        benford_chisquare(np.round(200 * benford_distribution()))
    with pytest.raises(ValueError, match="counts holds numbers too large for float64"):
        benford_chisquare([10**400] * 9)  # was OverflowError


def test_a_series_labelled_by_digit_is_read_by_its_labels():
    import pandas as pd

    first = pd.Series([1, 1, 1, 2, 2, 3, 4, 1, 9, 5, 1, 2])
    counts = first.value_counts(normalize=True)  # ordered by frequency, not by digit
    by_digit = counts.reindex(range(1, 10), fill_value=0)
    for stat in (mean_absolute_deviation, kl_divergence):
        expected = stat(by_digit.to_numpy() + 1e-12)
        assert stat(by_digit.sort_values() + 1e-12) == pytest.approx(expected)
        assert stat(by_digit.to_numpy()[::-1] + 1e-12) != pytest.approx(expected)  # positional
    table = pd.DataFrame([by_digit.to_numpy()], columns=range(1, 10))
    assert mean_absolute_deviation(table[list(range(9, 0, -1))])[0] == pytest.approx(
        mean_absolute_deviation(by_digit))
    # Other labels are read by position, as before; so are nine MADs for nigrini_conformity.
    weights = np.linspace(1, 2, 9)
    assert mean_absolute_deviation(pd.Series(weights, index=list("abcdefghi"))) == (
        pytest.approx(mean_absolute_deviation(weights)))
    floats = pd.Series(by_digit.to_numpy() + 1e-12, index=np.arange(1.0, 10.0))[::-1]
    assert mean_absolute_deviation(floats) == pytest.approx(
        mean_absolute_deviation(by_digit.to_numpy() + 1e-12))
    mads = pd.Series([0.001, 0.02] * 4 + [0.001], index=range(1, 10)).sort_values()
    np.testing.assert_array_equal(nigrini_conformity(mads), nigrini_conformity(mads.to_numpy()))


def test_text_is_not_a_weight():
    with pytest.raises(ValueError, match="p must be numeric; got text"):
        mean_absolute_deviation(["0.3"] * 9)  # was parsed
    with pytest.raises(ValueError, match=r"b'\\xff' is not a number"):
        first_digit_distribution([b"\xff"])  # was UnicodeDecodeError
    assert first_digit_distribution([b"12", "3"], normalize=False)[[0, 2]].tolist() == [1, 1]


@needs_string_dtype
def test_string_dtype_is_text_not_a_weight():
    # NumPy 2's StringDType reads as "<U" text does (it was refused as not numeric), and is
    # text, not a weight, where weights are expected.
    numbers = ["12", "0.003", "7e5", "-4"]
    np.testing.assert_array_equal(
        first_digit_distribution(np.array(numbers, dtype=STRING_DTYPE())),
        first_digit_distribution(np.array(numbers)))
    with pytest.raises(ValueError, match="p must be numeric; got text"):
        mean_absolute_deviation(np.array(["0.3"] * 9, dtype=STRING_DTYPE()))


def test_ragged_weights_are_named():
    # The text check read the values first and let NumPy's "inhomogeneous shape" through.
    with pytest.raises(ValueError, match=r"counts must be numeric, got \[\[1, 2\], \[3\]\]"):
        benford_chisquare([[1, 2], [3]])
    with pytest.raises(ValueError, match="p must be numeric, got"):
        mean_absolute_deviation([0.1] * 8 + [[0.2]])


def test_the_probes_columns_are_digit_labels():
    import pandas as pd

    p = benford_distribution() + np.linspace(0, 0.02, 9)
    columns = [f"digit_{d}" for d in range(1, 10)]
    table = pd.DataFrame([p], columns=columns)
    expected = mean_absolute_deviation(p)
    assert mean_absolute_deviation(table.iloc[0]) == pytest.approx(expected)
    assert mean_absolute_deviation(table[columns[::-1]])[0] == pytest.approx(expected)
    assert mean_absolute_deviation(table.mean()) == pytest.approx(expected)
    assert mean_absolute_deviation(pd.Series(p, index=[str(d) for d in range(1, 10)])) == (
        pytest.approx(expected))


def test_a_boolean_is_not_a_mad():
    for mad in (True, np.array([True, False])):
        with pytest.raises(ValueError, match="mad must be a number"):
            nigrini_conformity(mad)  # True read as 1.0: 'nonconformity'


# ------------------------------------------------------- a hostile review's findings (stop 28)
def test_digits_cannot_be_changed_in_place():
    indices = DIGITS
    with pytest.raises(ValueError, match="read-only"):
        indices -= 1  # a user's 0-based indices would have broken every helper
    np.testing.assert_array_equal(DIGITS, np.arange(1, 10))


def test_masked_entries_are_not_counted():
    numbers = np.ma.array([1, 2, 300], mask=[0, 1, 0])
    np.testing.assert_array_equal(first_digit_distribution(numbers, normalize=False),
                                  [1, 0, 1, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="masked array with masked entries"):
        mean_absolute_deviation(np.ma.array(benford_distribution(), mask=[1] + [0] * 8))
    assert mean_absolute_deviation(np.ma.array(benford_distribution())) == pytest.approx(0)


@pytest.mark.parametrize("numbers", [[True, False, True, 5], np.array([True, False]), True])
def test_booleans_are_not_numbers_with_a_first_digit(numbers):
    with pytest.raises(ValueError, match="got booleans"):
        first_digit_distribution(numbers)


def test_booleans_are_not_counts():
    for counts in ([True] * 9, [True] + [5] * 8):
        with pytest.raises(ValueError, match="counts must be numbers; got booleans"):
            benford_chisquare(counts)
