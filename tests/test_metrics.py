"""Tests for sklearn_rpf.metrics: closed forms against scipy, validation, scorers in sklearn."""

import doctest
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from numpy_text import STRING_DTYPE
from scipy import integrate
from scipy.stats import norm
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.linear_model import BayesianRidge, LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_rpf import metrics
from sklearn_rpf.metrics import (
    calibration_curve,
    crps_gaussian,
    gaussian_nll,
    interval_coverage,
    interval_width,
    make_gaussian_scorer,
    miscalibration_area,
    neg_crps_scorer,
    neg_gaussian_nll_scorer,
)

SCALAR_METRICS = [
    gaussian_nll,
    crps_gaussian,
    interval_coverage,
    interval_width,
    miscalibration_area,
]


def _gaussian_data(n_samples=50, n_outputs=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n_samples,) if n_outputs is None else (n_samples, n_outputs)
    y_mean = rng.normal(size=shape)
    y_std = rng.uniform(0.3, 2.0, size=shape)
    y_true = y_mean + y_std * rng.normal(size=shape) * rng.uniform(0.5, 1.5)
    return y_true, y_mean, y_std


def _regression_data(n_samples=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, size=(n_samples, 2))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] + 0.2 * rng.normal(size=n_samples)
    return X, y


def _gpr(length_scale=1.0):
    # Fixed hyperparameters: fast, deterministic and still a real predict(return_std=True).
    return GaussianProcessRegressor(
        kernel=RBF(length_scale=length_scale) + WhiteKernel(0.05), optimizer=None
    )


# --- closed forms against scipy ------------------------------------------------------


def test_gaussian_nll_matches_scipy_logpdf():
    y_true, y_mean, y_std = _gaussian_data(n_outputs=3)
    expected = -norm.logpdf(y_true, loc=y_mean, scale=y_std).mean(axis=0)
    raw = gaussian_nll(y_true, y_mean, y_std, multioutput="raw_values")
    np.testing.assert_allclose(raw, expected, rtol=1e-12)
    # Target units: rescaling everything by c shifts the NLL by log(c).
    shifted = gaussian_nll(10 * y_true, 10 * y_mean, 10 * y_std)
    assert shifted == pytest.approx(expected.mean() + np.log(10), rel=1e-12)


@pytest.mark.parametrize(
    "y, mu, sigma", [(0.0, 0.0, 1.0), (1.3, -0.4, 0.7), (-5.0, 2.0, 3.0), (10.0, 0.0, 0.5)]
)
def test_crps_matches_integral_of_squared_cdf_difference(y, mu, sigma):
    def squared_difference(x):
        return (norm.cdf(x, loc=mu, scale=sigma) - (x >= y)) ** 2

    below, _ = integrate.quad(squared_difference, -np.inf, y)
    above, _ = integrate.quad(squared_difference, y, np.inf)
    assert crps_gaussian([y], [mu], [sigma]) == pytest.approx(below + above, rel=1e-7)


def test_crps_tends_to_absolute_error_for_tiny_std():
    y_true, y_mean, _ = _gaussian_data()
    tiny = np.full_like(y_mean, 1e-9)
    assert crps_gaussian(y_true, y_mean, tiny) == pytest.approx(
        np.abs(y_true - y_mean).mean(), rel=1e-6
    )


def test_extreme_scales_give_the_representable_answer():
    # The absolute error as the std vanishes (z overflows), and finite scores where y - mu
    # overflows but z does not.
    assert crps_gaussian([1.0], [0.0], [1e-320]) == 1.0
    assert crps_gaussian([1e300], [0.0], [1e-10]) == 1e300
    z2 = 0.5 * np.log(2 * np.pi) + np.log(1e308) + 2.0  # z = 2
    assert gaussian_nll([1e308], [-1e308], [1e308]) == pytest.approx(z2, rel=1e-12)
    crps = 1e308 * (2 * (2 * norm.cdf(2) - 1) + 2 * norm.pdf(2) - 1 / np.sqrt(np.pi))
    assert crps_gaussian([1e308], [-1e308], [1e308]) == pytest.approx(crps, rel=1e-12)
    # Near level 1 the tail keeps its precision: 2 * isf((1 - level) / 2), not inf.
    level = 1 - 2**-53
    assert interval_width([0.0], [0.0], [1.0], level=level) == pytest.approx(
        2 * norm.isf((1 - level) / 2), rel=1e-12)


@pytest.mark.parametrize("metric", SCALAR_METRICS)
def test_huge_weights_are_just_weights(metric):
    y_true, y_mean, y_std = _gaussian_data(n_samples=40, n_outputs=2)
    expected = metric(y_true, y_mean, y_std, sample_weight=np.arange(1.0, 41.0),
                      multioutput=[1.0, 3.0])
    got = metric(y_true, y_mean, y_std, sample_weight=1e306 * np.arange(1.0, 41.0),
                 multioutput=[5e307, 1.5e308])  # their sum overflows
    assert got == pytest.approx(expected, rel=1e-12)


def test_interval_width_and_coverage_follow_norm_interval():
    y_true, y_mean, y_std = _gaussian_data(n_outputs=2)
    for level in (0.5, 0.9, 0.95):
        low, high = norm.interval(level, loc=y_mean, scale=y_std)
        expected_width = (high - low).mean(axis=0)
        expected_coverage = ((y_true >= low) & (y_true <= high)).mean(axis=0)
        np.testing.assert_allclose(
            interval_width(y_true, y_mean, y_std, level=level, multioutput="raw_values"),
            expected_width,
        )
        np.testing.assert_allclose(
            interval_coverage(y_true, y_mean, y_std, level=level, multioutput="raw_values"),
            expected_coverage,
        )


def test_coverage_of_calibrated_predictions_is_close_to_level():
    rng = np.random.default_rng(1)
    n_samples = 20_000
    y_mean = rng.normal(size=n_samples)
    y_std = rng.uniform(0.5, 2.0, size=n_samples)
    y_true = rng.normal(y_mean, y_std)
    for level in (0.5, 0.8, 0.95):
        tolerance = 4 * np.sqrt(level * (1 - level) / n_samples)
        assert abs(interval_coverage(y_true, y_mean, y_std, level=level) - level) < tolerance
    assert miscalibration_area(y_true, y_mean, y_std) < 0.01


def test_interval_bounds_are_included():
    bound = norm.ppf(0.95)  # half-width of the 90% interval for unit std
    inside = interval_coverage([bound - 1e-12, -bound + 1e-12], [0, 0], [1, 1], level=0.9)
    outside = interval_coverage([bound + 1e-9, -bound - 1e-9], [0, 0], [1, 1], level=0.9)
    assert (inside, outside) == (1.0, 0.0)


def test_calibration_curve_agrees_with_interval_coverage():
    y_true, y_mean, y_std = _gaussian_data(n_outputs=2)
    levels = [0.1, 0.5, 0.9, 0.99]
    nominal, observed = calibration_curve(
        y_true, y_mean, y_std, levels=levels, multioutput="raw_values"
    )
    np.testing.assert_array_equal(nominal, levels)
    assert observed.shape == (4, 2)
    for row, level in zip(observed, levels, strict=True):
        np.testing.assert_array_equal(
            row, interval_coverage(y_true, y_mean, y_std, level=level, multioutput="raw_values")
        )
    # Targets exactly on a bound count as covered in both (the same comparison, not a PIT).
    on_bound = norm.ppf(0.5 + np.array([0.1, 0.3, 0.7]) / 2)
    for level, y in zip([0.1, 0.3, 0.7], on_bound, strict=True):
        assert calibration_curve([y], [0.0], [1.0], levels=[level])[1][0] == interval_coverage(
            [y], [0.0], [1.0], level=level)
    nominal, observed = calibration_curve(y_true, y_mean, y_std, levels=4)
    np.testing.assert_allclose(nominal, [0.125, 0.375, 0.625, 0.875])
    assert observed.shape == (4,)
    assert np.all(np.diff(observed) >= 0)


def test_calibration_curve_equals_interval_coverage_at_every_level():
    # The curve is found by a search over the sorted levels, not level by level: unsorted and
    # repeated levels, targets on bounds, a huge std, zero and uneven weights, two outputs.
    y_true, y_mean, y_std = _gaussian_data(n_samples=40, n_outputs=2, seed=3)
    levels = np.array([0.9, 0.1, 0.5, 0.5, 1e-9, 1 - 1e-12, 0.3, 0.7, 0.95])
    y_true[:3, 0] = y_mean[:3, 0] + y_std[:3, 0] * norm.isf((1 - levels[[0, 2, 6]]) / 2)
    y_true[3, 1], y_std[3, 1] = 1e300, 1e300
    weight = np.random.default_rng(4).exponential(size=40)
    weight[5:9] = 0.0
    for sample_weight in (None, weight):
        _, observed = calibration_curve(y_true, y_mean, y_std, levels=levels,
                                        sample_weight=sample_weight, multioutput="raw_values")
        expected = [interval_coverage(y_true, y_mean, y_std, level=level,
                                      sample_weight=sample_weight, multioutput="raw_values")
                    for level in levels]
        np.testing.assert_allclose(observed, expected, rtol=0, atol=1e-12)
    assert 0 < observed[1, 0] < observed[0, 0] < 1  # the check is not trivially satisfied


def test_calibration_curve_never_exceeds_one_nor_warns():
    # Summing the weights of the covered rows in another order than the total gave 1 + 2 ulp
    # (which CoverageDisplay refuses); an overflowing distance warned.
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(3, 40))
        weight = rng.exponential(size=n) * 10.0 ** rng.uniform(-3, 3, size=n)
        _, observed = calibration_curve(rng.normal(size=n), np.zeros(n), np.ones(n),
                                        levels=[0.5, 1 - 1e-15], sample_weight=weight)
        assert observed[-1] == 1.0 and np.all(observed <= 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, observed = calibration_curve([1e308, 0.0], [-1e308, 0.0], [1.0, 1.0], levels=[0.5])
    assert observed[0] == 0.5
    for empty in ([], np.array([]), torch.tensor([]), np.array(0.5), [[0.5]]):
        with pytest.raises(ValueError, match="levels must be a non-empty 1-D array of values"):
            calibration_curve([0.0], [0.0], [1.0], levels=empty)


def test_miscalibration_area_is_the_integral_of_the_curve_gap():
    y_true, y_mean, y_std = _gaussian_data(n_samples=30)
    nominal, observed = calibration_curve(y_true, y_mean, y_std, levels=20_000)
    assert miscalibration_area(y_true, y_mean, y_std) == pytest.approx(
        np.mean(np.abs(observed - nominal)), abs=1e-4
    )


def test_miscalibration_area_of_overconfident_predictions():
    # Truth N(0, 1), predicted std 0.5: the interval at level p covers 2*Phi(q_p / 2) - 1.
    rng = np.random.default_rng(2)
    y_true = rng.normal(size=20_000)
    zeros = np.zeros_like(y_true)

    def gap(p):
        return abs(2 * norm.cdf(norm.ppf(0.5 + p / 2) / 2) - 1 - p)

    expected, _ = integrate.quad(gap, 0, 1, limit=200)
    area = miscalibration_area(y_true, zeros, np.full_like(y_true, 0.5))
    assert area == pytest.approx(expected, abs=0.01)
    assert expected > 0.1  # the check above is not trivially satisfied


# --- sample_weight and multioutput ------------------------------------------------------


def _curve_observed(y_true, y_mean, y_std, **kwargs):
    return calibration_curve(y_true, y_mean, y_std, levels=7, **kwargs)[1]


ALL_METRICS = [*SCALAR_METRICS, _curve_observed]


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_integer_sample_weight_equals_repetition(metric):
    y_true, y_mean, y_std = _gaussian_data(n_samples=20, n_outputs=2)
    y_true = y_mean + 2.5 * (y_true - y_mean)  # some targets outside the 95% interval
    weights = np.random.default_rng(3).integers(0, 4, size=20)
    repeated = [np.repeat(a, weights, axis=0) for a in (y_true, y_mean, y_std)]
    weighted = metric(y_true, y_mean, y_std, sample_weight=weights, multioutput="raw_values")
    np.testing.assert_allclose(
        weighted, metric(*repeated, multioutput="raw_values"), rtol=1e-12, atol=1e-14
    )
    unweighted = metric(y_true, y_mean, y_std, multioutput="raw_values")
    assert not np.allclose(weighted, unweighted)


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_multioutput_options(metric):
    y_true, y_mean, y_std = _gaussian_data(n_outputs=3)
    per_output = [metric(y_true[:, j], y_mean[:, j], y_std[:, j]) for j in range(3)]
    raw = metric(y_true, y_mean, y_std, multioutput="raw_values")
    np.testing.assert_allclose(raw, np.stack(per_output, axis=-1))
    np.testing.assert_allclose(metric(y_true, y_mean, y_std), np.mean(per_output, axis=0))
    weights = [0.2, 0.0, 0.8]
    np.testing.assert_allclose(
        metric(y_true, y_mean, y_std, multioutput=weights),
        np.average(np.stack(per_output, axis=-1), axis=-1, weights=weights),
    )


@pytest.mark.parametrize("metric", SCALAR_METRICS)
def test_one_dimensional_and_single_column_agree(metric):
    y_true, y_mean, y_std = _gaussian_data()
    flat = metric(y_true, y_mean, y_std)
    assert isinstance(flat, float)
    assert metric(y_true[:, None], y_mean, y_std[:, None]) == pytest.approx(flat)
    assert metric(y_true, y_mean, y_std, multioutput="raw_values").shape == (1,)


# --- input types -------------------------------------------------------------------


@pytest.mark.parametrize("metric", SCALAR_METRICS)
@pytest.mark.parametrize("container", ["list", "pandas", "torch"])
def test_array_like_inputs(metric, container):
    arrays = _gaussian_data(n_samples=15, n_outputs=2)
    expected = metric(*arrays, sample_weight=np.arange(15.0), multioutput="raw_values")
    if container == "list":
        converted = [a.tolist() for a in arrays] + [list(range(15))]
    elif container == "pandas":
        converted = [pd.DataFrame(a, columns=["a", "b"]) for a in arrays] + [
            pd.Series(np.arange(15.0))
        ]
    else:  # tensors that require grad are read detached
        converted = [torch.tensor(a, requires_grad=True) for a in arrays] + [torch.arange(15.0)]
    *inputs, weights = converted
    result = metric(*inputs, sample_weight=weights, multioutput="raw_values")
    np.testing.assert_allclose(result, expected, rtol=1e-12)


def test_inputs_are_not_modified():
    arrays = _gaussian_data(n_outputs=2)
    copies = [a.copy() for a in arrays]
    for metric in ALL_METRICS:
        metric(*arrays, sample_weight=np.ones(50))
    for array, copy in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(array, copy)


# --- bad input ---------------------------------------------------------------------

GOOD = dict(y_true=[0.0, 1.0, 2.0], y_mean=[0.0, 1.0, 1.5], y_std=[1.0, 0.5, 2.0])


@pytest.mark.parametrize("metric", ALL_METRICS)
@pytest.mark.parametrize(
    "changes, message",
    [
        ({"y_mean": [0.0, 1.0]}, "inconsistent numbers of samples"),
        ({"y_std": [[1.0, 1.0]] * 3}, "must have the same shape"),
        ({"y_true": [[0.0, 1.0]] * 3}, "must have the same shape"),
        ({"y_true": [0.0, np.nan, 2.0]}, "y_true contains NaN"),
        ({"y_mean": [0.0, np.inf, 2.0]}, "y_mean contains infinity"),
        ({"y_std": [1.0, np.nan, 2.0]}, "y_std contains NaN"),
        ({"y_std": [1.0, 0.0, 2.0]}, "y_std must be strictly positive"),
        ({"y_std": [1.0, -0.5, 2.0]}, "y_std must be strictly positive"),
        ({"y_true": np.zeros((3, 1, 1))}, "Found array with dim 3"),
        ({"y_true": [], "y_mean": [], "y_std": []}, "minimum of 1 is required"),
        ({"sample_weight": [1.0, 1.0]}, "inconsistent numbers of samples"),
        ({"sample_weight": [1.0, -1.0, 1.0]}, "sample_weight must be non-negative"),
        ({"sample_weight": [0.0, 0.0, 0.0]}, "positive sum"),
        ({"sample_weight": [[1.0]] * 3}, "sample_weight must be 1-D"),
        ({"sample_weight": [1.0, np.nan, 1.0]}, "sample_weight contains NaN"),
        ({"multioutput": "variance_weighted"}, "'multioutput' parameter of .* must be a str among"),
        ({"multioutput": [0.5, 0.5]}, r"shape \(n_outputs,\) = \(1,\)"),
        ({"multioutput": [-1.0]}, "non-negative"),
    ],
)
def test_bad_input_raises_clear_error(metric, changes, message):
    with pytest.raises(ValueError, match=message):
        metric(**{**GOOD, **changes})


@pytest.mark.parametrize("metric", [interval_coverage, interval_width])
@pytest.mark.parametrize("level", [0, 1, -0.1, 1.5, 95, True, "0.9", np.nan])
def test_bad_level_raises(metric, level):
    with pytest.raises(ValueError, match=r"'level' parameter of .* must be a float in the range \(0.0, 1.0\)"):
        metric(**GOOD, level=level)


@pytest.mark.parametrize(
    "levels, message",
    [
        (0, r"must be an int in the range \[1, inf\)"),
        (2.5, r"must be an int in the range \[1, inf\) or an array-like"),
        ([0.0, 0.5], "open interval"),
        ([0.5, 1.0], "open interval"),
        ([[0.5]], "1-D array"),
        ([0.5, np.nan], "levels contains NaN"),
    ],
)
def test_bad_calibration_levels_raise(levels, message):
    with pytest.raises(ValueError, match=message):
        calibration_curve(**GOOD, levels=levels)


# --- scorers -----------------------------------------------------------------------


def test_scorer_repr_and_pickle():
    assert repr(neg_gaussian_nll_scorer) == "make_gaussian_scorer('neg_gaussian_nll')"
    scorer = make_gaussian_scorer("interval_coverage", level=0.9)
    assert repr(scorer) == "make_gaussian_scorer('interval_coverage', level=0.9)"
    custom = make_gaussian_scorer(crps_gaussian, greater_is_better=False)
    assert repr(custom) == "make_gaussian_scorer(crps_gaussian, greater_is_better=False)"
    assert repr(pickle.loads(pickle.dumps(scorer))) == repr(scorer)


def test_scorers_compute_signed_metrics_from_predict_return_std():
    X, y = _regression_data()
    model = _gpr().fit(X[:30], y[:30])
    y_mean, y_std = model.predict(X[30:], return_std=True)
    X_test, y_test = X[30:], y[30:]
    assert neg_gaussian_nll_scorer(model, X_test, y_test) == -gaussian_nll(y_test, y_mean, y_std)
    assert neg_crps_scorer(model, X_test, y_test) == -crps_gaussian(y_test, y_mean, y_std)
    coverage = make_gaussian_scorer("interval_coverage", level=0.8)(model, X_test, y_test)
    assert coverage == interval_coverage(y_test, y_mean, y_std, level=0.8)
    custom = make_gaussian_scorer(crps_gaussian, greater_is_better=False)
    assert custom(model, X_test, y_test) == neg_crps_scorer(model, X_test, y_test)
    weights = np.linspace(0.0, 1.0, len(y_test))
    assert neg_gaussian_nll_scorer(model, X_test, y_test, sample_weight=weights) == -gaussian_nll(
        y_test, y_mean, y_std, sample_weight=weights
    )


def test_scorer_on_multioutput_estimator():
    X, y = _regression_data()
    Y = np.column_stack([y, -2 * y])
    model = _gpr().fit(X[:30], Y[:30])
    y_mean, y_std = model.predict(X[30:], return_std=True)
    scorer = make_gaussian_scorer("neg_gaussian_nll", multioutput=[1.0, 3.0])
    expected = -gaussian_nll(Y[30:], y_mean, y_std, multioutput=[1.0, 3.0])
    assert scorer(model, X[30:], Y[30:]) == pytest.approx(expected)


def _manual_cv_scores(estimator, X, y, metric, cv, sample_weight=None):
    scores = []
    for train, test in cv.split(X):
        fitted = sklearn.base.clone(estimator).fit(X[train], y[train])
        y_mean, y_std = fitted.predict(X[test], return_std=True)
        weights = None if sample_weight is None else sample_weight[test]
        scores.append(-metric(y[test], y_mean, y_std, sample_weight=weights))
    return np.array(scores)


def test_grid_search_selects_by_gaussian_nll():
    X, y = _regression_data()
    cv = KFold(3, shuffle=True, random_state=0)
    grid = {"kernel__k1__length_scale": [0.05, 1.0, 30.0]}
    search = GridSearchCV(_gpr(), grid, scoring=neg_gaussian_nll_scorer, cv=cv).fit(X, y)
    expected = [
        _manual_cv_scores(_gpr(length_scale), X, y, gaussian_nll, cv).mean()
        for length_scale in grid["kernel__k1__length_scale"]
    ]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], expected)
    assert search.best_params_["kernel__k1__length_scale"] == 1.0
    assert search.best_index_ == int(np.argmax(expected))


def test_grid_search_multimetric_dict_with_refit():
    X, y = _regression_data()
    cv = KFold(3, shuffle=True, random_state=0)
    scoring = {
        "nll": neg_gaussian_nll_scorer,
        "crps": neg_crps_scorer,
        "coverage": make_gaussian_scorer("interval_coverage", level=0.9),
        "r2": "r2",
    }
    grid = {"kernel__k1__length_scale": [0.05, 1.0]}
    search = GridSearchCV(_gpr(), grid, scoring=scoring, refit="nll", cv=cv).fit(X, y)
    results = search.cv_results_
    for name, metric in [("nll", gaussian_nll), ("crps", crps_gaussian)]:
        expected = _manual_cv_scores(_gpr(0.05), X, y, metric, cv)
        np.testing.assert_allclose(results[f"mean_test_{name}"][0], expected.mean())
    assert np.all((results["mean_test_coverage"] >= 0) & (results["mean_test_coverage"] <= 1))
    assert np.all(np.isfinite(results["mean_test_r2"]))
    assert search.best_index_ == int(np.argmax(results["mean_test_nll"]))


def test_cross_validate_with_pipeline_forwards_return_std():
    X, y = _regression_data()
    X = X * [100.0, 0.01]  # scaling matters, so the pipeline's scaler is really used
    pipeline = make_pipeline(StandardScaler(), _gpr())
    cv = KFold(4, shuffle=True, random_state=1)
    result = cross_validate(
        pipeline, X, y, cv=cv, scoring={"nll": neg_gaussian_nll_scorer, "crps": neg_crps_scorer}
    )
    np.testing.assert_allclose(
        result["test_nll"], _manual_cv_scores(pipeline, X, y, gaussian_nll, cv)
    )
    np.testing.assert_allclose(
        result["test_crps"], _manual_cv_scores(pipeline, X, y, crps_gaussian, cv)
    )


def test_grid_search_forwards_sample_weight_without_routing():
    # BayesianRidge: fit takes sample_weight and predict takes return_std.
    X, y = _regression_data()
    weights = np.random.default_rng(4).uniform(0.0, 3.0, size=len(y))
    cv = KFold(3, shuffle=True, random_state=0)
    for scoring in (neg_gaussian_nll_scorer, {"nll": neg_gaussian_nll_scorer, "r2": "r2"}):
        search = GridSearchCV(
            BayesianRidge(), {"alpha_1": [1e-6]}, scoring=scoring, refit=False, cv=cv
        ).fit(X, y, sample_weight=weights)
        key = "mean_test_score" if scoring is neg_gaussian_nll_scorer else "mean_test_nll"
        scores = []
        for train, test in cv.split(X):
            model = BayesianRidge().fit(X[train], y[train], sample_weight=weights[train])
            y_mean, y_std = model.predict(X[test], return_std=True)
            scores.append(-gaussian_nll(y[test], y_mean, y_std, sample_weight=weights[test]))
        assert search.cv_results_[key][0] == pytest.approx(np.mean(scores))


def test_cross_validate_routes_sample_weight_when_requested():
    X, y = _regression_data()
    weights = np.random.default_rng(5).uniform(0.0, 3.0, size=len(y))
    cv = KFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        # The scorer is named by its class (scikit-learn 1.9) or its repr (1.7).
        named = r"(_GaussianScorer|make_gaussian_scorer\('neg_gaussian_nll'\))\.score"
        with pytest.raises(UnsetMetadataPassedError, match=named):
            cross_validate(
                _gpr(),
                X,
                y,
                cv=cv,
                scoring=make_gaussian_scorer("neg_gaussian_nll"),
                params={"sample_weight": weights},
            )
        scorer = make_gaussian_scorer("neg_gaussian_nll").set_score_request(sample_weight=True)
        scorer.set_score_request()  # no argument leaves the request unchanged
        pipeline = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False),
            _gpr().set_predict_request(return_std=True),
        )
        result = cross_validate(
            pipeline, X, y, cv=cv, scoring=scorer, params={"sample_weight": weights}
        )
    expected = _manual_cv_scores(pipeline, X, y, gaussian_nll, cv, sample_weight=weights)
    np.testing.assert_allclose(result["test_score"], expected)
    assert not np.allclose(expected, _manual_cv_scores(pipeline, X, y, gaussian_nll, cv))


def test_scorer_rejects_estimator_without_return_std():
    X, y = _regression_data()
    model = LinearRegression().fit(X, y)
    with pytest.raises(TypeError, match="LinearRegression.predict does not accept return_std"):
        neg_gaussian_nll_scorer(model, X, y)


def test_make_gaussian_scorer_bad_arguments():
    with pytest.raises(ValueError, match="Unknown Gaussian scorer 'nll'"):
        make_gaussian_scorer("nll")
    with pytest.raises(ValueError, match="greater_is_better is fixed"):
        make_gaussian_scorer("neg_crps", greater_is_better=True)
    with pytest.raises(TypeError, match="scorer name or a callable"):
        make_gaussian_scorer(3)
    with pytest.raises(ValueError, match="greater_is_better must be True, False or None"):
        make_gaussian_scorer(gaussian_nll, greater_is_better="no")


def test_docstring_examples_run():
    from sklearn_rpf.metrics import _calibration, _gaussian, _scorers

    results = [doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
               for module in (_gaussian, _calibration, _scorers)]
    assert sum(r.attempted for r in results) >= 7
    assert sum(r.failed for r in results) == 0


def test_scorer_keywords_are_checked_when_the_scorer_is_made():
    # A misspelt or out-of-range keyword used to score NaN in every fold of a search, with a
    # "Scoring failed" warning each time.
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(TypeError, match="does not take these keywords.*levl"):
        make_gaussian_scorer("neg_crps", levl=0.9)
    with pytest.raises(InvalidParameterError, match="'level' parameter of interval_coverage"):
        make_gaussian_scorer("interval_coverage", level=1.5)
    with pytest.raises(TypeError, match="does not take these keywords.*foo"):
        make_gaussian_scorer(lambda y, m, s, sample_weight=None: 0.0, foo=1)
    make_gaussian_scorer("interval_coverage", level=0.9)  # a good keyword still works
    with pytest.raises(TypeError, match="sample_weight is not a keyword of the scorer"):
        make_gaussian_scorer("neg_crps", sample_weight=[1.0, 2.0])


TEXT_CONTAINERS = {
    "series": pd.Series(["1.5", "2.0", "0.5"]),
    "string": pd.Series(["1.5", "2.0", "0.5"], dtype="string"),
    "object": np.array(["1.5", "2.0", "0.5"], dtype=object),
    "list": ["1.5", "2.0", "0.5"],
    **({} if STRING_DTYPE is None else  # was read as numbers
       {"stringdtype": np.array(["1.5", "2.0", "0.5"], dtype=STRING_DTYPE())}),
}


@pytest.mark.parametrize("text", list(TEXT_CONTAINERS.values()), ids=list(TEXT_CONTAINERS))
@pytest.mark.parametrize("argument", ["y_true", "y_mean", "y_std", "sample_weight"])
def test_numeric_text_is_refused_whatever_holds_it(argument, text):
    # check_array alone parses "1.5" from an object array or a Series: a silent conversion.
    values = {"y_true": [1.0, 2.0, 0.5], "y_mean": [1.0, 2.0, 0.5], "y_std": [1.0, 1.0, 1.0],
              "sample_weight": [1.0, 1.0, 1.0], argument: text}
    for metric in (gaussian_nll, interval_coverage):
        with pytest.raises(ValueError, match=f"{argument} must be numeric; got text"):
            metric(values["y_true"], values["y_mean"], values["y_std"],
                   sample_weight=values["sample_weight"])


def test_dates_are_refused_and_numbers_of_any_container_pass():
    dates = pd.Series(pd.date_range("2020", periods=3))
    with pytest.raises(ValueError, match="y_true must be numeric; got dates"):
        gaussian_nll(dates, [1.0, 2.0, 0.5], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="levels must be numeric; got text"):
        calibration_curve([1.0, 2.0], [1.0, 2.0], [1.0, 1.0], levels=["0.5", "0.9"])
    expected = gaussian_nll([1.0, 2.0, 0.5], [1.0, 2.5, 0.5], [1.0, 1.0, 2.0])
    for y_true in (pd.Series([1, 2, 0.5], dtype="Float64"), np.array([1, 2.0, 0.5], dtype=object),
                   pd.Series([1, 2, 0.5], dtype=object)):
        assert gaussian_nll(y_true, [1.0, 2.5, 0.5], [1.0, 1.0, 2.0]) == pytest.approx(expected)


def test_pandas_na_in_an_object_array_is_named():
    y_true = np.array([1.0, pd.NA, 0.5], dtype=object)  # e.g. a nullable column as objects
    with pytest.raises(ValueError, match=r"Input y_true contains missing values \(pandas.NA\)"):
        gaussian_nll(y_true, [1.0, 2.0, 0.5], [1.0, 1.0, 1.0])


def test_ready_made_scorers_are_fresh_at_each_access():
    # One shared object: set_score_request in one part of a program silently unweighted another
    # part's cross_validate.
    first = metrics.neg_gaussian_nll_scorer
    first.set_score_request(sample_weight=False)
    from sklearn_rpf.metrics import neg_gaussian_nll_scorer as later

    assert later is not first and later._sample_weight_request is not False
    assert metrics.neg_crps_scorer is not metrics.neg_crps_scorer


@pytest.mark.parametrize("case", ["tiny std", "subnormal std", "huge std", "opposite 1e308"])
def test_extreme_but_valid_inputs_warn_nothing(case):
    # The metrics compute these limits on purpose (CRPS -> |error| as std -> 0, NLL -> inf), but
    # overflow and underflow warnings escaped: errors under -W error or np.seterr(all="raise").
    y, m = np.array([0.0, 1.0, 2.0]), np.array([0.5, 0.5, 0.5])
    args = {"tiny std": (y, m, np.full(3, 1e-200)), "subnormal std": (y, m, np.full(3, 1e-310)),
            "huge std": (y, m, np.full(3, 1e300)),
            "opposite 1e308": (np.array([1e308, -1e308, 0.0]), np.array([-1e308, 1e308, 0.0]),
                               np.ones(3))}[case]
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for metric in (gaussian_nll, crps_gaussian, interval_coverage, interval_width,
                       miscalibration_area, calibration_curve):
            metric(*args)
    if case == "tiny std":
        assert crps_gaussian(*args) == pytest.approx(np.mean(np.abs(y - m)))
        assert gaussian_nll(*args) == np.inf


def test_assume_finite_does_not_let_nan_through_the_metrics():
    # Under assume_finite=True a NaN target counted as not covered: coverage 0.99, no error.
    import sklearn

    y = np.arange(100.0)
    y[5] = np.nan
    with sklearn.config_context(assume_finite=True):
        for metric in (gaussian_nll, crps_gaussian, interval_coverage, miscalibration_area,
                       calibration_curve):
            with pytest.raises(ValueError, match="Input y_true contains NaN or infinity"):
                metric(y, np.zeros(100), np.ones(100))
