"""The plotting helpers draw what they say (Agg backend, tiny fits)."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402

from sklearn_rpf import RandomizedPriorRegressor  # noqa: E402
from sklearn_rpf.plotting import plot_members, plot_priors, plot_uncertainty  # noqa: E402

N_MEMBERS = 4
GRID = np.linspace(-3, 3, 25)[:, None]


def _toy(n_targets=1):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-1, 0.2, 15), rng.normal(1, 0.2, 15)])[:, None]
    Y = np.column_stack([np.sin(2 * X[:, 0]) * (j + 1) + j for j in range(n_targets)])
    return X, (Y[:, 0] if n_targets == 1 else Y)


def _fit(n_targets=1, **params):
    X, y = _toy(n_targets)
    reg = RandomizedPriorRegressor(n_estimators=N_MEMBERS, max_epochs=5, random_state=0, **params)
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
    labels = _legend_labels(ax)
    assert any("total" in label for label in labels)
    assert any("epistemic" in label for label in labels)
    assert "ensemble mean" in labels and "training data" in labels

    mean, std = reg.predict(GRID, return_std=True)
    _, std_epi = reg.predict(GRID, return_std=True, epistemic=True)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mean)
    # The band reaches exactly mean ± 2 std: its outline holds both curves.
    for fill, s in zip(fills, (std, std_epi), strict=True):
        top = fill.get_paths()[0].vertices[:, 1]
        assert np.isclose(top.max(), (mean + 2 * s).max())
        assert np.isclose(top.min(), (mean - 2 * s).min())


@pytest.mark.parametrize("kind", ["total", "epistemic"])
def test_uncertainty_single_band(fitted, kind):
    reg, X, y = fitted
    fig, ax = plt.subplots()
    assert plot_uncertainty(reg, X, y, GRID[:, 0], ax=ax, n_std=1, kind=kind) is ax
    assert len(_fills(ax)) == 1
    labels = _legend_labels(ax)
    assert any(kind in label and "±1 std" in label for label in labels)
    other = "epistemic" if kind == "total" else "total"
    assert not any(other in label for label in labels)


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


def test_single_output_rejects_other_target(fitted):
    reg, _, _ = fitted
    with pytest.raises(ValueError, match="single target"):
        plot_members(reg, GRID, target=1)


def test_unfitted_regressor_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        plot_priors(RandomizedPriorRegressor(), GRID)


def test_importing_the_package_does_not_import_matplotlib():
    code = "import sys, sklearn_rpf, sklearn_rpf.plotting; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
