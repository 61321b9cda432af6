"""RandomizedPriorRegressor under hostile input: every failure is clear, nothing is half-done."""

import contextlib
import os
import pickle
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from joblib import parallel_config
from numpy_text import STRING_DTYPE, needs_string_dtype
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback
from torch import nn

from sklearn_rpf import RandomizedPriorRegressor

FAST = dict(n_estimators=4, max_epochs=20, lr=1e-2, hidden_layer_sizes=(16,), random_state=0)


def data(n=60, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X[:, 0] + np.sin(2 * X[:, 1]) + 0.1 * rng.normal(size=n)


# ----------------------------------------------------------------------------- failing fits
class FailsOnCall:
    """A fixed-function prior (or forward hook) that raises on its ``n``-th call."""

    def __init__(self, n, error=RuntimeError):
        self.n, self.calls, self.error = n, 0, error

    def __call__(self, x):
        self.calls += 1
        if self.calls == self.n:
            raise self.error("boom")
        return torch.zeros(len(x), 1, dtype=x.dtype)


class FailingNet(nn.Module):
    """A member network whose forward raises after a few training batches."""

    calls = 0

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        type(self).calls += 1
        if type(self).calls == 12:
            raise RuntimeError("boom")
        return self.linear(x)


class FailingOptimizer(torch.optim.Adam):
    steps = 0

    def step(self, closure=None):
        type(self).steps += 1
        if type(self).steps == 5:
            raise RuntimeError("boom")
        return super().step(closure)


class RaisesAtEpoch(Callback):
    def __init__(self, epoch=3, error=RuntimeError):
        self.epoch, self.error = epoch, error

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise self.error("boom")


def failing_configurations():
    yield "module", dict(module=FailingNet, vectorize=False), RuntimeError
    yield "prior", dict(prior=FailsOnCall(3), prior_scale=1.0), (RuntimeError, ValueError)
    yield "optimizer", dict(optimizer=FailingOptimizer), RuntimeError
    yield "callback", dict(net_params={"callbacks": [("x", RaisesAtEpoch())]}), RuntimeError
    yield "interrupt", dict(net_params={"callbacks": [("x", RaisesAtEpoch(3, KeyboardInterrupt))]}), \
        KeyboardInterrupt
    yield "interrupt-apart", dict(vectorize=False, net_params={
        "callbacks": [("x", RaisesAtEpoch(2, KeyboardInterrupt))]}), KeyboardInterrupt


@pytest.mark.parametrize("name, params, error", list(failing_configurations()),
                         ids=[c[0] for c in failing_configurations()])
def test_failed_fit_leaves_a_fresh_estimator_unfitted(name, params, error):
    FailingNet.calls = FailingOptimizer.steps = 0
    X, y = data()
    reg = RandomizedPriorRegressor(**{**FAST, **params})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not be vectorised"
        with pytest.raises(error):
            reg.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(reg)
    assert not [key for key in vars(reg) if key.endswith("_") or key.startswith("_")]


@pytest.mark.parametrize("name, params, error", list(failing_configurations()),
                         ids=[c[0] for c in failing_configurations()])
def test_failed_refit_keeps_the_previous_fit(name, params, error):
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    before = reg.predict(X, return_std=True)
    state = {key: value for key, value in vars(reg).items()}
    FailingNet.calls = FailingOptimizer.steps = 0
    reg.set_params(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(error):
            reg.fit(X, 1000 * y + 5e4)  # new target scaling: must not leak into predictions
    assert vars(reg).keys() == state.keys()
    assert all(vars(reg)[key] is value for key, value in state.items() if key.endswith("_"))
    np.testing.assert_array_equal(reg.predict(X, return_std=True), before)


def test_failed_refit_keeps_the_calibration_too():
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    before = reg.predict_interval(X[:5]), reg.sample_y(X[:5], 3)
    reg.set_params(net_params={"callbacks": [("x", RaisesAtEpoch())]})
    with pytest.raises(RuntimeError):
        reg.fit(X, y + 100)
    after = reg.predict_interval(X[:5]), reg.sample_y(X[:5], 3)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_interrupt_is_not_swallowed_as_a_short_fit():
    X, y = data()
    reg = RandomizedPriorRegressor(
        **dict(FAST, max_epochs=400, net_params={"callbacks": [("x", RaisesAtEpoch(5, KeyboardInterrupt))]}))
    with pytest.raises(KeyboardInterrupt):
        reg.fit(X, y)
    assert not hasattr(reg, "n_epochs_")


# ----------------------------------------------------------------------------- numeric range
def _quality(reg, X, y, y_scale=1.0):
    mean, std = reg.predict(X, return_std=True)
    assert np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()
    mean, std, y = mean / y_scale, std / y_scale, y / y_scale  # squares of 1e200 overflow
    return 1 - np.mean((mean - y) ** 2) / np.var(y), np.median(std)


@pytest.mark.parametrize("scale", [1e-30, 1e15, 1e40, 1e300])
def test_inputs_of_any_finite_magnitude(scale):
    X, y = data()
    fast = dict(FAST, max_epochs=80)  # enough steps to fit well: the test compares quality
    r2, std = _quality(RandomizedPriorRegressor(**fast).fit(X, y), X, y)
    # Standardised inside, the networks see inputs of unit scale whatever the units. (The rows'
    # content differs, so the bootstrap draws differ: same quality, not the same numbers.)
    r2_scaled, std_scaled = _quality(RandomizedPriorRegressor(**fast).fit(X * scale, y),
                                     X * scale, y)
    assert r2 > 0.8 and r2_scaled > r2 - 0.1
    assert 0.5 < std_scaled / std < 2


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_targets_of_any_finite_magnitude(scale):
    X, y = data()
    r2, std = _quality(RandomizedPriorRegressor(**FAST).fit(X, y), X, y)
    big = RandomizedPriorRegressor(**FAST).fit(X, y * scale)
    r2_big, std_big = _quality(big, X, y * scale, y_scale=scale)
    assert r2_big > r2 - 0.1 and 0.5 < std_big / std < 2


def test_inputs_beyond_the_networks_precision_are_a_clear_error():
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="too far from the training data.*float32"):
        reg.predict(X[:2] * 1e40)
    mean = RandomizedPriorRegressor(**dict(FAST, dtype="float64")).fit(X, y).predict(X[:2] * 1e40)
    assert np.isfinite(mean).all()  # float64 represents it: an (extreme) extrapolation, not NaN


def test_non_finite_prior_is_blamed_by_name():
    X, y = data()
    with pytest.raises(ValueError, match="prior returned NaN or infinity on the training data"):
        RandomizedPriorRegressor(prior=lambda t: t[:, :1] * np.nan, **FAST).fit(X, y)
    reg = RandomizedPriorRegressor(
        prior=lambda t: torch.where(t[:, :1] > 20, np.nan, 0.0), prior_scale=1.0, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="prior returned NaN or infinity for row 1"):
        reg.predict(np.r_[X[:1], np.full((1, 3), 100.0)])


def test_diverging_training_is_reported():
    X, y = data()
    with pytest.warns(ConvergenceWarning, match="Training diverged"):
        RandomizedPriorRegressor(**dict(FAST, lr=1e5)).fit(X, y)


@pytest.mark.parametrize("losses, diverged", [
    ([-1.46, -2.78, -3.72], False),  # a Gaussian NLL falling below zero: a fall
    ([0.2, 0.05], False),
    ([1.0, 9.0], False),
    ([1.0, 10.5], True),  # ended above ten times its start
    ([-1.0, 8.5], True),  # rose by more than nine times its size
])
def test_divergence_is_a_rise_whatever_the_sign_of_the_loss(losses, diverged):
    # "Ended above ten times the first loss" called a Gaussian NLL falling from -1.46 to -3.72
    # a divergence (a user's fit on nearly noiseless data, batch_size=1).
    from types import SimpleNamespace

    from sklearn_rpf.ensemble._training import _check_convergence

    net = SimpleNamespace(history=[{"train_loss": loss} for loss in losses])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _check_convergence(net)
    assert any("Training diverged" in str(w.message) for w in caught) == diverged


def test_divergence_messages_name_the_right_place():
    from types import SimpleNamespace

    from sklearn_rpf.ensemble._training import _check_convergence

    net = SimpleNamespace(history=[{"train_loss": loss} for loss in [1.0, 0.5, 0.4, np.nan]])
    with pytest.raises(ValueError, match="became nan at epoch 4"):
        _check_convergence(net)  # a fit: epochs counted from its first
    with pytest.raises(ValueError, match="became nan in this partial_fit call"):
        _check_convergence(net, start=3, reference=1.0)  # a stream's fourth call
    net = SimpleNamespace(history=[{"train_loss": 50.0}])
    with pytest.warns(ConvergenceWarning, match="rose from 1 in the stream's first partial_fit"):
        _check_convergence(net, reference=1.0)


def test_optimizers_without_weight_decay():
    X, y = data()
    reg = RandomizedPriorRegressor(**dict(FAST, optimizer=torch.optim.Rprop, weight_decay=0.0))
    assert np.isfinite(reg.fit(X, y).predict(X)).all()
    assert reg.estimators_[0].predict(X).shape == (60,)  # the member nets too
    with pytest.raises(ValueError, match="weight_decay=0.1, but Rprop takes no weight_decay"):
        RandomizedPriorRegressor(**dict(FAST, optimizer=torch.optim.Rprop, weight_decay=0.1)).fit(X, y)

    class PassingOn(torch.optim.Adam):  # weight_decay arrives through **kwargs
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)

    reg = RandomizedPriorRegressor(**dict(FAST, optimizer=PassingOn, weight_decay=0.05)).fit(X, y)
    assert reg.ensemble_.optimizer_.param_groups[0]["weight_decay"] == 0.05


@pytest.mark.parametrize("device", ["meta", "xpu", "not-a-device"])
def test_unusable_devices_are_clear_errors(device):
    X, y = data()
    with pytest.raises(ValueError, match="device"):
        RandomizedPriorRegressor(**dict(FAST, device=device)).fit(X, y)
    with pytest.raises(ValueError, match="net_params may not set 'device'"):
        RandomizedPriorRegressor(**dict(FAST, net_params={"device": "cpu"})).fit(X, y)
    # Keys with a parameter of their own trained silently with another value than get_params
    # reports (lr, optimizer; max_epochs also cut the cosine schedule short); module and
    # criterion failed inside skorch.
    for key, value in (("lr", 0.1), ("optimizer__lr", 0.5), ("optimizer", torch.optim.SGD),
                       ("optimizer__weight_decay", 0.3), ("max_epochs", 3),
                       ("module", nn.Linear), ("criterion", nn.L1Loss), ("verbose", 1)):
        reg = RandomizedPriorRegressor(**dict(FAST, net_params={key: value}))
        with pytest.raises(ValueError, match=f"net_params may not set '{key}'"):
            reg.fit(X, y)
        assert not hasattr(reg, "ensemble_")


def test_module_and_prior_shapes_are_checked_whole():
    X, y = data()

    class Flat(nn.Module):  # (n,) instead of (n, 1)
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(X.shape[1], 1)

        def forward(self, x):
            return self.layer(x)[:, 0]

    class Nested(Flat):  # (n, 1, 1)
        def forward(self, x):
            return self.layer(x)[:, :, None]

    class Fixed(nn.Module):  # nothing to train
        def forward(self, x):
            return x[:, :1]

    for module, shape in ((Flat, r"\(2,\)"), (Nested, r"\(2, 1, 1\)")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not be vectorised": not what is tested
            with pytest.raises(ValueError, match=r"to \(n_samples, 1\).*returned shape " + shape):
                RandomizedPriorRegressor(module, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="no trainable parameters"):
        RandomizedPriorRegressor(Fixed, **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"returned \(3, 2, 1\)"):
        RandomizedPriorRegressor(prior=lambda x: torch.zeros(3, len(x), 1), **FAST).fit(X, y)


def test_a_float64_function_prior_joins_in_the_members_precision():
    X, y = data()
    as_float64 = RandomizedPriorRegressor(  # NumPy in the middle: float64 out
        prior=lambda x: torch.as_tensor(np.sin(3 * x[:, :1].numpy().astype(np.float64))), **FAST)
    expected = RandomizedPriorRegressor(prior=lambda x: torch.sin(3 * x[:, :1]), **FAST).fit(X, y)
    np.testing.assert_allclose(as_float64.fit(X, y).predict(X), expected.predict(X), rtol=1e-5)


def test_a_single_member_warns_that_it_has_no_spread():
    X, y = data()
    with pytest.warns(UserWarning, match="n_estimators=1: a single member has no spread"):
        reg = RandomizedPriorRegressor(**dict(FAST, n_estimators=1)).fit(X, y)
    assert (reg.predict(X, return_std=True, epistemic=True)[1] == 0).all()


def test_cosine_schedule_counts_the_batches_net_params_asks_for():
    from sklearn_rpf.ensemble._callbacks import CosineDecay

    X, y = data()
    reg = RandomizedPriorRegressor(**dict(FAST, max_epochs=3, lr_schedule="cosine",
                                          net_params={"batch_size": 7})).fit(X, y)
    schedule = next(cb for _, cb in reg.ensemble_.callbacks_ if isinstance(cb, CosineDecay))
    assert schedule.total_steps == 3 * int(np.ceil(60 / 7))


# ----------------------------------------------------------------------------- weights and memory
def test_huge_weights_draw_a_bounded_bootstrap():
    X, y = data(n=40)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y, sample_weight=np.full(40, 2.5e6))
    assert (reg.in_bag_counts_.sum(axis=0) == 400).all()  # capped at 10 draws per row
    for weight in (np.full(40, 1e300), np.r_[np.full(20, 1e308), np.ones(20)]):
        mean, std = RandomizedPriorRegressor(**FAST).fit(X, y, sample_weight=weight).predict(
            X, return_std=True)
        assert np.isfinite(mean).all() and np.isfinite(std).all()
    # Scaling every weight by the same factor keeps the probabilities (and, below the cap, the
    # number of draws is what integer weights say).
    a = RandomizedPriorRegressor(**FAST).fit(X, y, sample_weight=np.full(40, 2.5e6)).predict(X)
    b = RandomizedPriorRegressor(**FAST).fit(X, y, sample_weight=np.full(40, 1e300)).predict(X)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_in_bag_counts_are_stored_compactly():
    X, y = data(n=2000, d=2)
    reg = RandomizedPriorRegressor(**dict(FAST, max_epochs=1, n_estimators=10)).fit(X, y)
    assert reg.in_bag_counts_.dtype == np.uint8
    assert reg.in_bag_counts_.nbytes == 2000 * 10
    assert len(pickle.dumps(reg)) < 250_000


def test_prediction_in_small_batches_equals_one_batch():
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    whole = reg.predict(X, return_std=True), reg.predict_members(X), reg.predict_priors(X)
    object.__setattr__(reg._fitted, "rows", 7)  # 60 rows in 9 batches
    batched = reg.predict(X, return_std=True), reg.predict_members(X), reg.predict_priors(X)
    for a, b in zip(whole, batched, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- clear errors
class NoInitPrior(nn.Module):
    """A module class with no __init__ of its own (nn.Module.__init__ takes **kwargs)."""

    def forward(self, x):
        return torch.tanh(x[:, :1])


def test_module_classes_without_their_own_init():
    X, y = data()
    reg = RandomizedPriorRegressor(prior=NoInitPrior, prior_scale=1.0, **FAST).fit(X, y)
    assert np.isfinite(reg.predict(X)).all()


@pytest.mark.parametrize("y, match", [
    (np.array(["a"] * 60), "y must be numeric"),
    (np.array(["1.5"] * 60), "y must be numeric"),
    # Numeric text is text in every container (scikit-learn would parse it from these three
    # but not from a list), and dates are not numbers of nanoseconds.
    (pd.Series(["1.5"] * 60), "y must be numeric.*got text"),
    (pd.Series(["1.5"] * 60, dtype="string"), "y must be numeric.*got text"),
    (np.array(["1.5"] * 60, dtype=object), "y must be numeric.*got text"),
    # NumPy 2's StringDType: fit read it as numbers (or failed on y in its own words).
    *([] if STRING_DTYPE is None else
      [(np.array(["1.5"] * 60, dtype=STRING_DTYPE()), "y must be numeric.*got text")]),
    (pd.Series(pd.date_range("2020", periods=60)), "y must be numeric.*got dates"),
    (np.arange(60).astype("timedelta64[s]"), "y must be numeric.*got durations"),
    (np.arange(60) + 1j, "Complex data not supported"),
])
def test_non_numeric_targets(y, match):
    X, _ = data()
    with pytest.raises(ValueError, match=match):
        RandomizedPriorRegressor(**FAST).fit(X, y)
    reg = RandomizedPriorRegressor(**FAST).fit(X[:30], np.arange(30.0))
    with pytest.raises(ValueError, match=match):
        reg.partial_fit(X, y)


@needs_string_dtype
def test_string_dtype_features_are_text():
    # NumPy 2's StringDType held numeric text that fit, predict and score read as numbers.
    X, y = data()
    text = X.astype(STRING_DTYPE())
    with pytest.raises(ValueError, match="X must be numeric.*got text"):
        RandomizedPriorRegressor(**FAST).fit(text, y)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    for method in (reg.predict, reg.predict_interval, lambda t: reg.score(t, y)):
        with pytest.raises(ValueError, match="X must be numeric.*got text"):
            method(text)


def test_dates_as_sample_weight_are_refused():
    X, y = data()
    # With a time zone, dates are an object array of Timestamps: scikit-learn made them epoch
    # numbers (1.6e15) and used them as weights.
    for weight in (pd.date_range("2020", periods=60), pd.Series(pd.date_range("2020", periods=60,
                                                                               tz="UTC"))):
        with pytest.raises(ValueError, match="sample_weight must be numeric.*got dates"):
            RandomizedPriorRegressor(**FAST).fit(X, y, sample_weight=weight)
    periods = pd.Series(pd.period_range("2020-01", periods=60, freq="M")).to_numpy()
    with pytest.raises(ValueError, match="y must be numeric.*got dates"):
        RandomizedPriorRegressor(**FAST).fit(X, periods)


def _features_as(kind, X):
    """X's first column turned into text, dates or durations, in the containers users pass."""
    first = X[:, 0]
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    if kind == "numeric text, object array":
        out = X.astype(object)
        out[:, 0] = [str(v) for v in first]
        return out
    if kind == "numeric text, str array":
        return X.astype(str)
    if kind == "numeric text, list":
        return [[str(row[0]), *row[1:]] for row in X.tolist()]
    if kind == "numeric text, string column":
        return frame.assign(x0=pd.array([str(v) for v in first], dtype="string"))
    if kind == "categories":
        return frame.assign(x0=pd.Categorical(np.where(first > 0, "high", "low")))
    if kind == "datetime64 array":
        out = np.full(X.shape, np.datetime64("2020-01-01"), dtype="datetime64[s]")
        return out + (X * 86400).astype("timedelta64[s]")
    if kind == "date column":
        return frame.assign(x0=pd.Timestamp("2020") + pd.to_timedelta(first, unit="D"))
    if kind == "dates with a time zone":
        return frame.assign(x0=pd.Timestamp("2020", tz="UTC") + pd.to_timedelta(first, unit="D"))
    assert kind == "duration column"
    return frame.assign(x0=pd.to_timedelta(first, unit="s"))


X_KINDS = {
    "numeric text, object array": "X must be numeric.*got text",
    "numeric text, str array": "X must be numeric.*got text",
    "numeric text, list": "X must be numeric.*got text",
    "numeric text, string column": "X's column 'x0' must be numeric.*got text",
    "categories": "X's column 'x0' must be numeric.*got text",
    "datetime64 array": "X must be numeric.*got dates.*days since a reference date",
    "date column": "X's column 'x0' must be numeric.*got dates",
    "dates with a time zone": "X's column 'x0' must be numeric.*got dates",
    "duration column": "X's column 'x0' must be numeric.*got durations.*in seconds",
}


@pytest.mark.parametrize("kind", list(X_KINDS))
def test_non_numeric_features_are_refused_everywhere(kind):
    # scikit-learn parses "1.5" from these containers and turns dates into nanoseconds since
    # 1970 (a datetime64 array was fitted on numbers near 1.6e18, silently).
    X, y = data()
    bad = _features_as(kind, X)
    match = X_KINDS[kind]
    with pytest.raises(ValueError, match=match):
        RandomizedPriorRegressor(**FAST).fit(bad, y)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    before = reg.predict(X)
    for call in (reg.predict, reg.estimators_[0].predict, reg.predict_interval, reg.sample_y,
                 lambda Z: reg.partial_fit(Z, y), lambda Z: reg.fit(Z, y)):
        with pytest.raises(ValueError, match=match):
            call(bad)
    np.testing.assert_array_equal(reg.predict(X), before)  # the failed refits changed nothing


def test_other_objects_in_features_keep_scikit_learns_error():
    # scikit-learn's estimator checks want its own TypeError for, e.g., a dict in X.
    X, y = data()
    bad = X.astype(object)
    bad[0, 0] = {"foo": "bar"}
    with pytest.raises(TypeError, match="argument must be a string.* number"):
        RandomizedPriorRegressor(**FAST).fit(bad, y)
    # Numbers in an object array, a numeric column beside a nullable one, and a list are numbers.
    expected = RandomizedPriorRegressor(**FAST).fit(X, y).predict(X)
    frame = pd.DataFrame(X).astype({0: "Float64"})
    for same in (X.astype(object), frame, X.tolist()):
        got = RandomizedPriorRegressor(**FAST).fit(same, y).predict(same)
        np.testing.assert_array_equal(got, expected)


def test_decimal_targets_are_numbers():
    from decimal import Decimal

    X, y = data()
    as_decimals = np.array([Decimal(str(float(v))) for v in y], dtype=object)
    np.testing.assert_array_equal(RandomizedPriorRegressor(**FAST).fit(X, as_decimals).predict(X),
                                  RandomizedPriorRegressor(**FAST).fit(X, y).predict(X))


@pytest.mark.parametrize("column", ["target", "feature"])
def test_a_small_spread_around_a_large_value_is_scaled_not_dropped(column):
    # 1e-4 around 1e9 is far above float64's rounding there (about 1e-7): StandardScaler scales
    # it, and so must the regressor; taken for a constant, the target's spread drowned in the
    # prior (stds 1,000 times the data's) and the feature was ignored.
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(60, 1))
    signal = np.sin(3 * x[:, 0])
    params = dict(n_estimators=4, max_epochs=200, hidden_layer_sizes=(16,), random_state=0)
    if column == "target":
        y = 1e9 + 1e-4 * signal
        reg = RandomizedPriorRegressor(**params).fit(x, y)
        mean, std = reg.predict(x, return_std=True)
        assert reg._fitted.standardizer.y_scale[0] < 1e-3
        assert np.abs(mean - y).max() < 0.5 * np.ptp(y) and std.max() < np.ptp(y)
    else:
        X = 1e9 + 1e-4 * x
        reg = RandomizedPriorRegressor(**params).fit(X, signal)
        assert reg._fitted.standardizer.x_scale[0] < 1e-3
        assert np.corrcoef(reg.predict(X), signal)[0, 1] > 0.9


def test_values_near_the_float64_limit_of_both_signs_standardise():
    # (x - mean) overflowed for +1.7e308 against a mean of -5.7e307; only such entries are now
    # computed as x / scale - mean / scale.
    X, y = data(n=30)
    big = np.where(np.arange(30) % 3 == 0, -1.7e308, 1.7e308)
    reg = RandomizedPriorRegressor(**FAST).fit(np.c_[X, big], y)
    assert np.isfinite(reg.predict(np.c_[X, big])).all()
    reg = RandomizedPriorRegressor(**FAST).fit(X, big)
    assert np.isfinite(reg.predict(X)).all()  # (its std may pass float64's range: inf, as said)
    assert np.isfinite(reg._fitted.standardizer.transform_y(big[:, None])).all()


def test_complex_inputs_are_rejected():
    X, y = data()
    with pytest.raises(ValueError, match="Complex data not supported"):
        RandomizedPriorRegressor(**FAST).fit(X + 1j, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_missing_cuda_device_is_a_clear_error():
    X, y = data()
    with pytest.raises(ValueError, match="device='cuda'.*(without CUDA|CUDA device)"):
        RandomizedPriorRegressor(**dict(FAST, device="cuda")).fit(X, y)


def test_single_target_members_predict_one_dimension():
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    assert reg.estimators_[0].predict(X).shape == reg.predict(X).shape == (60,)
    assert reg.estimators_[0].predict(X).dtype == reg.predict(X).dtype == np.float64
    multi = RandomizedPriorRegressor(**FAST).fit(X, np.c_[y, 2 * y])
    assert multi.estimators_[0].predict(X).shape == multi.predict(X).shape == (60, 2)
    # Rows too far out for float32: the member says so as the ensemble does (was NaN).
    far = np.r_[X[:2], X[:1] * 1e40]
    with pytest.raises(ValueError, match="too far from the training data"):
        reg.predict(far)
    with pytest.raises(ValueError, match="member returned NaN or infinity for row 2 of X"):
        reg.estimators_[0].predict(far)


@pytest.mark.parametrize("column, factor, name", [("target", 1e-46, "target's scale"),
                                                   ("target", 1e-40, "target's scale"),
                                                   ("feature", 1e-45, "inputs' scale"),
                                                   ("target", 1e39, "target's offset")])
def test_members_refuse_data_their_precision_cannot_hold(column, factor, name):
    # A member works in the data's units: in float32 a target scale of 1e-46 became 0 (every
    # prediction 0, silently), 1e-40 a subnormal with 3 digits, an input scale of 1e-45 a
    # division by 0. The ensemble, in standardised units, is fine.
    X, y = data()
    if column == "target":  # a spread of 1e37 around 1e39: beyond float32's 3.4e38
        y = y * factor if factor < 1 else y * 1e37 + factor
    else:
        X = X * factor
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    mean = reg.predict(X)
    assert np.isfinite(mean).all() and np.ptp(mean) > 1e-3 * np.std(y)
    with pytest.raises(ValueError, match=f"in torch.float32, which cannot hold the {name}.*"
                                         "refit with dtype='float64'"):
        reg.estimators_[0].predict(X)
    wide = RandomizedPriorRegressor(**dict(FAST, dtype="float64")).fit(X, y)
    np.testing.assert_allclose(wide.estimators_[0].predict(X), wide.predict_members(X)[0],
                               rtol=1e-9)


# ----------------------------------------------------------------------------- member-wise streams
class LinearMember(nn.Module):
    """A custom member: nn.Linear initialises from torch's global generator."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        return self.linear(x)


@pytest.mark.parametrize("params", [{}, {"early_stopping": True, "n_iter_no_change": 3,
                                         "max_epochs": 60}, {"prior": NoInitPrior},
                                    {"module": LinearMember, "prior": LinearMember}])
def test_members_do_not_depend_on_how_they_are_grouped(params):
    X, y = data()
    kw = {**FAST, "n_estimators": 5, **params}
    reference = RandomizedPriorRegressor(**kw).fit(X, y)
    global_state = torch.get_rng_state().clone()
    for n_groups in (2, 3, 5):
        # Threads: groups share one process and its global generator (forked under a lock).
        with parallel_config(backend="threading", n_jobs=n_groups):
            grouped = RandomizedPriorRegressor(**kw).fit(X, y)
        assert torch.equal(torch.get_rng_state(), global_state)
        np.testing.assert_allclose(grouped.predict_members(X), reference.predict_members(X),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(grouped.in_bag_counts_, reference.in_bag_counts_)
        np.testing.assert_allclose(grouped.noise_, reference.noise_, rtol=1e-4)


def test_grouping_is_invisible_in_float64():
    # The row sums of the loss run member by member, so in float64 the grouping changes only
    # the last bits, even over many steps (float32 with fused Adam: see random_state's doc).
    X, y = data()
    kw = {**FAST, "n_estimators": 4, "max_epochs": 40, "dtype": "float64"}
    reference = RandomizedPriorRegressor(**kw).fit(X, y).predict_members(X)
    for n_groups in (2, 3, 4):
        with parallel_config(backend="threading", n_jobs=n_groups):
            grouped = RandomizedPriorRegressor(**kw).fit(X, y).predict_members(X)
        np.testing.assert_allclose(grouped, reference, rtol=0, atol=1e-12)


def test_predict_flags_and_n_jobs_zero_are_checked():
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    for flags in ({"return_std": "yes"}, {"return_std": True, "epistemic": "no"},
                  {"return_std": 1}):
        with pytest.raises(ValueError, match="must be True or False"):
            reg.predict(X, **flags)
    assert len(reg.predict(X, return_std=np.True_)) == 2
    with pytest.raises(InvalidParameterError, match="n_jobs"):
        RandomizedPriorRegressor(**dict(FAST, n_jobs=0)).fit(X, y)


def test_member_nets_check_their_input_like_the_ensemble():
    # estimators_ are skorch nets: a list failed with "'list' object has no attribute 'to'", a
    # wrong width with torch's shape error, and a NaN row predicted NaN without a word.
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    member = reg.estimators_[0]
    np.testing.assert_allclose(member.predict(X.tolist()), member.predict(X))
    np.testing.assert_allclose(member.predict(pd.DataFrame(X)), reg.predict_members(X)[0],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="X has 4 features, but this member is expecting 3"):
        member.predict(np.c_[X, X[:, :1]])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        member.predict(np.r_[X[:1] * np.nan, X])
    # A clone (unfitted, rebuilt from its parameters) trains; a single-target member's (n,)
    # predictions met skorch's (n, 1) targets in MSELoss as an (n, n) matrix of every pair's
    # error (torch warned): a member trained further learnt the mean of the targets.


    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trained = member.fit(X.astype(np.float32), y[:, None].astype(np.float32))
        clone(member).fit(X.astype(np.float32), y[:, None].astype(np.float32))
    assert np.corrcoef(trained.predict(X), y)[0, 1] > 0.8


@pytest.mark.parametrize("sizes", [(2**40,), (2**20, 2**20)])
def test_networks_larger_than_memory_are_refused_before_any_allocation(sizes):
    X = np.random.default_rng(0).normal(size=(20, 3))
    model = RandomizedPriorRegressor(hidden_layer_sizes=sizes, n_estimators=2, max_epochs=1)
    # Was torch's "DefaultCPUAllocator: can't allocate memory" RuntimeError.
    with pytest.raises(ValueError, match=r"weights and gradients of 2 member\(s\) alone need "
                                         r"[\d,.]+ TiB in torch.float32, more than the"):
        model.fit(X, X[:, 0])
    with pytest.raises(ValueError, match="Use smaller layers or fewer members"):
        model.partial_fit(X, X[:, 0])
    assert not hasattr(model, "n_features_in_")
    # The count is the built-in MLPs' (trainable and prior): a custom module is not estimated.
    model.set_params(hidden_layer_sizes=(4,)).fit(X, X[:, 0])
    from sklearn_rpf.ensemble._assembly import EnsembleSpec

    spec = EnsembleSpec(module=None, hidden_layer_sizes=(4, 5), activation="relu", prior=None,
                        prior_scale=0.3, n_features=3, n_targets=2, heteroscedastic=True,
                        dtype=torch.float64)
    assert spec.builtin_parameters() == (4 * 4 + 5 * 5 + 6 * 4, 4 * 4 + 5 * 5 + 6 * 2)


def test_a_deep_copy_with_a_lambda_prior_is_independent():
    # skorch's __getstate__ pickles the module, and a lambda cannot be pickled: deepcopy failed.
    import copy

    X, y = data()
    reg = RandomizedPriorRegressor(**dict(FAST, prior=lambda t: torch.sin(3 * t[:, :1]))).fit(X, y)
    before = reg.predict(X, return_std=True)
    twin = copy.deepcopy(reg)
    np.testing.assert_array_equal(twin.predict(X, return_std=True), before)
    np.testing.assert_array_equal(twin.predict_interval(X), reg.predict_interval(X))
    member = copy.deepcopy(reg.estimators_[0])
    np.testing.assert_array_equal(member.predict(X), reg.estimators_[0].predict(X))
    twin.partial_fit(X, y)  # trains the copy's own parameters, through its own optimizer
    assert not np.array_equal(twin.predict(X), before[0])
    np.testing.assert_array_equal(reg.predict(X, return_std=True), before)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_a_lambda_prior_trains_in_parallel_groups(backend):
    # Groups come back as bytes: plain pickle looked a lambda (or a class of a script's
    # __main__) up by name and failed; cloudpickle sends it by value, as joblib does for tasks.
    X, y = data()
    params = dict(FAST, n_estimators=4, prior=lambda t: torch.sin(3 * t[:, :1]))
    local = RandomizedPriorRegressor(**params).fit(X, y)
    with parallel_config(backend=backend, n_jobs=2):
        grouped = RandomizedPriorRegressor(**dict(params, n_jobs=2)).fit(X, y)
    np.testing.assert_allclose(grouped.predict(X, return_std=True),
                               local.predict(X, return_std=True), rtol=1e-5, atol=1e-5)


# ------------------------------------------------- a hostile review's findings (stop 28)
def test_member_nets_check_feature_names_and_targets():
    # Members of a model fitted on a DataFrame read reordered columns without a word, and
    # trained further on a NaN, two-column or text target (silently broken weights, torch's
    # broadcasting error, torch's dtype error).
    X, y = data()
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    member = RandomizedPriorRegressor(**FAST).fit(frame, y).estimators_[0]
    with pytest.raises(ValueError, match="feature names should match"):
        member.predict(frame[["c", "b", "a"]])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(member.predict(frame), member.predict(X))  # as sklearn
    member.__dict__.pop("checks_feature_names_")  # as in a model pickled before the check
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        member.predict(frame[["c", "b", "a"]])
    member = RandomizedPriorRegressor(**FAST).fit(X, y).estimators_[0]
    before = member.predict(X)
    for target, match in ((np.r_[y[:-1], np.nan], "Input y contains NaN"),
                          (np.c_[y, y], r"y has shape \(60, 2\), but this member predicts 1"),
                          (y.astype(str), "y must be numeric.*got text")):
        with pytest.raises(ValueError, match=match):
            member.partial_fit(X, target)
        np.testing.assert_array_equal(member.predict(X), before)
    member.partial_fit(X, y.astype(np.longdouble))  # read as float64, which torch can hold
    assert np.isfinite(member.predict(X)).all()
    variance = RandomizedPriorRegressor(**FAST, loss="gaussian_nll").fit(X, y).estimators_[0]
    with pytest.raises(ValueError, match="cannot be trained further on its own"):
        variance.partial_fit(X, y)
    assert len(variance.history) == 0  # refused before training began


def test_float128_targets_are_read_as_float64():
    X, y = data()
    plain = RandomizedPriorRegressor(**FAST).fit(X, y)
    wide = RandomizedPriorRegressor(**FAST).fit(X, y.astype(np.longdouble))
    np.testing.assert_array_equal(wide.predict(X), plain.predict(X))
    with pytest.raises(ValueError, match="beyond float64's range"):
        RandomizedPriorRegressor(**FAST).fit(X, y.astype(np.longdouble) * np.longdouble("1e400"))


def test_score_reads_targets_as_fit_does():
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    expected = reg.score(X, y)
    assert reg.score(X, torch.tensor(y, requires_grad=True)) == expected
    assert reg.score(X, y, sample_weight=torch.ones(60, requires_grad=True)) == expected
    assert reg.score(X, torch.tensor(y).bfloat16()) == pytest.approx(expected, abs=1e-2)
    with pytest.raises(ValueError, match="y must be numeric.*got text"):
        reg.score(X, y.astype(str))  # scikit-learn's score parsed it


def test_verbose_turned_on_between_partial_fit_calls_prints(capsys):
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).partial_fit(X, y)
    assert capsys.readouterr().out == ""
    reg.set_params(verbose=1).partial_fit(X, y)
    assert "train_loss" in capsys.readouterr().out
    reg.set_params(verbose=0).partial_fit(X, y)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("callbacks", ["bad", [1], [("name", 2)]])
def test_net_params_callbacks_must_be_callbacks(callbacks):
    X, y = data()
    with pytest.raises(ValueError, match=r"net_params\['callbacks'\] must be a list of skorch"):
        RandomizedPriorRegressor(**FAST, net_params={"callbacks": callbacks}).fit(X, y)


def test_net_params_callbacks_as_skorch_takes_them():
    X, y = data()
    for callbacks in ([Callback()], [Callback], [("mine", Callback())], [["mine", Callback()]]):
        RandomizedPriorRegressor(**FAST, net_params={"callbacks": callbacks}).fit(X, y)


def test_periods_in_features_are_dates():
    X, y = data()
    frame = pd.DataFrame({"a": X[:, 0], "when": pd.period_range("2020-01", periods=60, freq="M")})
    with pytest.raises(ValueError, match=r"column 'when' must be numeric.*got dates"):
        RandomizedPriorRegressor(**FAST).fit(frame, y)


def test_warnings_name_the_callers_line_through_a_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = data()
    with pytest.warns(UserWarning, match="n_estimators=1") as record:
        make_pipeline(StandardScaler(), RandomizedPriorRegressor(**{**FAST, "n_estimators": 1})
                      ).fit(X, y)
    assert record[0].filename == __file__  # not scikit-learn's pipeline.py


# ------------------------------------------- custom modules and priors (stop 28, a review)
class _PartlyFrozen(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.features = nn.Linear(n_features, 8).requires_grad_(False)
        self.head = nn.Linear(8, n_outputs)

    def forward(self, x):
        return self.head(torch.tanh(self.features(x)))


class _Normalised(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.norm = nn.BatchNorm1d(n_features)
        self.head = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        return self.head(self.norm(x))


@pytest.mark.parametrize("vectorize", ["auto", False])
def test_frozen_layers_of_a_member_module_stay_frozen(vectorize):
    X, y = data()
    reg = RandomizedPriorRegressor(**dict(FAST, module=_PartlyFrozen, vectorize=vectorize,
                                          prior_scale=0.0)).fit(X, y)
    for member in (reg.ensemble_.module_.trainable.member(k) for k in range(FAST["n_estimators"])):
        assert not member.features.weight.requires_grad
    # Frozen means as initialised: the same after 1 epoch as after 20 (they changed by 0.02).
    untrained = RandomizedPriorRegressor(**dict(FAST, module=_PartlyFrozen, vectorize=vectorize,
                                                prior_scale=0.0, max_epochs=1)).fit(X, y)
    for k in range(FAST["n_estimators"]):
        np.testing.assert_array_equal(
            reg.ensemble_.module_.trainable.member(k).features.weight.detach(),
            untrained.ensemble_.module_.trainable.member(k).features.weight.detach())


def test_trial_passes_leave_batchnorm_statistics_alone():
    # One full-batch step: the running mean is 0.1 times the data's mean (momentum 0.1), not
    # that plus two rows' worth from the fit-time checks.
    X, y = data()
    for vectorize in ("auto", False):
        reg = RandomizedPriorRegressor(**dict(FAST, module=_Normalised, prior=_Normalised,
                                              vectorize=vectorize, batch_size=None,
                                              max_epochs=1)).fit(X, y)
        x = reg._fitted.standardizer.transform_X(X, np.float32)
        member = reg.ensemble_.module_.trainable.member(0)
        np.testing.assert_allclose(member.norm.running_mean, 0.1 * x.mean(axis=0), atol=1e-6)
        assert int(member.norm.num_batches_tracked) == 1
        prior = reg.ensemble_.module_.prior.member(0)
        np.testing.assert_array_equal(prior.norm.running_mean, 0.0)  # untrained, untouched


@pytest.mark.parametrize("vectorize", ["auto", False])
def test_fit_inside_inference_mode_trains_as_anywhere(vectorize):
    # A notebook cell that predicts under torch.inference_mode() and refits there: torch refused
    # the backward pass ("element 0 of tensors does not require grad").
    X, y = data()
    params = dict(FAST, vectorize=vectorize)
    outside = RandomizedPriorRegressor(**params).fit(X, y)
    for context in (torch.inference_mode, torch.no_grad):
        with context():
            inside = RandomizedPriorRegressor(**params).fit(X, y)
            np.testing.assert_array_equal(inside.predict(X), outside.predict(X))
            inside.partial_fit(X, y)
        np.testing.assert_array_equal(inside.predict(X), clone(outside).fit(X, y)
                                      .partial_fit(X, y).predict(X))
        inside.partial_fit(X, y)  # parameters made inside the block train outside it too


@pytest.mark.parametrize("vectorize", ["auto", False])
def test_a_callers_autocast_does_not_change_the_numbers(vectorize):
    # Inside torch.autocast the networks ran in bfloat16: predictions moved by about 0.006 and
    # fit failed with "must return torch.float32 ... returned torch.bfloat16".
    X, y = data()
    reg = RandomizedPriorRegressor(**dict(FAST, vectorize=vectorize)).fit(X, y)
    mean, std = reg.predict(X, return_std=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = clone(reg).fit(X, y)
        for fitted in (reg, inside):
            got_mean, got_std = fitted.predict(X, return_std=True)
            np.testing.assert_array_equal(got_mean, mean)
            np.testing.assert_array_equal(got_std, std)
        np.testing.assert_array_equal(reg.predict_interval(X)[0],
                                      inside.predict_interval(X)[0])


class _CountsPasses(nn.Module):
    """Counts its passes in train mode in a buffer that each pass rebinds (not updates)."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.head = nn.Linear(n_features, n_outputs)
        self.register_buffer("passes", torch.zeros(()))

    def forward(self, x):
        if self.training:
            self.passes = self.passes + 1
        return self.head(x)


def test_trial_passes_leave_rebound_buffers_alone():
    # One full-batch epoch, members one by one: one counted pass each, none from the checks.
    X, y = data()
    reg = RandomizedPriorRegressor(**dict(FAST, module=_CountsPasses, vectorize=False,
                                          batch_size=None, max_epochs=1)).fit(X, y)
    for k in range(FAST["n_estimators"]):
        assert int(reg.ensemble_.module_.trainable.member(k).passes) == 1


def test_a_prior_must_be_a_fixed_function():
    X, y = data()
    dropout = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 1))  # train mode
    drawn = r"random numbers from \(or reseeds\) torch"
    for prior, match in ((lambda t: dropout(t), drawn), (lambda t: torch.randn(len(t), 1), drawn)):
        reg = RandomizedPriorRegressor(**dict(FAST, prior=prior, prior_scale=1.0))
        with pytest.raises(ValueError, match=f"prior must be a fixed function.*{match}"):
            reg.fit(X, y)
    calls = iter(range(10**6))
    with pytest.raises(ValueError, match="two calls on the same rows returned different"):
        RandomizedPriorRegressor(**dict(FAST, prior=lambda t: t[:, :1] * next(calls))).fit(X, y)
    with pytest.raises(ValueError, match="must return real numbers"):
        RandomizedPriorRegressor(**dict(FAST, prior=lambda t: t[:, :1] * 1j)).fit(X, y)
    RandomizedPriorRegressor(**dict(FAST, prior=dropout)).fit(X, y)  # a module: in eval mode


class _ClampsItsInput(nn.Module):
    """A member module that clamps its input in place: idempotent, so two calls agree."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.layer = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        return self.layer(x.clamp_(-0.5, 0.5))


def test_modules_that_write_into_their_input_are_refused():
    # The member runs first on the same input tensor as the prior, and the training rows are
    # read at every epoch: an in-place edit would silently change what the other one sees.
    X, y = data()
    X_before = X.copy()
    clamping_prior = lambda t: torch.sin(t.clamp_(-0.5, 0.5))[:, :1]  # noqa: E731
    for params, what in ((dict(prior=clamping_prior, prior_scale=1.0), "prior"),
                         (dict(module=_ClampsItsInput), "member module"),
                         (dict(module=_ClampsItsInput, vectorize=False), "member module"),
                         (dict(prior=_ClampsItsInput), "prior")):
        reg = RandomizedPriorRegressor(**dict(FAST, **params))
        with pytest.raises(ValueError, match=f"The {what} modified its input tensor in place"):
            reg.fit(X, y)
        assert not hasattr(reg, "ensemble_")
    np.testing.assert_array_equal(X, X_before)
    # Also where the trial rows lie inside the clamp's range (their values unchanged by it).
    X_inside = X.copy()
    X_inside[:2] = X.mean(axis=0)  # standardised to about 0
    with pytest.raises(ValueError, match="The prior modified its input tensor in place"):
        RandomizedPriorRegressor(**dict(FAST, prior=clamping_prior, prior_scale=1.0)).fit(
            X_inside, y)
    # Out of place, the same functions are fine.
    RandomizedPriorRegressor(**dict(FAST, prior=lambda t: torch.sin(t.clamp(-0.5, 0.5))[:, :1],
                                    prior_scale=1.0)).fit(X, y)


class _NeedsWidth(nn.Module):
    def __init__(self, n_features, n_outputs, width):
        super().__init__()
        self.layer = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        return self.layer(x)


class _Double(_NeedsWidth):
    def __init__(self, n_features, n_outputs):
        super().__init__(n_features, n_outputs, 0)

    def forward(self, x):
        return self.layer(x).double()


def test_member_modules_built_wrongly_get_clear_errors():
    X, y = data()
    with pytest.raises(TypeError, match=r"module=.*_NeedsWidth.*functools.partial"):
        RandomizedPriorRegressor(**dict(FAST, module=_NeedsWidth)).fit(X, y)
    with pytest.raises(TypeError, match=r"prior=.*Linear.*functools.partial"):
        RandomizedPriorRegressor(**dict(FAST, prior=nn.Linear)).fit(X, y)
    shared = _PartlyFrozen(3, 1)
    with pytest.raises(TypeError, match="returned modules that share weights between members"):
        RandomizedPriorRegressor(**dict(FAST, module=lambda: shared, vectorize=False)).fit(X, y)
    with pytest.raises(ValueError, match=r"must return torch.float32.*returned torch.float64"):
        RandomizedPriorRegressor(**dict(FAST, module=_Double)).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be a positive integer"):
        RandomizedPriorRegressor(**dict(FAST, hidden_layer_sizes=[True, 2])).fit(X, y)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="epistemic=True .* needs return_std=True"):
        reg.predict(X, epistemic=True)


def test_lazy_modules_and_shared_layers():
    X, y = data()
    # Lazy layers initialise on their first call: a deterministic prior, a member that works.
    lazy_prior = nn.Sequential(nn.LazyLinear(8), nn.Tanh(), nn.Linear(8, 1))
    RandomizedPriorRegressor(**dict(FAST, prior=lazy_prior)).fit(X, y)
    lazy_member = lambda: nn.Sequential(nn.LazyBatchNorm1d(), nn.Linear(3, 1))  # noqa: E731
    RandomizedPriorRegressor(**dict(FAST, module=lazy_member, vectorize=False)).fit(X, y)
    # A layer built once outside the factory would be shared by every member and trained in
    # the caller's hands.
    shared = nn.Linear(3, 8)
    before = shared.weight.detach().clone()
    with pytest.raises(TypeError, match="share weights between members"):
        RandomizedPriorRegressor(**dict(FAST, module=lambda: nn.Sequential(
            shared, nn.Tanh(), nn.Linear(8, 1)))).fit(X, y)
    np.testing.assert_array_equal(shared.weight.detach(), before)


@pytest.mark.parametrize("batch_size", [-1, 0, None, 2.5, True])
def test_net_params_batch_size_must_be_positive(batch_size):
    # -1 (skorch's "whole data") made the loss scale negative: training climbed the loss.
    X, y = data()
    for call in ("fit", "partial_fit"):
        reg = RandomizedPriorRegressor(**FAST, net_params={"batch_size": batch_size})
        with pytest.raises(ValueError, match=r"net_params\['batch_size'\] must be a positive"):
            getattr(reg, call)(X, y)


def test_streaming_on_a_model_fitted_before_fit_hashes_were_kept_warns():
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    del reg.__dict__["_fit_hashes"]  # as unpickled from an earlier version
    with pytest.warns(UserWarning, match="did not keep which rows its members trained on"):
        reg.partial_fit(X, y)


def test_fit_leaves_the_callbacks_given_in_net_params_alone():
    # skorch initialised the user's callback in place: fit changed a parameter, and with one
    # group the fitted optimizer was shared with the caller (joblib.hash of get_params failed;
    # several groups, n_jobs > 1, each had a copy already).
    import joblib
    from skorch.callbacks import LRScheduler

    X, y = data()
    scheduler = LRScheduler(policy="StepLR", step_size=1)
    reg = RandomizedPriorRegressor(**FAST, lr_schedule="constant",
                                   net_params={"callbacks": [("sched", scheduler)]})
    before = joblib.hash(reg.get_params())
    reg.fit(X, y)
    assert not hasattr(scheduler, "lr_scheduler_")
    assert joblib.hash(reg.get_params()) == before


# ----------------------------------------------------------------------------- threads
class _GeneratorSeen(Callback):
    """Records torch's global generator state at every epoch's end."""

    def __init__(self):
        self.states = []

    def on_epoch_end(self, net, **kwargs):
        self.states.append(torch.get_rng_state())


def test_built_in_networks_leave_the_global_generator_alone_while_training():
    # The generator was forked and seeded for the whole of training: another thread drawing
    # from it meanwhile got this fit's seeded stream instead of its own.
    X, y = data()
    seen = _GeneratorSeen()
    before = torch.get_rng_state()
    reg = RandomizedPriorRegressor(**dict(FAST, net_params={"callbacks": [("seen", seen)]}))
    reg.fit(X, y)
    states = dict(reg.ensemble_.callbacks_)["seen"].states  # the fit's own copy
    assert len(states) == FAST["max_epochs"]
    assert all(torch.equal(state, before) for state in states)


def test_partial_fit_from_two_threads_runs_one_call_after_the_other():
    # Two chunks streamed at once into a fresh estimator: one of them was lost.
    X, y = data(n=120)
    chunks = [(X[:60], y[:60]), (X[60:], y[60:])]
    serial = [RandomizedPriorRegressor(**FAST) for _ in range(2)]
    for reg, order in zip(serial, ((0, 1), (1, 0)), strict=True):
        for i in order:
            reg.partial_fit(*chunks[i])
    reg = RandomizedPriorRegressor(**FAST)
    start = threading.Barrier(2)
    errors = []

    def stream(i):
        start.wait()
        try:
            reg.partial_fit(*chunks[i])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=stream, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and reg.n_samples_seen_ == 120
    assert any(np.array_equal(reg.predict(X), other.predict(X)) for other in serial)


def test_pickling_reads_a_copy_of_the_state():
    # scikit-learn's __getstate__ returns the live __dict__, which a thread's first read of
    # estimators_ grew while pickle walked it ("dictionary changed size during iteration").
    X, y = data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    reg.predict_interval(X)  # builds the calibration's search cache
    state = reg.__getstate__()
    assert state is not reg.__dict__ and state.keys() == reg.__dict__.keys()
    calibration = reg._calibration
    assert "_cache" in vars(calibration) and "_cache" not in calibration.__getstate__()


class _Overlaps(nn.Module):
    """A member module that notes when two calls run inside it at once (once ``watch`` is set)."""

    watch, inside, overlaps = False, threading.Event(), []

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.layer = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        if _Overlaps.watch:
            if _Overlaps.inside.is_set():
                _Overlaps.overlaps.append(True)
            else:
                _Overlaps.inside.set()
                time.sleep(0.2)  # the other thread's call would enter now
                _Overlaps.inside.clear()
        return self.layer(x)


def test_vectorised_members_predict_one_call_at_a_time():
    # A vmapped ensemble swaps its stacked weights into one shared skeleton: two threads inside
    # at once swapped each other's tensors out ("Tensor on device cpu is not on the expected
    # device meta", about one call in a thousand).
    X, y = data()
    reg = RandomizedPriorRegressor(**dict(FAST, module=_Overlaps)).fit(X, y)
    assert type(reg.ensemble_.module_.trainable).__name__ == "VmapEnsemble"
    expected = reg.predict(X)
    start, results = threading.Barrier(2), []

    def predict():
        start.wait()
        results.append(reg.predict(X))

    _Overlaps.watch = True
    try:
        threads = [threading.Thread(target=predict) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        _Overlaps.watch = False
    assert _Overlaps.overlaps == []
    assert len(results) == 2 and all(np.array_equal(r, expected) for r in results)


def test_assume_finite_does_not_let_nan_through():
    # sklearn.set_config(assume_finite=True) skips scikit-learn's check: a NaN in X was blamed
    # on another cell ("too far from the training data"), a NaN weight failed in the bootstrap
    # ("cannot convert float NaN to integer").
    import sklearn

    X, y = data()
    X_nan, weight = X.copy(), np.ones(len(y))
    X_nan[3, 0], weight[3] = np.nan, np.inf
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    with sklearn.config_context(assume_finite=True):
        for call, name in ((lambda: clone(reg).fit(X_nan, y), "X"),
                           (lambda: clone(reg).fit(X, y, sample_weight=weight), "sample_weight"),
                           (lambda: clone(reg).partial_fit(X, y, sample_weight=weight),
                            "sample_weight"),
                           (lambda: reg.predict(X_nan), "X"),
                           (lambda: reg.predict_interval(X_nan), "X"),
                           (lambda: reg.score(X, np.where(weight > 1, np.nan, y)), "y")):
            with pytest.raises(ValueError, match=f"Input {name} contains NaN or infinity"):
                call()
        np.testing.assert_array_equal(reg.predict(X), RandomizedPriorRegressor(**FAST)
                                      .fit(X, y).predict(X))  # finite input: as ever


def test_a_callers_default_device_does_not_reach_the_estimator():
    # After torch.set_default_device("meta") (left on by model-initialisation code; "cuda" on a
    # GPU machine), fit failed inside torch ("aten::equal ... Meta tensors") and partial_fit
    # with "Cannot copy out of meta tensor".
    X, y = data()
    reference = RandomizedPriorRegressor(**FAST).fit(X, y)
    streamed = RandomizedPriorRegressor(**FAST).partial_fit(X, y)
    torch.set_default_device("meta")
    try:
        reg = RandomizedPriorRegressor(**FAST).fit(X, y)
        stream = RandomizedPriorRegressor(**FAST).partial_fit(X, y)
        member = reg.estimators_[0].predict(X)
    finally:
        torch.set_default_device(None)
    np.testing.assert_array_equal(reg.predict(X, return_std=True),
                                  reference.predict(X, return_std=True))
    np.testing.assert_array_equal(stream.predict(X), streamed.predict(X))
    np.testing.assert_array_equal(member, reference.estimators_[0].predict(X))


def test_torch_tensors_under_scikit_learns_array_api_dispatch():
    # With array_api_dispatch=True, tensors were validated in torch's namespace: every method
    # failed with "asarray(): argument 'dtype' must be torch.dtype, not type". A subprocess:
    # the setting needs SCIPY_ARRAY_API=1 before scipy is imported.
    import subprocess
    import sys

    script = """
import numpy as np, sklearn, torch
from sklearn_rpf import RandomizedPriorRegressor
from sklearn_rpf.metrics import gaussian_nll
X = np.random.default_rng(0).normal(size=(60, 3)); y = X[:, 0] + 0.1 * X[:, 1]
params = dict(n_estimators=3, max_epochs=5, random_state=0)
reference = RandomizedPriorRegressor(**params).fit(X, y)
mean, std = reference.predict(X, return_std=True)
try:
    sklearn.set_config(array_api_dispatch=True)
except ImportError as exc:  # before scikit-learn 1.8 it needs the array-api-compat package
    print("skip:", exc)
    raise SystemExit(0)
Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
reg = RandomizedPriorRegressor(**params).fit(Xt, yt)
assert all(np.array_equal(a, b) for a, b in zip(reg.predict(Xt, return_std=True), (mean, std)))
assert np.array_equal(reg.predict_interval(Xt)[0], reference.predict_interval(X)[0])
assert reg.score(Xt, yt) == reference.score(X, y)
RandomizedPriorRegressor(**params).partial_fit(Xt, yt)
assert gaussian_nll(yt, torch.as_tensor(mean), torch.as_tensor(std)) == gaussian_nll(y, mean, std)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "SCIPY_ARRAY_API": "1"}, timeout=300)
    if done.returncode == 0 and done.stdout.startswith("skip:"):
        pytest.skip(done.stdout.strip())
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


_DURING = {}  # module level: net_params' callbacks are deep-copied, the estimator must not be


class _PredictsMidCall(Callback):
    """Predicts with the estimator in _DURING at every epoch's end, as another thread would."""

    def on_epoch_end(self, net, **kwargs):
        if "reg" in _DURING:
            _DURING["seen"].append(_DURING["reg"].predict(_DURING["X"]))


def test_predictions_during_partial_fit_use_the_model_before_the_call():
    # The stream trained the fitted members in place: a prediction made meanwhile (another
    # thread serving requests) read half-trained members, and switched them to eval mode
    # mid-epoch.
    X, y = data()
    params = dict(FAST, net_params={"callbacks": [("mid", _PredictsMidCall())]})
    for first in (lambda reg: reg.partial_fit(X[:30], y[:30]), lambda reg: reg.fit(X[:30], y[:30])):
        reg = first(RandomizedPriorRegressor(**params))
        before = reg.predict(X)
        _DURING.update(reg=reg, X=X, seen=[])
        try:
            reg.partial_fit(X[30:], y[30:])
        finally:
            seen = _DURING.pop("seen")
            _DURING.clear()
        assert seen and all(np.array_equal(s, before) for s in seen)
        serial = first(RandomizedPriorRegressor(**params)).partial_fit(X[30:], y[30:])
        np.testing.assert_array_equal(reg.predict(X), serial.predict(X))
        assert not np.array_equal(reg.predict(X), before)


@pytest.mark.filterwarnings("ignore:torch.is_autocast_cpu_enabled:DeprecationWarning")
def test_device_contexts_work_with_the_torch_apis_of_torch_2_2(monkeypatch):
    # torch.is_autocast_enabled(device_type) came in torch 2.4, torch.get_default_device in 2.3;
    # the package supports torch >= 2.2.
    from sklearn_rpf import _devices

    def is_autocast_enabled():  # torch 2.2's: CUDA only, no argument
        return False

    with torch.autocast("cpu", dtype=torch.bfloat16):  # entered before torch is patched
        monkeypatch.setattr(torch, "is_autocast_enabled", is_autocast_enabled)
        monkeypatch.delattr(torch, "get_default_device")
        try:
            assert _devices._autocast_on("cpu") and not _devices._autocast_on("cuda")
            assert not _devices._autocast_on("mps")
            assert isinstance(_devices.cpu_by_default(), contextlib.nullcontext)
        finally:
            monkeypatch.undo()


class _HoldsALock(Callback):
    """A callback that opens something that cannot be copied (a lock, as a file or a run
    handle would be) when the net initialises it."""

    def initialize(self):
        self.lock = threading.Lock()
        self.epochs = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        with self.lock:
            self.epochs += 1


def test_partial_fit_keeps_callbacks_that_cannot_be_copied():
    # Each call trains a copy of the stream: copying the callbacks too failed on the second
    # call with "cannot pickle '_thread.lock' object".
    X, y = data()
    reg = RandomizedPriorRegressor(**dict(FAST, net_params={"callbacks": [("lock", _HoldsALock())]}))
    for _ in range(3):
        reg.partial_fit(X, y)
    assert dict(reg.ensemble_.callbacks_)["lock"].epochs == 3
