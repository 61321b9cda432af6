"""benchmarks.interval_choice: the pooled variant it compares against is the calibration as fit
would have kept it with copies pooled."""

import numpy as np
import pytest

from benchmarks.interval_choice import POOLED, _interval, pooled_calibration
from sklearn_rpf import RandomizedPriorRegressor

FAST = dict(n_estimators=6, max_epochs=10, hidden_layer_sizes=(8,), random_state=3)


def data(copies):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = X[:, 0] + 0.3 * rng.normal(size=60)
    if copies:
        X[40:], y[40:] = X[:20], y[:20]
    return X, y


def test_without_copies_pooled_is_what_fit_kept():
    X, y = data(copies=False)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    pooled = pooled_calibration(reg, X, y, seed=3)
    for field in ("residuals", "scales", "out_of_bag", "weight"):
        np.testing.assert_array_equal(getattr(pooled, field), getattr(reg._calibration, field))


@pytest.mark.filterwarnings("ignore:.*have an exact copy")  # two thirds of the rows
def test_with_copies_pooled_leaves_fewer_members_and_restores_the_model():
    X, y = data(copies=True)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    shipped = reg._calibration
    pooled = pooled_calibration(reg, X, y, seed=3)
    members = lambda cal: np.unpackbits(cal.out_of_bag, axis=1).sum()  # noqa: E731
    assert members(pooled) < members(shipped)
    lower, upper = _interval(reg, X[:5], 0.9, POOLED, pooled)
    assert reg._calibration is shipped
    assert np.all(np.isfinite(lower)) and np.all(upper > lower)
    by_index = reg.predict_interval(X[:5], 0.9)
    assert not np.allclose(upper - lower, by_index[1] - by_index[0])


def test_compare_pooled_counts_cases_that_differ():
    from benchmarks.interval_choice import compare_pooled

    rows = [{"dataset": d, "confidence": c, "method": m, "score": score}
            for d, scores in (("a", (1.0, 1.0)), ("b", (1.0, 2.0)))
            for c in (0.9, 0.95) for m, score in zip(("conformal", POOLED), scores, strict=True)]
    line = compare_pooled(rows, ["a", "b"])
    assert "identical in 2 set x level cases" in line
    assert "the lower interval score in 2 of 2" in line


def test_duplicated_rows_benchmark_measures_each_layout():
    # The layouts, and one tiny measurement: every row tripled warns, its coverage is a share.
    from benchmarks.duplicated_rows import LAYOUTS, laid_out, measure

    X, y = np.arange(16.0).reshape(8, 2), np.arange(8.0)
    sizes = [len(laid_out(X, y, layout)[0]) for layout in LAYOUTS]
    assert sizes == [8, 12, 24]
    tiny = {k: v for k, v in FAST.items() if k != "random_state"}
    record = measure(40, 0, "all tripled", params=tiny)
    assert record["share"] == 1.0 and record["warned"]
    assert 0.0 <= record["coverage"] <= 1.0 and 0.0 <= record["coverage_pooled"] <= 1.0
