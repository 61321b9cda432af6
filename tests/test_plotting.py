"""The plot_* helpers draw what they say; every plotting docstring example runs (Agg backend)."""

import doctest
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402

from sklearn_rpf import RandomizedPriorRegressor  # noqa: E402
from sklearn_rpf.datasets import make_two_clusters  # noqa: E402
from sklearn_rpf.plotting import (  # noqa: E402
    _common,
    _coverage,
    _functions,
    _uncertainty,
    plot_members,
    plot_priors,
    plot_uncertainty,
)

N_MEMBERS = 4
GRID = np.linspace(-3, 3, 25)[:, None]


def _toy(n_targets=1):
    X, y = make_two_clusters(30, random_state=0)
    Y = np.column_stack([y * (j + 1) + j for j in range(n_targets)])
    return X, (Y[:, 0] if n_targets == 1 else Y)


def _fit(n_targets=1, **params):
    X, y = _toy(n_targets)
    reg = RandomizedPriorRegressor(n_estimators=N_MEMBERS, max_epochs=5, hidden_layer_sizes=(16,),
                                   random_state=0, **params)
    return reg.fit(X, y), X, y


@pytest.fixture(scope="module")
def fitted():
    return _fit()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend_labels(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _fills(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_uncertainty_draws_both_bands_mean_and_data(fitted):
    reg, X, y = fitted
    ax = plot_uncertainty(reg, X, y, GRID, n_std=2, kind="both")
    fills = _fills(ax)
    assert len(fills) == 2
    assert len(ax.lines) == 1
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatters) == 1 and len(scatters[0].get_offsets()) == len(X)
    assert _legend_labels(ax) == ["±2 std (total)", "±2 std (epistemic)", "ensemble mean",
                                  "training data"]

    mean, std = reg.predict(GRID, return_std=True)
    _, std_epi = reg.predict(GRID, return_std=True, epistemic=True)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mean)
    # The band's outline is the upper curve, then the lower one backwards.
    n = len(GRID)
    for fill, s in zip(fills, (std, std_epi), strict=True):
        vertices = fill.get_paths()[0].vertices
        np.testing.assert_allclose(vertices[:n, 1], mean + 2 * s)
        np.testing.assert_allclose(vertices[n:2 * n, 1], (mean - 2 * s)[::-1])


@pytest.mark.parametrize("kind", ["total", "epistemic"])
def test_uncertainty_single_band(fitted, kind):
    reg, X, y = fitted
    fig, ax = plt.subplots()
    assert plot_uncertainty(reg, X, y, GRID[:, 0], ax=ax, n_std=1, kind=kind) is ax
    assert len(_fills(ax)) == 1
    assert f"±1 std ({kind})" in _legend_labels(ax)


def test_uncertainty_of_a_gaussian_process():
    X, y = _toy()
    gp = GaussianProcessRegressor(alpha=0.01).fit(X, y)
    ax = plot_uncertainty(gp, X, y, GRID)  # "auto": the total band only, no TypeError
    assert [label for label in _legend_labels(ax) if "std" in label] == ["±2 std (total)"]
    with pytest.raises(ValueError, match="does not take epistemic=True"):
        plot_uncertainty(gp, X, y, GRID, kind="both")


def test_uncertainty_rejects_unknown_kind(fitted):
    reg, X, y = fitted
    with pytest.raises(ValueError, match="kind must be one of"):
        plot_uncertainty(reg, X, y, GRID, kind="aleatoric")


def test_members_one_line_per_member(fitted):
    reg, X, y = fitted
    ax = plot_members(reg, GRID, X_train=X, y_train=y)
    members = reg.predict_members(GRID)
    assert len(ax.lines) == N_MEMBERS
    for line, member in zip(ax.lines, members, strict=True):
        np.testing.assert_allclose(line.get_ydata(), member)
    # One legend entry for all the members, one for the data.
    assert _legend_labels(ax) == [f"members ({N_MEMBERS})", "training data"]


def test_priors_match_each_member_frozen_prior(fitted):
    reg, X, y = fitted
    ax = plot_priors(reg, GRID)
    assert len(ax.lines) == N_MEMBERS
    curves = []
    for line, member in zip(ax.lines, reg.estimators_, strict=True):
        module = member.module_
        # The prior sees the inputs standardised, as the members do (normalize_X=True).
        x = (torch.as_tensor(GRID, dtype=torch.float32) - module.x_offset) / module.x_scale
        with torch.no_grad():
            expected = (module.prior(x)[:, 0] * module.prior_scale * module.y_scale).numpy()
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-5, atol=1e-6)
        curves.append(expected)
    assert np.ptp(np.array(curves), axis=0).max() > 0  # the priors differ between members
    assert _legend_labels(ax) == [f"member priors ({N_MEMBERS})"]


def test_shared_fixed_prior_is_drawn_once():
    reg, X, y = _fit(prior=lambda t: torch.sin(3 * t), prior_scale=0.5)
    ax = plot_priors(reg, GRID)
    assert len(ax.lines) == 1
    # normalize_y: the prior is in units of the target's standard deviation.
    x_std = (GRID[:, 0] - X.mean()) / X.std()  # normalize_X: the prior sees standardised x
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 0.5 * np.std(y) * np.sin(3 * x_std),
                               rtol=1e-5, atol=1e-6)
    assert _legend_labels(ax) == ["shared prior"]


def test_no_prior_draws_zero():
    reg, _, _ = _fit(prior_scale=0.0)
    ax = plot_priors(reg, GRID)
    assert len(ax.lines) == 1
    assert np.all(ax.lines[0].get_ydata() == 0)


def test_multi_output_picks_the_target():
    reg, X, Y = _fit(n_targets=2)
    ax = plot_members(reg, GRID, target=1)
    members = reg.predict_members(GRID)
    for line, member in zip(ax.lines, members, strict=True):
        np.testing.assert_allclose(line.get_ydata(), member[:, 1])
    ax = plot_uncertainty(reg, X, Y, GRID, target=1)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), reg.predict(GRID)[:, 1])
    np.testing.assert_allclose(ax.collections[-1].get_offsets()[:, 1], Y[:, 1])
    assert len(plot_priors(reg, GRID, target=1).lines) == N_MEMBERS


def test_members_check_the_training_targets():
    reg, X, Y = _fit(n_targets=2)
    with pytest.raises(ValueError, match=r"y_train has shape \(\d+,\), but the estimator predicts 2"):
        plot_members(reg, GRID, X_train=X, y_train=Y[:, 0], target=1)
    with pytest.raises(ValueError, match="y_train has shape .* predicts 2"):
        plot_members(reg, GRID, X_train=X, y_train=np.c_[Y, Y[:, 0]])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        plot_members(reg, GRID, X_train=X, y_train=Y[:5])
    ax = plot_members(reg, GRID, X_train=X, y_train=Y, target=1)
    np.testing.assert_allclose(ax.collections[-1].get_offsets()[:, 1], Y[:, 1])


def test_single_output_rejects_other_target(fitted):
    reg, _, _ = fitted
    with pytest.raises(ValueError, match="predicts a single target"):
        plot_members(reg, GRID, target=1)


def test_unfitted_regressor_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        plot_priors(RandomizedPriorRegressor(), GRID)


def test_importing_the_package_does_not_import_matplotlib():
    code = "import sys, sklearn_rpf, sklearn_rpf.plotting; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_members_sorted_along_the_feature(fitted):
    reg, _, _ = fitted
    shuffled = GRID[np.random.default_rng(0).permutation(len(GRID))]
    ax = plot_members(reg, shuffled)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), GRID[:, 0])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), reg.predict_members(GRID)[0])


@pytest.mark.parametrize("module", [_common, _coverage, _functions, _uncertainty])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted >= (0 if module is _common else 5)


def test_member_plots_of_a_regressor_without_members_say_so():
    X, y = make_two_clusters(random_state=0)
    gp = GaussianProcessRegressor(alpha=0.01).fit(X, y)
    with pytest.raises(TypeError, match="plot_members draws one curve per member.*predict_members"):
        plot_members(gp, np.linspace(-3, 3, 20))
    with pytest.raises(TypeError, match="plot_priors draws one curve per member.*predict_priors"):
        plot_priors(gp, np.linspace(-3, 3, 20))
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), RandomizedPriorRegressor(
        n_estimators=2, max_epochs=2, random_state=0)).fit(X, y)
    with pytest.raises(TypeError, match=r"a Pipeline does not forward: pass its final step"):
        plot_members(pipeline, np.linspace(-3, 3, 20))
