"""Tests of the Benford statistics in sklearn_rpf.benford."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sklearn_rpf.benford import (
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
    counts = np.array([40, 20, 10, 10, 5, 5, 4, 3, 3])
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
