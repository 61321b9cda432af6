"""predict_interval (jackknife+-after-bootstrap, Gaussian) and sample_y."""

import dataclasses
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from sklearn_rpf import RandomizedPriorRegressor
from sklearn_rpf.ensemble import _conformal, _jackknife_search

FAST = dict(n_estimators=8, max_epochs=30, lr=1e-2, hidden_layer_sizes=(16,), random_state=0)


def heavy_tailed(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    return X, np.sin(2 * X[:, 0]) + 0.3 * rng.standard_t(2, size=n)


def covered(y, lower, upper):
    return (lower <= y) & (y <= upper)


# ----------------------------------------------------------------------------- the guarantee
@pytest.mark.parametrize("max_rows", [None, 20])
def test_conformal_coverage_guarantee_over_repetitions(max_rows, monkeypatch):
    # 60 independent small problems with Student-t(2) noise (no variance, so no Gaussian model is
    # right). Jackknife+-after-bootstrap guarantees at least 1 - 2 alpha = 0.8 at alpha = 0.1;
    # the mean coverage over 4,800 test points must not fall below it by more than 0.02 (the
    # Monte Carlo error of the mean is below 0.01), and must not be trivially 1. With max_rows,
    # only 20 of the about 38 calibration rows are kept: the guarantee still holds.
    if max_rows is not None:
        monkeypatch.setattr(_conformal, "MAX_ROWS", max_rows)
    coverage = {"conformal": [], "conformal-studentized": []}
    for rep in range(60):
        X, y = heavy_tailed(120, rep)
        reg = RandomizedPriorRegressor(n_estimators=8, max_epochs=5, hidden_layer_sizes=(8,),
                                       batch_size=None, lr=3e-2, random_state=rep).fit(X[:40], y[:40])
        if max_rows is not None:
            assert reg._calibration.n_rows == max_rows
        for method, values in coverage.items():
            lower, upper = reg.predict_interval(X[40:], confidence=0.9, method=method)
            values.append(covered(y[40:], lower, upper).mean())
    for method, values in coverage.items():
        assert np.mean(values) >= 0.8 - 0.02, method  # the guarantee
        assert 0.86 <= np.mean(values) < 0.96, method  # and close to nominal in practice


def test_conformal_coverage_guarantee_with_repeated_rows():
    # Exchangeable data with ties: every row, training or test, is drawn with replacement from a
    # pool of 25 distinct (x, y) pairs, so rows repeat each other in training and at test time
    # alike. Out of bag by index, the guarantee (0.8 at alpha = 0.1) holds; pooling copies would
    # leave a repeated row with fewer members and a wider interval than the data need. (Most rows
    # repeat here, so predict_interval warns that copies made by mistake would narrow it: these
    # are not.)
    from benchmarks.interval_choice import POOLED, _interval, pooled_calibration

    coverage, width, width_pooled = [], [], []
    for rep in range(40):
        X_pool, y_pool = heavy_tailed(25, 1000 + rep)
        picks = np.random.default_rng(rep).integers(0, 25, size=120)
        X, y = X_pool[picks], y_pool[picks]
        reg = RandomizedPriorRegressor(n_estimators=8, max_epochs=5, hidden_layer_sizes=(8,),
                                       batch_size=None, lr=3e-2, random_state=rep).fit(X[:40], y[:40])
        assert len(np.unique(picks[:40])) < 40  # copies in every training set
        with warnings.catch_warnings():  # most rows repeat: the duplicated-by-mistake warning
            warnings.filterwarnings("ignore", message=".*have an exact copy")
            lower, upper = reg.predict_interval(X[40:], confidence=0.9)
            low_p, up_p = _interval(reg, X[40:], 0.9, POOLED, pooled_calibration(reg, X[:40],
                                                                                   y[:40], rep))
        coverage.append(covered(y[40:], lower, upper).mean())
        width.append(np.mean(upper - lower))
        width_pooled.append(np.mean(up_p - low_p))
    assert np.mean(coverage) >= 0.8 - 0.02  # the guarantee
    assert np.mean(coverage) < 0.97  # and not trivially everything
    # Sharper than pooling copies (measured: median width 2.59 against 3.15; coverage 0.91, 0.94).
    assert np.median(width) < 0.9 * np.median(width_pooled)


@pytest.mark.filterwarnings("ignore:.*have an exact copy")  # 67% of rows: named below
@pytest.mark.parametrize("copies", [False, True])
def test_conformal_interval_is_the_jackknife_plus_quantile(copies):
    # Recompute the interval of one test point by hand from the members and the in-bag counts.
    # With copies (20 of the 60 rows repeat others), a row is still out of bag for every member
    # that did not draw that row itself, whatever its copies did: Kim et al.'s construction.
    X, y = heavy_tailed(60, 0)
    if copies:
        X[40:], y[40:] = X[:20], y[:20]
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    if copies:  # the noise fit, by contrast, leaves out a member that drew any copy of the row
        pooled = reg.in_bag_counts_[:20] + reg.in_bag_counts_[40:]
        assert np.any((pooled > 0) & (reg.in_bag_counts_[:20] == 0))
    x = np.array([[0.3, -0.2]])
    members = reg.predict_members(X)  # (K, n)
    at_x = reg.predict_members(x)[:, 0]
    out = reg.in_bag_counts_ == 0
    rows = out.any(axis=1)
    loo_train = np.array([members[out[i], i].mean() for i in np.flatnonzero(rows)])
    loo_x = np.array([at_x[out[i]].mean() for i in np.flatnonzero(rows)])
    residual = np.abs(y[rows] - loo_train)
    n, alpha = rows.sum(), 0.2
    lower = np.sort(loo_x - residual)[int(np.floor(alpha * (n + 1))) - 1]
    upper = np.sort(loo_x + residual)[int(np.ceil((1 - alpha) * (n + 1))) - 1]
    got = reg.predict_interval(x, confidence=0.8)
    np.testing.assert_allclose([got[0][0], got[1][0]], [lower, upper], rtol=1e-5)


def _kept_rows(reg, X, y):
    """The training rows whose out-of-bag residual the model kept, found by recomputing every
    eligible row's residual from the members; with each row's out-of-bag mask and residual."""
    members = reg.predict_members(X)  # (K, n)
    out = reg.in_bag_counts_ == 0
    eligible = np.flatnonzero(out.any(axis=1))
    residual = {i: y[i] - members[out[i], i].mean() for i in eligible}
    stored = reg._fitted.standardizer.inverse_std(reg._calibration.residuals)[:, 0]  # y's units
    kept = [i for i in eligible if np.isclose(stored, residual[i], rtol=0, atol=1e-5).any()]
    return kept, eligible, out, residual


def test_many_rows_keep_a_sample_of_them(monkeypatch):
    # Beyond MAX_ROWS calibration rows, fit keeps that many, chosen by a hash of each row's
    # content keyed by the seed: the interval is jackknife+ over exactly those rows, refitting
    # keeps the same ones, another seed others, and shuffling the rows changes nothing.
    X, y = heavy_tailed(60, 0)
    x = np.array([[0.3, -0.2], [-0.9, 0.8]])
    monkeypatch.setattr(_conformal, "MAX_ROWS", 25)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    assert reg._calibration.n_rows == 25
    kept, eligible, out, residual = _kept_rows(reg, X, y)
    assert len(eligible) > 25 and len(kept) == 25  # 25 distinct training rows' residuals
    at_x, alpha = reg.predict_members(x), 0.2  # (K, 2)
    lower_ends = [[at_x[out[i], j].mean() - abs(residual[i]) for i in kept] for j in range(2)]
    upper_ends = [[at_x[out[i], j].mean() + abs(residual[i]) for i in kept] for j in range(2)]
    lower = [np.sort(v)[int(np.floor(alpha * 26)) - 1] for v in lower_ends]
    upper = [np.sort(v)[int(np.ceil((1 - alpha) * 26)) - 1] for v in upper_ends]
    got = reg.predict_interval(x, confidence=0.8)
    np.testing.assert_allclose(got, [lower, upper], rtol=1e-5)
    again = RandomizedPriorRegressor(**FAST).fit(X, y).predict_interval(x, confidence=0.8)
    np.testing.assert_array_equal(again, got)

    other = RandomizedPriorRegressor(**{**FAST, "random_state": 1}).fit(X, y)
    assert other._calibration.n_rows == 25
    assert set(_kept_rows(other, X, y)[0]) != set(kept)
    # Which rows are eligible and kept depends on the bootstrap draws and the rows' content only
    # (not on training, nor on the order of the rows): the same rows, by content, from shuffled
    # data.
    order = np.random.default_rng(1).permutation(len(X))
    first = RandomizedPriorRegressor(**FAST).fit(X, y)
    shuffled = RandomizedPriorRegressor(**FAST).fit(X[order], y[order])
    assert sorted(_kept_rows(first, X, y)[0]) == sorted(
        order[_kept_rows(shuffled, X[order], y[order])[0]])


def _upper_quantile(values, w, alpha):
    """The weighted jackknife+ upper end of 1-D ``values``, by sorting: the smallest value with
    ``(1 - alpha) (sum(w) + 1)`` of the weight at or below it; infinity if there is none."""
    order = np.argsort(values)
    cumulative = np.cumsum(w[order])
    needed = (1 - alpha) * (w.sum() + 1)
    hit = np.flatnonzero(cumulative >= needed - 1e-9)
    return np.asarray(values)[order][hit[0]] if len(hit) else np.inf


def _by_hand(reg, X, y, x, alpha, weight=None, studentized=False):
    """The weighted jackknife+ interval at one point, from members, in-bag counts and noise."""
    members, at_x = reg.predict_members(X), reg.predict_members(x)[:, 0]
    out = reg.in_bag_counts_ == 0
    rows = np.flatnonzero(out.any(axis=1))
    weight = np.ones(len(y)) if weight is None else weight
    w = weight[rows] / weight[rows].mean()
    scale, noise = reg.epistemic_scale_[0], reg.noise_[0]
    low_values, high_values = [], []
    for i in rows:
        m = members[out[i], i]
        k = len(m)
        centre_x, centre_i = at_x[out[i]].mean(), m.mean()
        residual = abs(y[i] - centre_i)
        if studentized:
            def s(values, k=k):
                spread = values.var(ddof=1) * (1 + 1 / k - 1 / len(members)) if k >= 2 else 0.0
                return np.sqrt(scale * spread + noise)
            half = residual / s(m) * s(at_x[out[i]])
        else:
            half = residual
        low_values.append(centre_x - half)
        high_values.append(centre_x + half)

    return (-_upper_quantile(-np.asarray(low_values), w, alpha),
            _upper_quantile(np.asarray(high_values), w, alpha))


@pytest.mark.filterwarnings("ignore:.*have an exact copy")
@pytest.mark.parametrize("copies", [False, True])
@pytest.mark.parametrize("studentized", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_weighted_and_studentized_intervals_by_hand(weighted, studentized, copies):
    X, y = heavy_tailed(60, 9)
    if copies:  # by index, whatever the copies' draws (the by-hand interval reads the counts)
        X[40:], y[40:] = X[:20], y[:20]
    weight = np.linspace(0.2, 3.0, 60) if weighted else None
    reg = RandomizedPriorRegressor(**FAST).fit(X, y, sample_weight=weight)
    x = np.array([[-0.4, 0.7]])
    method = "conformal-studentized" if studentized else "conformal"
    lower, upper = reg.predict_interval(x, confidence=0.8, method=method)
    np.testing.assert_allclose([lower[0], upper[0]], _by_hand(reg, X, y, x, 0.2, weight, studentized),
                               rtol=1e-4)


def test_intervals_are_the_same_in_small_chunks(monkeypatch):
    X, y = heavy_tailed(80, 10)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    whole = [reg.predict_interval(X, method=m) for m in ("conformal", "conformal-studentized")]
    monkeypatch.setattr(_jackknife_search, "CHUNK_ELEMENTS", 200)  # a few test points per chunk
    monkeypatch.setattr(_jackknife_search, "_SMALL_SEARCH", 0)  # and the pruned search, not one pass
    object.__setattr__(reg._fitted, "rows", 7)  # and small batches of member outputs
    chunked = [reg.predict_interval(X, method=m) for m in ("conformal", "conformal-studentized")]
    # Member outputs are float32: batches of another size round differently, by about 1e-7.
    np.testing.assert_allclose(np.asarray(chunked), np.asarray(whole), rtol=1e-6)


def _full_search(members, residual, average, weight, alpha):
    """Every calibration row at every test point, sorted: the reference for the pruned search."""
    centre = average.T @ members  # (n, m)
    weight = np.ones(len(residual)) if weight is None else weight
    return (np.array([-_upper_quantile(residual - c, weight, alpha) for c in centre.T]),
            np.array([_upper_quantile(c + residual, weight, alpha) for c in centre.T]))


@pytest.mark.parametrize("n_members", [7, 60])  # 60: bands that hold several counts
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [0.05, 0.2, 0.5])
def test_pruned_search_is_the_full_jackknife_plus(weighted, alpha, n_members):
    # The pruned search evaluates only the rows that can reach each end; it must give exactly
    # the ends of the full search, for test points where the members agree (few rows) and where
    # they disagree wildly (every row), with tied residuals, and in small chunks.
    rng = np.random.default_rng(int(alpha * 100) + weighted + n_members)
    n, K, m = 400, n_members, 300
    out = rng.random((n, K)) < 0.37
    out[~out.any(axis=1), 0] = True
    average = out / out.sum(axis=1, keepdims=True)
    residual = np.round(np.abs(rng.standard_t(2, size=n)), 1)  # many ties
    average = np.ascontiguousarray(average.T)
    weight = rng.uniform(0.1, 3.0, size=n) if weighted else None
    if weighted:
        weight /= weight.mean()
    spread = np.geomspace(0.01, 30.0, m)  # from agreement to wild disagreement
    members = rng.normal(size=m) + spread * rng.normal(size=(K, m))
    expected = _full_search(members, residual, average, weight, alpha)
    # Pruned in one chunk, in small chunks, with groups of test points cut wherever their
    # prefix lengths halve and never cut, and the one-pass search of small problems.
    # A first pass over exactly `rank` rows (the loosest floor) too.
    names = ("CHUNK_ELEMENTS", "_SMALL_SEARCH", "_MERGE_ELEMENTS", "_HEAD_FACTOR")
    for settings in ((500_000, 0, 10_000, 1.5), (50, 0, 10_000, 1.5), (500_000, 0, 0, 1.5),
                     (500_000, 0, 10**12, 1.5), (500_000, 0, 10_000, 1.0),
                     (500_000, n * m, 10_000, 1.5)):
        saved = [getattr(_jackknife_search, name) for name in names]
        for name, value in zip(names, settings, strict=True):
            setattr(_jackknife_search, name, value)
        try:
            # Rows by |R_i| alone (spread 0), ordered for members of a typical spread (rows
            # left out by few members first) below, near and above these members', and taken
            # as they come (said to be in order while they are not: slower, never wrong).
            rows = [_jackknife_search.Rows(residual, average, weight, spread)
                    for spread in (0.0, 0.3, 3.0, 300.0)]
            rows.append(_jackknife_search.Rows(residual, average, weight, in_order=True))
            for these in rows:
                got = _jackknife_search.absolute_bounds(members, these, alpha)
                # The same row chosen at every point: equal up to the summation order.
                np.testing.assert_allclose(got[0], expected[0], rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=1e-12)
        finally:
            for name, value in zip(names, saved, strict=True):
                setattr(_jackknife_search, name, value)


@pytest.mark.parametrize("weighted", [False, True])
def test_pruned_search_where_rows_reach_their_bound(weighted, monkeypatch):
    # The worst case for the bound: every row is left out by exactly the members that predict
    # highest at the test points, so its out-of-bag mean is the mean of its count's largest
    # outputs. A band bounded by anything but its smallest count loses rows here.
    monkeypatch.setattr(_jackknife_search, "_SMALL_SEARCH", 0)
    rng = np.random.default_rng(5 + weighted)
    n, K, m = 600, 60, 80
    counts = rng.integers(12, 45, size=n)
    out = np.arange(K)[None, :] < counts[:, None]  # the first c_i members
    average = np.ascontiguousarray((out / counts[:, None]).T)
    residual = np.abs(rng.standard_normal(n))
    weight = rng.uniform(0.1, 3.0, size=n) if weighted else None
    if weighted:
        weight /= weight.mean()
    # Member outputs that fall along the members, steeply at some points, gently at others.
    members = -np.arange(K)[:, None] * np.geomspace(0.001, 1.0, m) + rng.normal(size=m)
    for alpha in (0.05, 0.3):
        expected = _full_search(members, residual, average, weight, alpha)
        for spread in (0.0, 0.5):
            got = _jackknife_search.absolute_bounds(
                members, _jackknife_search.Rows(residual, average, weight, spread), alpha)
            np.testing.assert_allclose(got[1], expected[1], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(got[0], expected[0], rtol=1e-12, atol=1e-12)


def test_pruned_search_memory_stays_bounded(monkeypatch):
    # Every product the search forms holds at most CHUNK_ELEMENTS values, or one test point's
    # rows: the head rows' means were once formed for every test point at once (624 MB for
    # 26,000 test points against 20,000 rows).
    X, y = heavy_tailed(300, 13)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    expected = reg.predict_interval(np.r_[X, 30 * X[:20]])
    sizes = []
    product = _jackknife_search._product

    def recording(a, b):
        out = product(a, b)
        sizes.append(out.size)
        return out

    monkeypatch.setattr(_jackknife_search, "_SMALL_SEARCH", 0)
    monkeypatch.setattr(_jackknife_search, "CHUNK_ELEMENTS", 500)
    monkeypatch.setattr(_jackknife_search, "_product", recording)
    got = reg.predict_interval(np.r_[X, 30 * X[:20]])
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6)
    assert max(sizes) <= max(500, reg._calibration.n_rows) and len(sizes) > 4


def test_pruned_search_in_float32_matches_float64(monkeypatch):
    monkeypatch.setattr(_jackknife_search, "_SMALL_SEARCH", 0)
    X, y = heavy_tailed(300, 11)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    calibration, fitted = reg._calibration, reg._fitted
    X_new = np.r_[X[:50], 40 * X[:10]]  # far away too, where every row can matter
    pieces = {dtype: calibration.intervals(fitted.batches(X_new), 0.1, "absolute",
                                           reg.epistemic_scale_, reg._noise, dtype)
              for dtype in (np.float32, np.float64)}
    for (_, low32, high32), (_, low64, high64) in zip(pieces[np.float32], pieces[np.float64],
                                                      strict=True):
        np.testing.assert_allclose(low32, low64, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(high32, high64, rtol=1e-5, atol=1e-5)


def test_predict_interval_keeps_nothing_in_the_pickle():
    # What the search reads (K floats a row) is kept in memory after the first call, never in
    # the pickle: a saved model stays O(n x t) and predicts the same when loaded.
    X, y = heavy_tailed(200, 12)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    size = len(pickle.dumps(reg._calibration))
    first = reg.predict_interval(X[:5])
    assert "_cache" in vars(reg._calibration)
    assert len(pickle.dumps(reg._calibration)) == size  # O(n x t) stays O(n x t)
    again = pickle.loads(pickle.dumps(reg))
    assert "_cache" not in vars(again._calibration)
    np.testing.assert_array_equal(np.asarray(again.predict_interval(X[:5])), np.asarray(first))


def test_pruned_search_of_a_fitted_model_is_the_one_pass_search(monkeypatch):
    # Rows are stored in the search's order for the first target and sorted for the others;
    # either way the pruned search must give the ends of the search over every row, near the
    # data and far from it, for every target, and for a model saved before that order was kept
    # (its rows are then read as if ordered by |R_i| alone).
    X, y = heavy_tailed(300, 14)
    Y = np.c_[y, -3 * y + X[:, 0] ** 2, np.abs(y)]
    X_new = np.r_[X[:60], 8 * X[:15]]
    reg = RandomizedPriorRegressor(**FAST).fit(X, Y)
    assert np.all(reg._calibration.typical_std > 0)
    monkeypatch.setattr(_jackknife_search, "_SMALL_SEARCH", 10**12)
    every_row = np.asarray(reg.predict_interval(X_new, confidence=0.9))
    monkeypatch.setattr(_jackknife_search, "_SMALL_SEARCH", 0)
    for model in (reg, pickle.loads(pickle.dumps(reg))):
        np.testing.assert_allclose(np.asarray(model.predict_interval(X_new, confidence=0.9)),
                                   every_row, rtol=1e-6, atol=1e-6)
    # As a model saved before typical_std was kept: its rows in another order (by index).
    old = pickle.loads(pickle.dumps(reg))
    calibration = old._calibration
    shuffle = np.random.default_rng(0).permutation(calibration.n_rows)
    old._calibration = dataclasses.replace(
        calibration, residuals=calibration.residuals[shuffle],
        scales=calibration.scales[shuffle], out_of_bag=calibration.out_of_bag[shuffle],
        weight=calibration.weight[shuffle])
    object.__getattribute__(old._calibration, "__dict__").pop("typical_std")
    old = pickle.loads(pickle.dumps(old))
    assert old._calibration.typical_std is None  # the field's default
    np.testing.assert_allclose(np.asarray(old.predict_interval(X_new, confidence=0.9)),
                               every_row, rtol=1e-6, atol=1e-6)
    rows = old._calibration._absolute_rows(np.float32)[0]
    assert not rows.in_order  # sorted at its first call, so the search still prunes
    assert np.all(np.diff(rows.ordered().residual) <= 0)


def test_too_few_rows_for_the_confidence_give_an_infinite_bound():
    X, y = heavy_tailed(12, 0)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    with pytest.warns(UserWarning, match="conformal interval is infinite.*at least 99"):
        lower, upper = reg.predict_interval(X[:3], confidence=0.99)
    assert np.isinf(lower).all() and np.isinf(upper).all()
    assert (np.sign(lower) == -1).all() and (np.sign(upper) == 1).all()


# ----------------------------------------------------------------------------- shapes and options
def test_shapes_dtypes_and_the_gaussian_interval():
    X, y = heavy_tailed(80, 1)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    for method in ("conformal", "conformal-studentized", "gaussian"):
        lower, upper = reg.predict_interval(X[:7], method=method)
        assert lower.shape == upper.shape == (7,) and lower.dtype == upper.dtype == np.float64
        assert np.all(lower < upper)
    mean, std = reg.predict(X[:7], return_std=True)
    lower, upper = reg.predict_interval(X[:7], confidence=0.8, method="gaussian")
    np.testing.assert_allclose(upper - mean, norm.ppf(0.9) * std)
    np.testing.assert_allclose(mean - lower, norm.ppf(0.9) * std)
    # Higher confidence, wider interval.
    narrow = np.subtract(*reg.predict_interval(X[:7], confidence=0.5)[::-1])
    wide = np.subtract(*reg.predict_interval(X[:7], confidence=0.9)[::-1])
    assert np.all(wide >= narrow)


def test_multi_output_intervals_are_per_target():
    X, y = heavy_tailed(80, 2)
    Y = np.c_[y, 100 * y + 5]
    reg = RandomizedPriorRegressor(**FAST).fit(X, Y)
    for method in ("conformal", "conformal-studentized", "gaussian"):
        lower, upper = reg.predict_interval(X[:5], method=method)
        assert lower.shape == upper.shape == (5, 2)
        assert np.all((upper - lower)[:, 1] > 10 * (upper - lower)[:, 0])


def test_sample_weight_scales_and_zero_weights():
    X, y = heavy_tailed(80, 3)
    reg = RandomizedPriorRegressor(**FAST)
    weight = np.ones(80)
    weight[:10] = 0.0  # rows of weight zero are not calibration rows
    a = reg.fit(X, y, sample_weight=weight).predict_interval(X[:5])
    assert reg._calibration.n_rows <= 70
    # Weights count relative to their mean: scaling them all down changes nothing. (Scaling them
    # up would draw more rows per resample, as integer weights do: see the next test.)
    b = reg.fit(X, y, sample_weight=1e-6 * weight).predict_interval(X[:5])
    np.testing.assert_allclose(a, b, rtol=1e-6)
    uneven = np.linspace(0.5, 2.0, 80)
    lower, upper = reg.fit(X, y, sample_weight=uneven).predict_interval(X[:5])
    assert np.all(lower < upper) and np.isfinite([lower, upper]).all()


def test_weights_that_draw_every_row_leave_no_calibration_rows():
    X, y = heavy_tailed(40, 3)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y, sample_weight=np.full(40, 1e6))
    with pytest.raises(ValueError, match="no training row is out of bag for any member"):
        reg.predict_interval(X[:2])


def test_uses_what_was_fitted_and_survives_pickling():
    X, y = heavy_tailed(60, 4)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    before = reg.predict_interval(X[:5]), reg.predict_interval(X[:5], method="gaussian")
    reg.set_params(bootstrap=False, n_estimators=3, prior_scale=0.0)
    again = pickle.loads(pickle.dumps(reg))
    for est in (reg, again):
        after = est.predict_interval(X[:5]), est.predict_interval(X[:5], method="gaussian")
        np.testing.assert_array_equal(np.asarray(after), np.asarray(before))


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, np.nan, [0.9], "0.9", True, None])
def test_bad_confidence_is_a_clear_error(confidence):
    X, y = heavy_tailed(40, 5)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="confidence must be a number strictly between 0 and 1"):
        reg.predict_interval(X[:2], confidence=confidence)


def test_errors_for_method_and_bootstrap_false():
    X, y = heavy_tailed(40, 6)
    reg = RandomizedPriorRegressor(**dict(FAST, bootstrap=False)).fit(X, y)
    with pytest.raises(ValueError, match="bootstrap=False.*method='gaussian'"):
        reg.predict_interval(X[:2])
    assert np.all(np.subtract(*reg.predict_interval(X[:2], method="gaussian")[::-1]) > 0)
    with pytest.raises(ValueError, match="method must be"):
        reg.predict_interval(X[:2], method="jackknife")


def test_gaussian_interval_checks_feature_names_once(recwarn):
    X, y = heavy_tailed(60, 8)
    frame = pd.DataFrame(X, columns=["a", "b"])
    reg = RandomizedPriorRegressor(**FAST).fit(frame, y)
    lower, upper = reg.predict_interval(frame[:5], method="gaussian")
    assert not [w for w in recwarn if "feature names" in str(w.message)]
    mean, std = reg.predict(frame[:5], return_std=True)
    np.testing.assert_allclose(upper - lower, 2 * norm.ppf(0.975) * std, rtol=1e-12)


def test_infinite_interval_warning_keeps_the_confidence_as_given():
    X, y = heavy_tailed(12, 0)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    with pytest.warns(UserWarning, match=r"The 0\.9999999 conformal interval is infinite"):
        reg.predict_interval(X[:2], confidence=0.9999999)


# ----------------------------------------------------------------------------- sample_y
@pytest.mark.parametrize("random_state", [1.5, True, "a", -1, 2**32, np.random.default_rng(0)])
def test_sample_y_bad_random_state_is_a_clear_error(random_state):
    X, y = heavy_tailed(40, 11)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="random_state must be None, an int in"):
        reg.sample_y(X[:3], 2, random_state=random_state)


def test_sample_y_never_draws_from_the_global_generator():
    X, y = heavy_tailed(40, 11)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    state = np.random.get_state()  # noqa: NPY002
    a, b = reg.sample_y(X[:3], 4, random_state=None), reg.sample_y(X[:3], 4, random_state=None)
    assert not np.array_equal(a, b)  # fresh entropy each time
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    np.testing.assert_array_equal(reg.sample_y(X[:3], 4), reg.sample_y(X[:3], 4, random_state=0))


def test_sample_y_shapes_and_reproducibility():
    X, y = heavy_tailed(60, 7)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    assert reg.sample_y(X[:4]).shape == (4, 1)
    assert reg.sample_y(X[:4], n_samples=3).shape == (4, 3)
    np.testing.assert_array_equal(reg.sample_y(X[:4], 5, random_state=1),
                                  reg.sample_y(X[:4], 5, random_state=1))
    multi = RandomizedPriorRegressor(**FAST).fit(X, np.c_[y, -y])
    assert multi.sample_y(X[:4], n_samples=3).shape == (4, 2, 3)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        reg.sample_y(X[:4], n_samples=0)


@pytest.mark.parametrize("loss", ["squared_error", "gaussian_nll"])
def test_sample_y_moments_approach_predict(loss):
    X, y = heavy_tailed(80, 8)
    reg = RandomizedPriorRegressor(**dict(FAST, loss=loss, calibrate_epistemic=True)).fit(X, y)
    grid = np.c_[np.linspace(-3, 3, 7), np.zeros(7)]  # in and far outside the data
    draws = reg.sample_y(grid, n_samples=4000, random_state=0)
    mean, std = reg.predict(grid, return_std=True)
    # Members are picked in balanced rounds (500 draws each of 8): what is left is the noise's
    # sampling error; the std matches predict's ddof=1 spread plus noise.
    np.testing.assert_allclose(draws.std(axis=1), std, rtol=0.06)
    assert np.all(np.abs(draws.mean(axis=1) - mean) < 0.1 * std)


def test_balanced_picks_use_every_member_equally_and_each_draw_uniformly():
    from sklearn_rpf.ensemble._uncertainty import balanced_picks

    rng = np.random.default_rng(0)
    picks = balanced_picks(5, 23, rng)
    counts = np.bincount(picks, minlength=5)
    assert counts.sum() == 23 and set(counts) == {4, 5}  # 4 rounds, then 3 distinct members
    # Over many calls every position is uniform over the members (no member favoured first).
    first = np.array([balanced_picks(5, 7, rng)[:3] for _ in range(4000)])
    for position in first.T:
        frequencies = np.bincount(position, minlength=5) / len(position)
        np.testing.assert_allclose(frequencies, 0.2, atol=0.025)
    assert len({int(balanced_picks(4, 1, rng)[0]) for _ in range(200)}) == 4  # one draw: any


def test_rows_duplicated_by_mistake_are_named():
    # A data set concatenated three times: by index, most rows are out of bag for members that
    # drew their copies, so for new data the interval is too narrow (benchmarks.duplicated_rows:
    # 0.821 coverage at 95% against 0.951 deduplicated). predict_interval says so; the Gaussian interval does not
    # depend on it and stays quiet, and so do data without copies.
    X, y = heavy_tailed(40, 0)
    X3, y3 = np.tile(X, (3, 1)), np.tile(y, 3)
    tripled = RandomizedPriorRegressor(**FAST).fit(X3, y3)
    assert tripled._calibration.repeated > 0.9
    for method in ("conformal", "conformal-studentized"):
        with pytest.warns(UserWarning, match="have an exact copy.*drop the copies"):
            tripled.predict_interval(X[:3], method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tripled.predict_interval(X[:3], method="gaussian")
        clean = RandomizedPriorRegressor(**FAST).fit(X, y)
        assert clean._calibration.repeated == 0.0
        clean.predict_interval(X[:3])


def test_copies_of_zero_weight_and_streams_do_not_warn():
    # Copies that carry no weight are not training rows of the calibration; a stream draws copies
    # together (by content), so for it copies never matter.
    X, y = heavy_tailed(40, 1)
    X3, y3 = np.tile(X, (3, 1)), np.tile(y, 3)
    weight = np.r_[np.ones(40), np.zeros(80)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weighted = RandomizedPriorRegressor(**FAST).fit(X3, y3, sample_weight=weight)
        assert weighted._calibration.repeated == 0.0
        weighted.predict_interval(X[:3])
        stream = RandomizedPriorRegressor(**FAST)
        for chunk in range(3):
            stream.partial_fit(X3[40 * chunk:40 * (chunk + 1)], y3[40 * chunk:40 * (chunk + 1)])
        assert stream._calibration.repeated == 0.0
        stream.predict_interval(X[:3])


@pytest.mark.filterwarnings("ignore:.*have an exact copy")
def test_the_noise_fit_still_pools_copies():
    # predict's std is fitted on the rows' out-of-bag members with copies pooled (a member that
    # drew a copy has seen the row): recomputed here from the members and the pooled sets.
    from sklearn_rpf.ensemble._bootstrap import pooled_in_bag, row_hashes
    from sklearn_rpf.ensemble._uncertainty import OutOfBag, fit_noise

    X, y = heavy_tailed(60, 2)
    X[40:], y[40:] = X[:20], y[:20]
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    hashes = row_hashes(X, y[:, None])
    pooled = ~pooled_in_bag(reg.in_bag_counts_ > 0, hashes, np.argsort(hashes, kind="stable"))
    assert np.any(pooled != (reg.in_bag_counts_ == 0))
    y_norm = reg._fitted.standardizer.transform_y(y[:, None])
    oob = OutOfBag.from_batches(reg._fitted.batches(X), pooled, 1)
    np.testing.assert_allclose(fit_noise(y_norm, oob, np.ones(60))[1], reg._noise, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:.*have an exact copy")
def test_copies_under_the_row_cap_are_by_index(monkeypatch):
    # With a cap, the kept rows' residuals are still taken by index, from the members.
    X, y = heavy_tailed(60, 3)
    X[30:], y[30:] = X[:30], y[:30]
    monkeypatch.setattr(_conformal, "MAX_ROWS", 25)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    kept, eligible, _, _ = _kept_rows(reg, X, y)  # residuals recomputed by index
    assert reg._calibration.n_rows == 25 and len(eligible) > 25
    assert len(set(map(tuple, np.c_[X, y][kept]))) >= 13  # 25 rows matched, copies among them


def test_a_model_pickled_before_repeated_was_kept_still_predicts():
    X, y = heavy_tailed(40, 4)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    expected = reg.predict_interval(X[:3])
    object.__getattribute__(reg._calibration, "__dict__").pop("repeated")  # as an old pickle
    restored = pickle.loads(pickle.dumps(reg))
    assert restored._calibration.repeated == 0.0  # the field's default
    np.testing.assert_array_equal(restored.predict_interval(X[:3]), expected)


def test_sample_y_takes_numpy_integers():
    # np.uint8(2) overflowed the batch arithmetic (4,000,000 rows' worth in uint8).
    X, y = heavy_tailed(40, 5)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    for n in (np.uint8(2), np.int16(300)):
        np.testing.assert_array_equal(reg.sample_y(X[:3], n_samples=n, random_state=1),
                                      reg.sample_y(X[:3], n_samples=int(n), random_state=1))
