"""Tests of RandomizedPriorRegressor: scikit-learn API, uncertainty behaviour, priors, errors."""

import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.callbacks import Callback
from torch import nn

from sklearn_rpf import RandomizedPriorRegressor
from sklearn_rpf.metrics import gaussian_nll, neg_gaussian_nll_scorer

FAST = dict(n_estimators=4, max_epochs=30, lr=1e-2, hidden_layer_sizes=(16,), random_state=0)


class SinPrior(nn.Module):
    """A fixed, hand-picked prior: sin(3x) of the first feature."""

    def forward(self, x):
        return torch.sin(3 * x[:, :1])


class TinyNet(nn.Module):
    """A user-defined member network taking the sizes as keyword arguments."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, 16), nn.Tanh(), nn.Linear(16, n_outputs))

    def forward(self, x):
        return self.body(x)


class NotVmappable(TinyNet):
    """Data-dependent Python control flow: torch.func.vmap cannot trace it."""

    def forward(self, x):
        out = self.body(x)
        if out.sum().item() > 1e9:  # never true, but .item() breaks vmap
            out = out * 0
        return out


def two_clusters(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = np.r_[rng.uniform(-1.2, -0.8, n // 2), rng.uniform(0.8, 1.2, n // 2)]
    y = np.sin(2 * x) + 0.5 * x + 0.05 * rng.normal(size=n)
    return x[:, None], y


def regression_data(n=120, d=3, seed=0, n_targets=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=n)
    if n_targets:
        y = np.column_stack([y * (j + 1) + j for j in range(n_targets)])
    return X, y


# ----------------------------------------------------------------------------- scikit-learn API
@parametrize_with_checks(
    [RandomizedPriorRegressor(n_estimators=3, max_epochs=30, lr=1e-2, hidden_layer_sizes=(16,),
                              dtype="float64", random_state=0)]
)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # check_array_api_input skips itself unless this variable is set; it then runs on NumPy.
    # float64 makes "integer sample weights == repeated rows" hold to the check's 1e-7 tolerance.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


def test_pipeline_and_grid_search_in_parallel():
    X, y = regression_data()
    pipe = make_pipeline(StandardScaler(), RandomizedPriorRegressor(**FAST))
    search = GridSearchCV(pipe, {"randomizedpriorregressor__prior_scale": [0.0, 1.0]}, cv=2,
                          n_jobs=2).fit(X, y)
    assert search.best_estimator_.score(X, y) > 0.8
    mean, std = search.best_estimator_.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5,)


def test_grid_search_chooses_prior_scale_by_nll():
    X, y = regression_data(n=90)
    search = GridSearchCV(RandomizedPriorRegressor(**FAST), {"prior_scale": [0.0, 1.0, 30.0]},
                          scoring=neg_gaussian_nll_scorer, cv=3).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["prior_scale"] == [0.0, 1.0, 30.0][int(np.argmax(scores))]
    # A prior 30 standard deviations tall swamps 60 training rows: its NLL must be the worst.
    assert np.argmin(scores) == 2
    # The score is minus the NLL of predict(X, return_std=True) on the held-out fold.
    train, test = next(KFold(3).split(X))  # what cv=3 means for a regressor
    reg = clone(search.estimator).set_params(prior_scale=0.0).fit(X[train], y[train])
    mean, std = reg.predict(X[test], return_std=True)
    assert search.cv_results_["split0_test_score"][0] == pytest.approx(-gaussian_nll(y[test], mean, std))


def test_clone_and_pickle_round_trip():
    X, y = regression_data()
    for prior in (None, SinPrior()):
        reg = RandomizedPriorRegressor(prior=prior, **FAST).fit(X, y)
        again = pickle.loads(pickle.dumps(reg))
        np.testing.assert_array_equal(reg.predict(X, return_std=True), again.predict(X, return_std=True))
        refit = clone(reg).fit(X, y)
        np.testing.assert_array_equal(reg.predict(X, return_std=True), refit.predict(X, return_std=True))


def test_array_likes_give_the_same_predictions():
    X, y = regression_data(n=60)
    reference = RandomizedPriorRegressor(**FAST).fit(X, y).predict(X)
    for X_like, y_like in [
        (X.tolist(), y.tolist()),
        (pd.DataFrame(X, columns=["a", "b", "c"]), pd.Series(y)),
        (torch.tensor(X), torch.tensor(y)),
    ]:
        reg = RandomizedPriorRegressor(**FAST).fit(X_like, y_like)
        np.testing.assert_allclose(reg.predict(X_like), reference, rtol=1e-6)


# ----------------------------------------------------------------------------- uncertainty
def test_std_small_near_data_and_large_far_from_it():
    X, y = two_clusters()
    reg = RandomizedPriorRegressor(n_estimators=20, max_epochs=300, lr=1e-2, batch_size=None,
                                   random_state=0).fit(X, y)
    _, std_near = reg.predict([[-1.0], [1.0]], return_std=True, epistemic=True)
    _, std_far = reg.predict([[-4.0], [4.0]], return_std=True, epistemic=True)
    assert std_near.max() < 0.1 * np.std(y)
    assert std_far.min() > 5 * std_near.max()
    # The predictive std adds the noise estimated out of bag (true noise std 0.05).
    _, total = reg.predict([[-1.0]], return_std=True)
    assert 0.02 < np.sqrt(reg.noise_[0]) < 0.15
    assert total[0] > std_near[0]


def test_spread_collapses_without_prior_and_bootstrap():
    X, y = two_clusters()
    # Plain Adam at a constant rate: this test is about the prior, not the default schedule.
    kw = dict(n_estimators=20, max_epochs=300, lr=1e-2, batch_size=None, random_state=0,
              lr_schedule="constant", weight_decay=0.0)
    with_prior = RandomizedPriorRegressor(prior_scale=1.0, **kw).fit(X, y)
    plain = RandomizedPriorRegressor(prior_scale=0.0, bootstrap=False, **kw).fit(X, y)
    # Without priors and bootstrap the only diversity left is the random initialisation: the
    # members agree on the data, and away from it the spread is a fraction of the prior's.
    _, on_data = plain.predict(X, return_std=True, epistemic=True)
    assert on_data.max() < 0.05 * np.std(y)
    far = np.r_[np.linspace(-4, -2, 10), np.linspace(2, 4, 10)][:, None]
    _, spread_prior = with_prior.predict(far, return_std=True, epistemic=True)
    _, spread_plain = plain.predict(far, return_std=True, epistemic=True)
    assert spread_plain.mean() < 0.5 * spread_prior.mean()


def test_out_of_bag_calibration_of_the_spread():
    X, y = regression_data(n=200)
    plain = RandomizedPriorRegressor(**FAST).fit(X, y)
    calibrated = RandomizedPriorRegressor(calibrate_epistemic=True, **FAST).fit(X, y)
    assert plain.epistemic_scale_[0] == 1.0
    assert 0.1 <= calibrated.epistemic_scale_[0] <= 10.0 and calibrated.epistemic_scale_[0] != 1.0
    _, raw = plain.predict(X[:5], return_std=True, epistemic=True)
    _, scaled = calibrated.predict(X[:5], return_std=True, epistemic=True)
    np.testing.assert_allclose(scaled, raw * np.sqrt(calibrated.epistemic_scale_[0]))


def test_multi_output_shapes_and_members():
    X, y = regression_data(n_targets=2)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    mean, std = reg.predict(X, return_std=True)
    assert mean.shape == std.shape == (len(X), 2)
    members = reg.predict_members(X)
    assert members.shape == (4, len(X), 2)
    np.testing.assert_allclose(members.mean(axis=0), mean)
    assert reg.predict_priors(X).shape == (4, len(X), 2)
    assert reg.score(X, y) > 0.8


def test_estimators_are_skorch_nets_matching_the_ensemble():
    X, y = regression_data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    members = reg.predict_members(X)
    assert len(reg.estimators_) == reg.n_estimators
    for k, net in enumerate(reg.estimators_):
        np.testing.assert_allclose(net.predict(X), members[k], rtol=1e-4, atol=1e-4)
        assert set(net.module_.prior.parameters()) and not any(
            p.requires_grad for p in net.module_.prior.parameters())


def test_heteroscedastic_members_track_the_noise():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(400, 1))
    noise = np.where(X[:, 0] > 0, 0.5, 0.05)
    y = X[:, 0] + noise * rng.normal(size=400)
    reg = RandomizedPriorRegressor(loss="gaussian_nll", n_estimators=5, max_epochs=60,
                                   lr=1e-2, random_state=0).fit(X, y)
    _, std = reg.predict([[-0.5], [0.5]], return_std=True)
    assert std[1] > 3 * std[0]
    assert reg.noise_.shape == (1,) and reg.noise_[0] > 0


def test_early_stopping_on_out_of_bag_loss():
    X, y = regression_data()
    reg = RandomizedPriorRegressor(early_stopping=True, n_iter_no_change=3, max_epochs=500,
                                   n_estimators=4, lr=5e-2, random_state=0).fit(X, y)
    assert reg.n_epochs_ < 500
    assert "valid_loss" in reg.ensemble_.history[-1]
    with pytest.raises(ValueError, match="needs bootstrap=True"):
        RandomizedPriorRegressor(early_stopping=True, bootstrap=False).fit(X, y)


def test_verbose_prints_progress(capsys):
    X, y = regression_data(n=40)
    RandomizedPriorRegressor(verbose=1, **dict(FAST, max_epochs=3)).fit(X, y)
    assert "train_loss" in capsys.readouterr().out


# ----------------------------------------------------------------------------- priors
class PriorSnapshot(Callback):
    """Records the prior's state when training starts and ends, and the optimizer's tensors."""

    def on_train_begin(self, net, **kwargs):
        self.before = copy.deepcopy(net.module_.prior.state_dict())
        self.trainable_before = copy.deepcopy(net.module_.trainable.state_dict())

    def on_train_end(self, net, **kwargs):
        self.after = copy.deepcopy(net.module_.prior.state_dict())
        self.trainable_after = copy.deepcopy(net.module_.trainable.state_dict())
        self.optimized = {id(p) for group in net.optimizer_.param_groups for p in group["params"]}
        self.prior_ids = {id(p) for p in net.module_.prior.parameters()}
        self.prior_grads = [p.grad for p in net.module_.prior.parameters()]


@pytest.mark.parametrize("prior", [None, TinyNet])
def test_prior_is_frozen_and_untouched(prior):
    X, y = regression_data()
    reg = RandomizedPriorRegressor(prior=prior, net_params={"callbacks": [("snap", PriorSnapshot())]},
                                   **FAST).fit(X, y)
    snapshot = dict(reg.ensemble_.callbacks_)["snap"]  # fit's copy: the parameter stays as given
    assert snapshot.before.keys() == snapshot.after.keys() and snapshot.before
    for name in snapshot.before:
        assert torch.equal(snapshot.before[name], snapshot.after[name]), name
    assert not snapshot.optimized & snapshot.prior_ids
    assert all(grad is None for grad in snapshot.prior_grads)
    changed = [not torch.equal(snapshot.trainable_before[k], snapshot.trainable_after[k])
               for k in snapshot.trainable_before]
    assert all(changed)


def test_users_prior_module_is_not_modified():
    X, y = regression_data()
    prior = TinyNet(3, 1)
    state = copy.deepcopy(prior.state_dict())
    RandomizedPriorRegressor(prior=prior, **FAST).fit(X, y)
    assert all(torch.equal(state[k], v) for k, v in prior.state_dict().items())
    assert all(p.requires_grad for p in prior.parameters())


def test_fixed_function_prior_and_its_shape_check():
    X, y = two_clusters()
    y_scale = np.std(y)
    raw = RandomizedPriorRegressor(prior=lambda x: torch.sin(3 * x), prior_scale=1.0,
                                   normalize_X=False, **FAST).fit(X, y)
    np.testing.assert_allclose(raw.predict_priors([[0.5]]), np.sin(1.5) * y_scale * np.ones((4, 1)),
                               rtol=1e-5)
    # With normalize_X (the default) the prior, like the members, sees standardised inputs.
    reg = RandomizedPriorRegressor(prior=lambda x: torch.sin(3 * x), prior_scale=1.0, **FAST).fit(X, y)
    x_std = (0.5 - X.mean()) / X.std()
    np.testing.assert_allclose(reg.predict_priors([[0.5]]), np.sin(3 * x_std) * y_scale * np.ones((4, 1)),
                               rtol=1e-5)
    with pytest.raises(ValueError, match=r"to \(n_samples, 1\)"):
        RandomizedPriorRegressor(prior=lambda x: x.repeat(1, 3), **FAST).fit(X, y)


def test_custom_module_is_vectorised_or_falls_back_with_a_warning():
    X, y = regression_data(n=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = RandomizedPriorRegressor(TinyNet, **FAST).fit(X, y)
    assert type(reg.ensemble_.module_.trainable).__name__ == "VmapEnsemble"
    with pytest.warns(UserWarning, match="could not be vectorised"):
        slow = RandomizedPriorRegressor(NotVmappable, **FAST).fit(X, y)
    assert type(slow.ensemble_.module_.trainable).__name__ == "ModuleListEnsemble"
    assert slow.score(X, y) > 0.5
    with pytest.raises(ValueError, match="cannot be evaluated with torch.func.vmap"):
        RandomizedPriorRegressor(NotVmappable, vectorize=True, **FAST).fit(X, y)
    with pytest.raises(TypeError, match="module must be an nn.Module class"):
        RandomizedPriorRegressor(TinyNet(3, 1), **FAST).fit(X, y)


def test_independent_training_matches_vectorised_training():
    X, y = regression_data(n=50)
    kw = dict(FAST, dtype="float64", batch_size=None)
    together = RandomizedPriorRegressor(vectorize=True, **kw).fit(X, y)
    apart = RandomizedPriorRegressor(vectorize=False, n_jobs=2, **kw).fit(X, y)
    assert apart.n_epochs_ == together.n_epochs_ == kw["max_epochs"]
    np.testing.assert_allclose(apart.predict_members(X), together.predict_members(X), rtol=1e-6,
                               atol=1e-8)


def test_in_bag_counts_follow_the_bootstrap_and_the_weights():
    X, y = regression_data(n=30)
    weight = np.ones(30)
    weight[:5] = 0
    reg = RandomizedPriorRegressor(**FAST).fit(X, y, sample_weight=weight)
    counts = reg.in_bag_counts_
    assert counts.shape == (30, FAST["n_estimators"])
    np.testing.assert_array_equal(counts[:5], 0)  # zero weight: never drawn
    np.testing.assert_array_equal(counts.sum(axis=0), 25)  # one draw per row of positive weight
    assert (counts == 0).any(axis=0).all()  # every member has out-of-bag rows
    plain = RandomizedPriorRegressor(bootstrap=False, **FAST).fit(X, y, sample_weight=weight)
    np.testing.assert_array_equal(plain.in_bag_counts_[:5], 0)
    np.testing.assert_array_equal(plain.in_bag_counts_[5:], 1)


def test_predictions_follow_the_fitted_model_not_later_set_params():
    X, y = regression_data(n=40)
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    before = reg.predict(X), reg.predict_priors(X), reg.predict_members(X)
    reg.set_params(prior_scale=0.0, dtype="float64", n_estimators=7)
    after = reg.predict(X), reg.predict_priors(X), reg.predict_members(X)
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(reg.estimators_) == FAST["n_estimators"]


# ----------------------------------------------------------------------------- reproducibility
def test_random_state_reproducible_and_global_generators_untouched():
    X, y = regression_data()
    torch_state, numpy_state = torch.get_rng_state().clone(), np.random.get_state()  # noqa: NPY002
    a = RandomizedPriorRegressor(**FAST).fit(X, y).predict(X, return_std=True)
    b = RandomizedPriorRegressor(**FAST).fit(X, y).predict(X, return_std=True)
    c = RandomizedPriorRegressor(**dict(FAST, random_state=1)).fit(X, y).predict(X)
    RandomizedPriorRegressor(**dict(FAST, random_state=None, batch_size=16)).fit(X, y)
    RandomizedPriorRegressor(TinyNet, prior=TinyNet, **FAST).fit(X, y)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], c)
    assert torch.equal(torch_state, torch.get_rng_state())
    new_state = np.random.get_state()  # noqa: NPY002
    assert numpy_state[0] == new_state[0] and np.array_equal(numpy_state[1], new_state[1])
    assert numpy_state[2:] == new_state[2:]


def test_member_nets_predict_without_touching_the_global_generator():
    X, y = regression_data()
    net = RandomizedPriorRegressor(**FAST).fit(X, y).estimators_[0]
    state = torch.get_rng_state().clone()
    net.predict(X.astype(np.float32))  # a DataLoader draws a base seed unless given a generator
    net.partial_fit(X.astype(np.float32), y.astype(np.float32))
    assert torch.equal(state, torch.get_rng_state())


def test_tensors_that_require_grad_are_read_like_any_tensor():
    X, y = regression_data()
    tensors = [torch.tensor(a).requires_grad_(True) for a in (X, y, np.ones(len(y)))]
    reg = RandomizedPriorRegressor(**FAST).fit(*tensors[:2], sample_weight=tensors[2])
    expected = RandomizedPriorRegressor(**FAST).fit(X, y).predict(X, return_std=True)
    np.testing.assert_array_equal(reg.predict(tensors[0], return_std=True), expected)
    assert tensors[0].requires_grad and tensors[0].grad is None  # the caller's tensor as it was


def test_bfloat16_tensors_and_lists_of_tensors_are_read():
    # NumPy has no bfloat16: such tensors are widened to float32 (exactly), and a list of row
    # tensors that require grad is read row by row, as a list of arrays would be.
    X, y = regression_data()
    X16, y16 = (torch.tensor(a, dtype=torch.bfloat16) for a in (X, y))
    reg = RandomizedPriorRegressor(**FAST).fit(X16, y16, sample_weight=torch.ones(len(y),
                                                                              dtype=torch.bfloat16))
    expected = RandomizedPriorRegressor(**FAST).fit(X16.float().numpy(), y16.float().numpy())
    np.testing.assert_array_equal(reg.predict(X16), expected.predict(X16.float().numpy()))
    rows = [torch.tensor(row).requires_grad_(True) for row in X]
    np.testing.assert_array_equal(reg.predict(rows), reg.predict(X))


def test_a_namedtuple_of_row_tensors_is_read_as_rows():
    from collections import namedtuple

    X, y = regression_data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    Rows = namedtuple("Rows", ["a", "b", "c"])
    rows = Rows(*(torch.tensor(row).requires_grad_(True) for row in X[:3]))
    np.testing.assert_array_equal(reg.predict(rows), reg.predict(X[:3]))


@pytest.mark.parametrize("kind", ["sparse", "meta"])
def test_tensors_without_dense_values_are_a_clear_error(kind):
    X, y = regression_data()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y)
    bad = torch.tensor(X).to_sparse() if kind == "sparse" else torch.empty(X.shape, device="meta")
    with pytest.raises(ValueError, match="layout torch.sparse_coo" if kind == "sparse" else "'meta'"):
        reg.predict(bad)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "X, y, sample_weight, error, match",
    [
        ([[np.nan, 1.0], [1.0, 2.0]], [1.0, 2.0], None, ValueError, "NaN"),
        ([[np.inf, 1.0], [1.0, 2.0]], [1.0, 2.0], None, ValueError, "infinity"),
        ([[1.0, 1.0], [1.0, 2.0]], [np.nan, 2.0], None, ValueError, "NaN"),
        # None in y passes scikit-learn's check on object arrays: it used to train into NaN.
        ([[1.0, 1.0], [1.0, 2.0]], [None, 2.0], None, ValueError, "y contains NaN.*None"),
        ([[1.0, 1.0], [1.0, 2.0]], [None, 2.0], [0.0, 1.0], ValueError, "y contains NaN"),
        (np.empty((0, 2)), [], None, ValueError, "0 sample"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], None, ValueError, "Expected 2D array"),
        ([["a", "b"], ["c", "d"]], [1.0, 2.0], None, ValueError, "X must be numeric.*got text"),
        ([[1.0, 1.0], [1.0, 2.0]], [1.0, 2.0, 3.0], None, ValueError, "inconsistent numbers of samples"),
        ([[1.0, 1.0], [1.0, 2.0]], [1.0, 2.0], [1.0, -1.0], ValueError, "Negative values in data"),
        ([[1.0, 1.0], [1.0, 2.0]], [1.0, 2.0], [1.0, np.nan], ValueError, "NaN"),
        ([[1.0, 1.0], [1.0, 2.0]], [1.0, 2.0], [1.0, np.inf], ValueError, "infinity"),
        ([[1.0, 1.0], [1.0, 2.0]], [1.0, 2.0], [1.0], ValueError, r"sample_weight.shape == \(1,\)"),
    ],
)
def test_bad_fit_input_raises_clear_errors(X, y, sample_weight, error, match):
    with pytest.raises(error, match=match):
        RandomizedPriorRegressor(**FAST).fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_estimators": 0}, "'n_estimators' parameter"),
        ({"prior_scale": -1.0}, "'prior_scale' parameter"),
        ({"loss": "huber"}, "'loss' parameter"),
        ({"hidden_layer_sizes": (10, 0)}, "hidden_layer_sizes must be"),
        ({"lr": 0}, "'lr' parameter"),
    ],
)
def test_bad_parameters_raise_clear_errors(params, match):
    X, y = regression_data(n=20)
    with pytest.raises((ValueError, TypeError), match=match):
        RandomizedPriorRegressor(**{**FAST, **params}).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"device": "gpu"}, "device must name a torch device"),
        ({"calibrate_epistemic": True, "bootstrap": False}, "calibrate_epistemic=True needs bootstrap"),
        ({"module": lambda: nn.Linear(3, 1), "loss": "gaussian_nll"}, r"to \(n_samples, 2\) \(2 outputs, a mean and a variance"),
        ({"module": lambda: nn.Linear(3, 4)}, r"to \(n_samples, 1\).*returned shape \(2, 4\)"),
        ({"module": lambda: nn.Linear(5, 1)}, "member module failed"),
    ],
)
def test_bad_configurations_fail_early(params, match):
    X, y = regression_data(n=30)
    with pytest.raises(ValueError, match=match):
        RandomizedPriorRegressor(**{**FAST, **params}).fit(X, y)


def test_early_stopping_needs_out_of_bag_rows():
    X, y = regression_data(n=30)
    with pytest.raises(ValueError, match="no row is out of bag"):
        RandomizedPriorRegressor(early_stopping=True, **FAST).fit(X, y, sample_weight=np.full(30, 50.0))
    # Identical rows are drawn together: with three distinct rows a member can draw all of them.
    # Such a member has nothing to be judged on; it trains the whole budget, with a warning,
    # instead of "stopping" at its first epoch on a loss of 0.
    params = dict(FAST, n_estimators=3, max_epochs=8, batch_size=1, early_stopping=True,
                  n_iter_no_change=2, random_state=8)
    X3, y3 = np.repeat(X[:3], 4, axis=0), np.repeat(y[:3], 4)
    with pytest.warns(UserWarning, match=r"member\(s\) \[0, 2\] left no row out of bag"):
        reg = RandomizedPriorRegressor(**params).fit(X3, y3)
    full = RandomizedPriorRegressor(**dict(params, early_stopping=False)).fit(X3, y3)
    np.testing.assert_allclose(reg.predict_members(X3)[[0, 2]], full.predict_members(X3)[[0, 2]],
                               rtol=1e-5)


def test_predict_errors_and_no_mutation():
    X, y = regression_data()
    with pytest.raises(NotFittedError):
        RandomizedPriorRegressor().predict(X)
    sample_weight = np.linspace(0.5, 2.0, len(y))
    copies = X.copy(), y.copy(), sample_weight.copy()
    reg = RandomizedPriorRegressor(**FAST).fit(X, y, sample_weight=sample_weight)
    for original, copied in zip((X, y, sample_weight), copies, strict=True):
        np.testing.assert_array_equal(original, copied)
    with pytest.raises(ValueError, match="X has 2 features, but RandomizedPriorRegressor is expecting 3"):
        reg.predict(X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        reg.predict(np.full((2, 3), np.nan))
