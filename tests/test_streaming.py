"""partial_fit: the online Poisson bootstrap, chunk invariance, calibration, errors."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback

from sklearn_rpf import RandomizedPriorRegressor
from sklearn_rpf.ensemble._bootstrap import row_hashes
from sklearn_rpf.ensemble._streaming import CalibrationSample, poisson_counts
from sklearn_rpf.metrics import gaussian_nll

FAST = dict(n_estimators=5, lr=1e-2, hidden_layer_sizes=(16,), batch_size=64, random_state=0)


def data(n=600, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)


def stream(reg, X, y, chunk, passes=1):
    for _ in range(passes):
        for start in range(0, len(X), chunk):
            reg.partial_fit(X[start:start + chunk], y[start:start + chunk])
    return reg


def test_poisson_counts_do_not_depend_on_the_chunking_or_order():
    X, y = data()
    whole = poisson_counts(row_hashes(X, y), seed=3, n_members=8)
    chunks = np.concatenate([poisson_counts(row_hashes(X[s:s + 70], y[s:s + 70]), 3, 8)
                             for s in range(0, 600, 70)])
    np.testing.assert_array_equal(whole, chunks)
    order = np.random.default_rng(1).permutation(600)
    np.testing.assert_array_equal(poisson_counts(row_hashes(X[order], y[order]), 3, 8),
                                  whole[order])
    # Poisson(1): mean 1, P(0) = 1/e, and members differ.
    assert abs(whole.mean() - 1) < 0.05 and abs((whole == 0).mean() - np.exp(-1)) < 0.03
    assert not np.array_equal(whole[:, 0], whole[:, 1])
    assert not np.array_equal(whole, poisson_counts(row_hashes(X, y), seed=4, n_members=8))


def test_calibration_sample_is_the_same_however_the_rows_arrive():
    X, y = data()
    hashes = row_hashes(X, y)
    one, many = CalibrationSample(0, capacity=100), CalibrationSample(0, capacity=100)
    one.add(X, y, np.ones(600), hashes)
    for start in range(0, 600, 45):
        rows = slice(start, start + 45)
        many.add(X[rows], y[rows], np.ones(len(y[rows])), hashes[rows])
    assert len(one.hashes) == len(many.hashes) == 100
    assert set(one.hashes.tolist()) == set(many.hashes.tolist())


def test_partial_fit_then_predict_with_std_and_intervals():
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST)
    reg.partial_fit(X[:200], y[:200])
    for method in ("conformal", "gaussian"):
        lower, upper = reg.predict_interval(X[:5], method=method)
        assert np.all(lower < upper)
    mean, std = reg.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5,) and np.all(std > 0)
    stream(reg, X[200:], y[200:], chunk=100, passes=3)
    assert reg.n_samples_seen_ == 200 + 3 * 400 and reg.n_epochs_ == 1 + 12
    assert not hasattr(reg, "in_bag_counts_")
    X_test, y_test = data(n=400, seed=1)
    mean, std = reg.predict(X_test, return_std=True)
    assert reg.score(X_test, y_test) > 0.8
    lower, upper = reg.predict_interval(X_test, confidence=0.9)
    assert 0.8 < np.mean((lower <= y_test) & (y_test <= upper)) < 0.99
    again = pickle.loads(pickle.dumps(reg))  # a streamed model pickles and goes on streaming
    np.testing.assert_array_equal(again.predict(X_test), reg.predict(X_test))
    again.partial_fit(X[:100], y[:100])


def test_streaming_matches_fit_with_the_same_passes():
    X, y = data(n=3000)
    X_test, y_test = data(n=1000, seed=2)
    kw = dict(FAST, batch_size=128)
    fitted = RandomizedPriorRegressor(max_epochs=3, **kw).fit(X, y)
    streamed = stream(RandomizedPriorRegressor(**kw), X, y, chunk=500, passes=3)
    nll_fit = gaussian_nll(y_test, *fitted.predict(X_test, return_std=True))
    nll_stream = gaussian_nll(y_test, *streamed.predict(X_test, return_std=True))
    assert abs(nll_fit - nll_stream) < 0.15, (nll_fit, nll_stream)


def test_a_long_stream_keeps_a_bounded_log(monkeypatch):
    # One log entry per call, never dropped, made memory, pickles and the time per call grow
    # without bound (3.8 -> 9.9 ms over 24,000 calls); the stream keeps its last calls' entries.
    from sklearn_rpf.ensemble import _streaming

    monkeypatch.setattr(_streaming, "HISTORY_KEPT", 5)
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST)
    for start in range(0, 400, 50):
        reg.partial_fit(X[start:start + 50], y[start:start + 50])
    assert len(reg.ensemble_.history) == 5 and reg.n_samples_seen_ == 400
    assert [row["epoch"] for row in reg.ensemble_.history] == [4, 5, 6, 7, 8]  # call numbers
    # A call that fails after training leaves the log as it was, cap or not.
    before = list(reg.ensemble_.history)
    from sklearn_rpf.ensemble import _regressor

    def failing(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_regressor, "calibrate", failing)
    with pytest.raises(KeyboardInterrupt):
        reg.partial_fit(X[:50], y[:50])
    assert list(reg.ensemble_.history) == before


def test_a_diverging_stream_is_reported():
    # One epoch per call: the warning compares each call's loss with the stream's first.
    X, y = data()
    reg = RandomizedPriorRegressor(**dict(FAST, lr=30.0, batch_size=None))
    with pytest.warns(ConvergenceWarning, match="Training diverged"):
        for start in range(0, 600, 20):
            reg.partial_fit(X[start:start + 20], y[start:start + 20])


def test_partial_fit_is_reproducible():
    X, y = data()
    a = stream(RandomizedPriorRegressor(**FAST), X, y, chunk=150)
    b = stream(RandomizedPriorRegressor(**FAST), X, y, chunk=150)
    np.testing.assert_array_equal(a.predict(X, return_std=True), b.predict(X, return_std=True))


def test_partial_fit_errors_are_clear_and_leave_the_model_intact():
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).partial_fit(X[:100], y[:100])
    before = reg.predict(X[:5], return_std=True)
    with pytest.raises(ValueError, match="X has 2 features, but RandomizedPriorRegressor is expecting 3"):
        reg.partial_fit(X[:50, :2], y[:50])
    with pytest.raises(ValueError, match="y has 2 target"):
        reg.partial_fit(X[:50], np.c_[y[:50], y[:50]])
    fitted = RandomizedPriorRegressor(**dict(FAST, max_epochs=1)).fit(X[:50], np.c_[y, y][:50])
    with pytest.raises(ValueError, match="trained on 2 \\(2-D\\) by its first fit or partial_fit"):
        fitted.partial_fit(X[:50], y[:50])  # the targets came from fit, not from partial_fit
    reg.set_params(hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match="hidden_layer_sizes changed from"):
        reg.partial_fit(X[:50], y[:50])
    reg.set_params(hidden_layer_sizes=(16,), verbose=0)  # back as built: streaming goes on
    np.testing.assert_array_equal(reg.predict(X[:5], return_std=True), before)
    with pytest.raises(ValueError, match="NaN"):
        reg.partial_fit(np.r_[X[:10], np.full((1, 3), np.nan)], y[:11])
    np.testing.assert_array_equal(reg.predict(X[:5], return_std=True), before)
    reg.partial_fit(X[100:200], y[100:200])
    assert reg.n_samples_seen_ == 200


def test_partial_fit_after_fit_continues_and_fit_restarts():
    X, y = data()
    reg = RandomizedPriorRegressor(max_epochs=5, **FAST).fit(X[:300], y[:300])
    first = reg.predict(X[:5])
    reg.partial_fit(X[300:], y[300:])
    assert reg.n_samples_seen_ == 300 and not np.allclose(reg.predict(X[:5]), first)
    reg.set_params(n_estimators=3)
    with pytest.raises(ValueError, match="n_estimators changed from 5 to 3"):
        reg.partial_fit(X[300:], y[300:])
    reg.fit(X, y)  # fit starts over, with the new parameters
    assert not hasattr(reg, "n_samples_seen_") and len(reg.estimators_) == 3
    assert clone(reg).get_params() == reg.get_params()


class FailsAtBatch(__import__("skorch").callbacks.Callback):
    def __init__(self, calls_before=1, batch=3):
        self.calls_before, self.batch = calls_before, batch

    def on_train_begin(self, net, **kwargs):
        self.calls_ = getattr(self, "calls_", 0) + 1
        self.batches_ = 0

    def on_batch_end(self, net, training=False, **kwargs):
        self.batches_ += training
        if self.calls_ > self.calls_before and self.batches_ == self.batch:
            raise KeyboardInterrupt  # as if Ctrl-C hit in the middle of the second chunk


def test_a_call_interrupted_mid_training_is_undone_exactly():
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST, net_params={"callbacks": [("f", FailsAtBatch())]})
    reg.partial_fit(X[:200], y[:200])
    before = reg.predict(X, return_std=True)
    with pytest.raises(KeyboardInterrupt):
        reg.partial_fit(X[200:400], y[200:400])
    np.testing.assert_array_equal(reg.predict(X, return_std=True), before)
    assert reg.n_samples_seen_ == 200 and reg.n_epochs_ == 1
    reg.set_params(net_params=None)  # a parameter change: not allowed mid-stream
    with pytest.raises(ValueError, match="net_params changed"):
        reg.partial_fit(X[200:400], y[200:400])


def test_a_retried_call_equals_a_clean_run():
    X, y = data()
    clean = stream(RandomizedPriorRegressor(**FAST), X[:400], y[:400], chunk=200)
    failing = FailsAtBatch()
    reg = RandomizedPriorRegressor(**FAST, net_params={"callbacks": [("f", failing)]})
    reg.partial_fit(X[:200], y[:200])
    with pytest.raises(KeyboardInterrupt):
        reg.partial_fit(X[200:400], y[200:400])
    reg._stream.net.callbacks_[-1][1].calls_before = 10**6  # the cause of the failure is gone
    reg.partial_fit(X[200:400], y[200:400])
    np.testing.assert_allclose(reg.predict(X, return_std=True), clean.predict(X, return_std=True),
                               rtol=1e-6, atol=1e-7)


def test_stream_without_bootstrap_and_with_a_cosine_schedule():
    X, y = data()
    plain = stream(RandomizedPriorRegressor(**dict(FAST, bootstrap=False)), X, y, chunk=200)
    with pytest.raises(ValueError, match="bootstrap=False"):
        plain.predict_interval(X[:2])
    assert np.all(np.subtract(*plain.predict_interval(X[:2], method="gaussian")[::-1]) > 0)
    # A schedule cannot know where a stream ends: streams train at a constant rate.
    cosine = stream(RandomizedPriorRegressor(**dict(FAST, lr_schedule="cosine")), X, y, chunk=200)
    constant = stream(RandomizedPriorRegressor(**FAST), X, y, chunk=200)
    np.testing.assert_array_equal(cosine.predict(X), constant.predict(X))


def test_calibration_sample_holds_distinct_rows_over_passes():
    X, y = data()
    reg = stream(RandomizedPriorRegressor(**FAST), X, y, chunk=150, passes=3)
    assert len(reg._stream.sample.hashes) == len(np.unique(reg._stream.sample.hashes)) == 600
    assert reg._calibration.n_rows <= 600


def test_the_stream_keeps_its_own_copy_of_the_rows():
    # A reader that refills one buffer per chunk: the calibration sample must not be that buffer.
    X, y = data(60)
    own, reused = RandomizedPriorRegressor(**FAST), RandomizedPriorRegressor(**FAST)
    bx, by = np.empty((20, 3)), np.empty(20)
    for start in range(0, 60, 20):
        own.partial_fit(X[start:start + 20].copy(), y[start:start + 20].copy())
        bx[:], by[:] = X[start:start + 20], y[start:start + 20]
        reused.partial_fit(bx, by)
    np.testing.assert_array_equal(reused.noise_, own.noise_)
    np.testing.assert_array_equal(reused.predict_interval(X[:5]), own.predict_interval(X[:5]))


def test_parameters_written_differently_are_the_same_parameters():
    X, y = data(60)
    reg = RandomizedPriorRegressor(**dict(FAST, hidden_layer_sizes=[16], device=torch.device("cpu")))
    reg.partial_fit(X, y).set_params(hidden_layer_sizes=(16,), device="cpu").partial_fit(X, y)
    reg.set_params(hidden_layer_sizes=np.array([16]), device=torch.device("cpu"))
    reg.partial_fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes changed"):
        reg.set_params(hidden_layer_sizes=(16, 16)).partial_fit(X, y)


@pytest.mark.filterwarnings("ignore:Training diverged")  # one row after two: a noisy step
def test_one_row_and_no_target_get_clear_errors():
    X, y = data(10)
    with pytest.raises(ValueError, match="Found 1 sample, but the first fit or partial_fit"):
        RandomizedPriorRegressor(**FAST).partial_fit(X[:1], y[:1])
    reg = RandomizedPriorRegressor(**FAST).partial_fit(X[:2], y[:2])
    reg.partial_fit(X[2:3], y[2:3])  # later calls may have one row
    with pytest.raises(ValueError, match=r"y has no target column \(shape \(10, 0\)\)"):
        RandomizedPriorRegressor(**FAST).fit(X, np.empty((10, 0)))


def test_rows_fit_trained_on_stay_in_their_bags_when_streamed_again():
    # After fit, streaming fit's own rows again counted them out of bag for every member whose
    # Poisson count was 0, including members fit trained on them: training residuals then
    # calibrated the noise and the intervals (coverage 0.72-0.80 for 0.90 in a review).
    X, y = data(n=200)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    fit_in_bag = reg.in_bag_counts_ > 0  # by index: the rows are distinct
    reg.partial_fit(X, y)
    _, _, bag, _ = reg._stream.calibration_set()
    rows = {h: i for i, h in enumerate(row_hashes(X, y))}
    in_fit = fit_in_bag[[rows[h] for h in bag.hashes]]
    assert in_fit.any() and not np.any(in_fit & ~bag.in_bag)
    assert np.any(~bag.in_bag)  # rows neither fit nor the stream trained on stay out of bag
    new_X, new_y = data(n=200, seed=1)  # new rows: out of bag by their Poisson counts alone
    fresh = RandomizedPriorRegressor(**FAST).fit(X, y).partial_fit(new_X, new_y)
    _, _, new_bag, _ = fresh._stream.calibration_set()
    np.testing.assert_array_equal(new_bag.counts, poisson_counts(new_bag.hashes,
                                                                 fresh._stream.seed, 5))


def test_stream_honours_net_params_batch_size_and_validates_parameters():
    X, y = data(n=120)
    steps = []

    class CountSteps(Callback):
        def on_batch_end(self, net, training=False, **kwargs):
            steps.append(training)

    reg = RandomizedPriorRegressor(**{**FAST, "batch_size": None},
                                   net_params={"batch_size": 8, "callbacks": [CountSteps()]})
    reg.partial_fit(X, y)
    assert steps.count(True) == 15  # 120 rows in batches of 8 (the whole chunk before)
    assert not any(step is False for step in steps)  # no validation pass
    for bad in ({"n_jobs": 0}, {"verbose": "loud"}, {"n_estimators": 5.0}):
        reg.set_params(**bad)
        with pytest.raises(ValueError, match="parameter of RandomizedPriorRegressor must be"):
            reg.partial_fit(X, y)
        reg.set_params(**{key: FAST.get(key, {"n_jobs": None, "verbose": 0}.get(key))
                          for key in bad})


def test_early_stopping_is_fits_alone():
    X, y = data(n=120)
    stopping = RandomizedPriorRegressor(**FAST, early_stopping=True, n_iter_no_change=1)
    plain = RandomizedPriorRegressor(**FAST)
    for reg in (stopping, plain):
        stream(reg, X, y, chunk=40)
    np.testing.assert_array_equal(stopping.predict(X), plain.predict(X))
    assert "valid_loss" not in stopping.ensemble_.history[-1]
