"""UncertaintyDisplay draws what the estimator predicts (Agg backend, tiny fits)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.base import BaseEstimator, RegressorMixin  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.validation import check_is_fitted, validate_data  # noqa: E402

from sklearn_rpf import RandomizedPriorRegressor  # noqa: E402
from sklearn_rpf.datasets import make_two_clusters  # noqa: E402
from sklearn_rpf.plotting import UncertaintyDisplay  # noqa: E402

TINY = dict(n_estimators=4, max_epochs=30, hidden_layer_sizes=(16,), random_state=0)
# Deliberately unsorted, so that the tests see the display sort along the feature.
GRID = np.random.default_rng(0).permutation(np.linspace(-3, 3, 31))[:, None]


class IntervalRegressor(RegressorMixin, BaseEstimator):
    """A linear mean with known, asymmetric intervals: ``[mean - c * width, mean + 2 c * width]``.

    ``method="gaussian"`` doubles the width, so the tests can tell that the method is forwarded.
    """

    def __init__(self, width=1.0):
        self.width = width

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        self.coef_ = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
        return self

    def predict(self, X, return_std=False):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        mean = np.c_[X, np.ones(len(X))] @ self.coef_
        return (mean, np.full(len(X), self.width)) if return_std else mean

    def predict_interval(self, X, confidence=0.95, method="conformal"):
        if method not in ("conformal", "gaussian"):
            raise ValueError(f"unknown method {method!r}")
        mean = self.predict(X)
        width = self.width * confidence * (2 if method == "gaussian" else 1)
        return mean - width, mean + 2 * width


@pytest.fixture(scope="module")
def data():
    return make_two_clusters(random_state=0)


@pytest.fixture(scope="module")
def rpf(data):
    return RandomizedPriorRegressor(**TINY).fit(*data)


@pytest.fixture(scope="module")
def gp(data):
    return GaussianProcessRegressor(alpha=0.01).fit(*data)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _legend_labels(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _band_outline(band, n):
    """Upper then lower edge of a band drawn along a feature: ``(x, upper, x_back, lower_back)``."""
    vertices = band.get_paths()[0].vertices
    return vertices[:n, 0], vertices[:n, 1], vertices[n:2 * n, 0], vertices[n:2 * n, 1]


def test_bands_along_a_feature_are_mean_plus_minus_n_std(rpf, data):
    X, y = data
    display = UncertaintyDisplay.from_estimator(rpf, X, y, grid=GRID, n_std=2)
    order = np.argsort(GRID[:, 0])
    x = GRID[order, 0]
    mean, std = rpf.predict(GRID[order], return_std=True)
    _, std_epistemic = rpf.predict(GRID[order], return_std=True, epistemic=True)
    assert set(display.bands_) == {"total", "epistemic"}
    for key, s in (("total", std), ("epistemic", std_epistemic)):
        x_up, upper, x_back, lower_back = _band_outline(display.bands_[key], len(x))
        np.testing.assert_allclose(x_up, x)
        np.testing.assert_allclose(upper, mean + 2 * s)
        np.testing.assert_allclose(x_back, x[::-1])
        np.testing.assert_allclose(lower_back, (mean - 2 * s)[::-1])
    np.testing.assert_allclose(display.line_.get_xdata(), x)
    np.testing.assert_allclose(display.line_.get_ydata(), mean)
    np.testing.assert_allclose(display.scatter_.get_offsets(), np.c_[X[:, 0], y])
    assert _legend_labels(display.ax_) == [
        "±2 std (total)", "±2 std (epistemic)", "RandomizedPriorRegressor mean", "observed"]
    assert display.ax_.get_xlabel() == "x" and display.ax_.get_ylabel() == "y"


def test_plot_redraws_with_another_n_std_on_given_axes(rpf, data):
    X, y = data
    display = UncertaintyDisplay.from_estimator(rpf, X, y, grid=GRID)
    fig, ax = plt.subplots()
    assert display.plot(ax=ax, n_std=1, name="RPF") is display
    assert display.ax_ is ax and display.figure_ is fig
    order = np.argsort(GRID[:, 0])
    mean, std = rpf.predict(GRID[order], return_std=True)
    _, upper, _, _ = _band_outline(display.bands_["total"], len(GRID))
    np.testing.assert_allclose(upper, mean + std)
    assert "RPF mean" in _legend_labels(ax) and "±1 std (total)" in _legend_labels(ax)


def test_without_grid_predicts_at_X_sorted_along_the_feature(rpf, data):
    X, y = data
    display = UncertaintyDisplay.from_estimator(rpf, X, y, bands=["total"])
    order = np.argsort(X[:, 0], kind="stable")
    np.testing.assert_allclose(display.line_.get_xdata(), X[order, 0])
    np.testing.assert_allclose(display.line_.get_ydata(), rpf.predict(X[order]))
    assert list(display.bands_) == ["total"]


def test_gaussian_process_has_no_epistemic_band(gp, data):
    X, y = data
    display = UncertaintyDisplay.from_estimator(gp, X, y, grid=GRID)
    assert list(display.bands_) == ["total"]
    mean, std = gp.predict(np.sort(GRID, axis=0), return_std=True)
    _, upper, _, _ = _band_outline(display.bands_["total"], len(GRID))
    np.testing.assert_allclose(upper, mean + 2 * std)
    assert not any("epistemic" in label for label in _legend_labels(display.ax_))
    for bands in (["epistemic"], ["total", "epistemic"]):
        with pytest.raises(ValueError, match="does not take epistemic=True"):
            UncertaintyDisplay.from_estimator(gp, X, y, bands=bands)


@pytest.mark.parametrize("final", ["rpf", "gp"])
def test_pipeline_ending_in_either(final, data, request):
    X, y = data
    final_params = request.getfixturevalue(final).get_params()
    final_step = (RandomizedPriorRegressor if final == "rpf" else GaussianProcessRegressor)(**final_params)
    pipe = make_pipeline(StandardScaler(), final_step).fit(X, y)
    display = UncertaintyDisplay.from_estimator(pipe, X, y, grid=GRID)
    expected = {"total", "epistemic"} if final == "rpf" else {"total"}
    assert set(display.bands_) == expected
    np.testing.assert_allclose(display.line_.get_ydata(), pipe.predict(np.sort(GRID, axis=0)))


def test_against_the_prediction_one_bar_per_sample(rpf, data):
    X, y = data
    display = UncertaintyDisplay.from_estimator(rpf, X, y, against="predicted", n_std=1.5)
    mean, std = rpf.predict(X, return_std=True)
    order = np.argsort(mean, kind="stable")
    paths = display.bands_["total"].get_paths()
    assert len(paths) == len(X)
    for path, i in zip(paths, order, strict=True):
        np.testing.assert_allclose(path.vertices[:2], [[mean[i], mean[i] - 1.5 * std[i]],
                                                       [mean[i], mean[i] + 1.5 * std[i]]])
    np.testing.assert_allclose(display.line_.get_xdata(), mean[order])
    np.testing.assert_allclose(display.line_.get_ydata(), mean[order])  # the diagonal y = y_mean
    np.testing.assert_allclose(display.scatter_.get_offsets(), np.c_[mean, y])
    assert display.ax_.get_xlabel() == "predicted value"


def test_interval_from_predict_interval(data):
    X, y = data
    reg = IntervalRegressor(width=0.5).fit(X, y)
    display = UncertaintyDisplay.from_estimator(reg, X, y, grid=GRID, interval="conformal",
                                                confidence=0.9, bands=["total"])
    order = np.argsort(GRID[:, 0])
    lower, upper = reg.predict_interval(GRID[order], confidence=0.9)
    _, band_upper, _, band_lower = _band_outline(display.bands_["interval"], len(GRID))
    np.testing.assert_allclose(band_upper, upper)
    np.testing.assert_allclose(band_lower, lower[::-1])
    assert "90% interval (conformal)" in _legend_labels(display.ax_)

    gaussian = UncertaintyDisplay.from_estimator(reg, X, grid=GRID, interval="gaussian",
                                                 confidence=0.9)
    _, band_upper, _, _ = _band_outline(gaussian.bands_["interval"], len(GRID))
    np.testing.assert_allclose(band_upper, reg.predict_interval(GRID[order], 0.9, "gaussian")[1])


def test_interval_through_a_pipeline(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), IntervalRegressor()).fit(X, y)
    display = UncertaintyDisplay.from_estimator(pipe, X, y, against="predicted",
                                                interval="conformal")
    mean = pipe.predict(X)
    lower, upper = pipe[-1].predict_interval(pipe[0].transform(X), confidence=0.95)
    order = np.argsort(mean, kind="stable")
    vertices = np.array([path.vertices[:2] for path in display.bands_["interval"].get_paths()])
    np.testing.assert_allclose(vertices[:, 0, 1], lower[order])
    np.testing.assert_allclose(vertices[:, 1, 1], upper[order])


def test_interval_without_predict_interval_is_a_clear_error(gp, data):
    X, y = data
    with pytest.raises(ValueError, match="GaussianProcessRegressor has none"):
        UncertaintyDisplay.from_estimator(gp, X, y, interval="conformal")


def test_infinite_interval_ends_run_off_the_axes_with_a_warning():
    # Too few calibration rows for 0.999: predict_interval's documented infinite bound.
    X, y = make_two_clusters(40, random_state=0)
    reg = RandomizedPriorRegressor(**TINY).fit(X, y)
    with pytest.warns(UserWarning) as record:
        display = UncertaintyDisplay.from_estimator(reg, X, y, grid=GRID, interval="conformal",
                                                    confidence=0.999)
    messages = [str(w.message) for w in record]
    assert any("The 0.999 conformal interval is infinite" in m for m in messages)  # the model's
    assert any("The interval is infinite at 31 of 31 point" in m for m in messages)  # the plot's
    bottom, top = display.ax_.get_ylim()
    mean, std = reg.predict(GRID, return_std=True)
    assert np.isfinite([bottom, top]).all()
    assert bottom < min(y.min(), (mean - 2 * std).min()) and top > max(y.max(), (mean + 2 * std).max())
    _, upper, _, lower = _band_outline(display.bands_["interval"], len(GRID))
    assert np.isfinite(upper).all() and (upper > top).all() and (lower < bottom).all()
    # On shared axes the limits stay automatic: a curve drawn before, and a display drawn after.
    fig, ax = plt.subplots()
    ax.plot([-3, 3], [50, 50])
    with pytest.warns(UserWarning):
        UncertaintyDisplay.from_estimator(reg, X, y, grid=GRID, interval="conformal",
                                          confidence=0.999, ax=ax)
    UncertaintyDisplay.from_predictions(GRID[:, 0], mean + 100, std, ax=ax)
    bottom, top = ax.get_ylim()
    assert bottom < y.min() and top > (mean + 100).max()
    with pytest.raises(ValueError, match="lower bound contains NaN"):
        UncertaintyDisplay.from_predictions(GRID[:, 0], mean, std, interval=(mean * np.nan, mean))


@pytest.mark.parametrize("fitted_2d", [False, True])
def test_one_target_as_a_column_or_a_vector(data, fitted_2d):
    X, y = data
    reg = RandomizedPriorRegressor(**TINY).fit(X, y[:, None] if fitted_2d else y)
    for observed in (y, y[:, None]):
        display = UncertaintyDisplay.from_estimator(reg, X, observed, grid=GRID)
        np.testing.assert_array_equal(display.scatter_.get_offsets()[:, 1], y)
    with pytest.raises(ValueError, match="estimator predicts 1 target"):
        UncertaintyDisplay.from_estimator(reg, X, np.c_[y, y], grid=GRID)


def test_multi_output_target():
    X, y = make_two_clusters(random_state=0)
    Y = np.c_[y, 2 * y + 1]
    reg = RandomizedPriorRegressor(**TINY).fit(X, Y)
    display = UncertaintyDisplay.from_estimator(reg, X, Y, grid=GRID, target=1)
    mean, std = reg.predict(np.sort(GRID, axis=0), return_std=True)
    np.testing.assert_allclose(display.line_.get_ydata(), mean[:, 1])
    _, upper, _, _ = _band_outline(display.bands_["total"], len(GRID))
    np.testing.assert_allclose(upper, mean[:, 1] + 2 * std[:, 1])
    np.testing.assert_allclose(display.scatter_.get_offsets()[:, 1], Y[:, 1])
    assert display.ax_.get_ylabel() == "y[1]"
    with pytest.raises(ValueError, match=r"target must be an integer in \[0, 1\]"):
        UncertaintyDisplay.from_estimator(reg, X, Y, target=2)
    with pytest.raises(ValueError, match=r"predicts 2 target\(s\) per sample"):
        UncertaintyDisplay.from_estimator(reg, X, y)


def test_single_output_rejects_another_target(rpf, data):
    with pytest.raises(ValueError, match="predicts a single target"):
        UncertaintyDisplay.from_estimator(rpf, *data, target=1)


def test_feature_by_name_or_index():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=30), "b": rng.uniform(-2, 2, 30)})
    y = np.sin(X["b"].to_numpy()) + 0.1 * X["a"].to_numpy()
    gp = GaussianProcessRegressor(alpha=0.01).fit(X, y)
    display = UncertaintyDisplay.from_estimator(gp, X, y, feature="b")
    np.testing.assert_allclose(display.line_.get_xdata(), np.sort(X["b"].to_numpy()))
    assert display.ax_.get_xlabel() == "b"
    with pytest.raises(ValueError, match="is not one of the feature names"):
        UncertaintyDisplay.from_estimator(gp, X, y, feature="c")
    numpy_gp = GaussianProcessRegressor(alpha=0.01).fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="X has no column names"):
        UncertaintyDisplay.from_estimator(numpy_gp, X.to_numpy(), y, feature="b")
    with pytest.raises(ValueError, match=r"out of range: X has 2 feature\(s\)"):
        UncertaintyDisplay.from_estimator(numpy_gp, X.to_numpy(), y, feature=2)
    display = UncertaintyDisplay.from_estimator(numpy_gp, X.to_numpy(), y, feature=1)
    assert display.ax_.get_xlabel() == "x[1]"


def test_from_predictions(rpf):
    x = np.array([2.0, 0.0, 1.0])
    mean, std, epi = np.array([1.0, 0.0, 0.5]), np.array([0.2, 0.1, 0.3]), np.array([0.1, 0.05, 0.1])
    display = UncertaintyDisplay.from_predictions(
        x, mean, std, y_std_epistemic=epi, interval=(mean - 1, mean + 1), y_true=[1.1, -0.1, 0.4],
        interval_label="conformal", n_std=3)
    _, upper, _, lower_back = _band_outline(display.bands_["total"], 3)
    np.testing.assert_allclose(upper, [0.3, 1.4, 1.6])
    np.testing.assert_allclose(lower_back, [0.4, -0.4, -0.3])
    _, upper, _, _ = _band_outline(display.bands_["epistemic"], 3)
    np.testing.assert_allclose(upper, [0.15, 0.8, 1.3])
    np.testing.assert_allclose(display.scatter_.get_offsets(), [[2, 1.1], [0, -0.1], [1, 0.4]])
    assert _legend_labels(display.ax_) == [
        "±3 std (total)", "conformal", "±3 std (epistemic)", "mean", "observed"]
    # Only what is given is drawn.
    assert list(UncertaintyDisplay.from_predictions(None, mean, epi).bands_) == ["total"]
    assert UncertaintyDisplay.from_predictions(x, mean).bands_ == {}


def test_style_keywords_override_the_defaults(rpf, data):
    display = UncertaintyDisplay.from_estimator(
        rpf, *data, band_kwargs={"total": {"fc": "red"}}, line_kwargs={"color": "k", "lw": 3},
        scatter_kwargs={"label": "training data"})
    assert matplotlib.colors.same_color(display.bands_["total"].get_facecolor()[0, :3], "red")
    assert display.line_.get_linewidth() == 3
    assert "training data" in _legend_labels(display.ax_)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(against="residual"), "against must be one of"),
        (dict(bands="all"), 'bands must be "auto"'),
        (dict(bands=None), 'bands must be "auto"'),
        (dict(bands=["interval"]), "interval is asked with interval="),
        (dict(against="predicted", grid=GRID), "grid only applies along a feature"),
        (dict(interval="conformal", confidence=1.0), r"confidence must be a float in the open"),
        (dict(n_std=0), "n_std must be a positive finite number"),
        (dict(n_std=np.inf), "n_std must be a positive finite number"),
        (dict(band_kwargs={"noise": {}}), "band_kwargs keys must be among"),
        (dict(band_kwargs={"total": 3}), r"band_kwargs\['total'\] must be a dict"),
        (dict(feature=0.5), "feature must be an integer index or a feature name"),
        (dict(against="predicted", feature=3), "feature only applies along a feature"),
        (dict(confidence=7), r"confidence must be a float in the open"),  # even with no interval
    ],
)
def test_bad_arguments(rpf, data, kwargs, match):
    X, y = data
    with pytest.raises((ValueError, TypeError), match=match):
        UncertaintyDisplay.from_estimator(rpf, X, y, **kwargs)


def test_bad_predictions():
    x, mean = np.arange(3.0), np.zeros(3)
    with pytest.raises(ValueError, match="y_std must be non-negative"):
        UncertaintyDisplay.from_predictions(x, mean, [0.1, -0.1, 0.1])
    with pytest.raises(ValueError, match="lower bound exceeds its upper bound"):
        UncertaintyDisplay.from_predictions(x, mean, interval=(mean + 1, mean))
    with pytest.raises(ValueError, match="y_std has 2 values, expected 3"):
        UncertaintyDisplay.from_predictions(x, mean, [0.1, 0.1])
    with pytest.raises(ValueError, match="pass one target's column"):
        UncertaintyDisplay.from_predictions(x, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        UncertaintyDisplay.from_predictions(x, mean, [0.1, np.nan, 0.1])
    assert plt.get_fignums() == []  # no empty figure is left behind by a failed call


def test_regressor_without_return_std(data):
    X, y = data
    with pytest.raises(TypeError, match=r"does not accept return_std=True"):
        UncertaintyDisplay.from_estimator(LinearRegression().fit(X, y), X, y)


def test_tensors_that_require_grad_are_read_like_arrays():
    import torch

    rng = np.random.default_rng(0)
    x, mean, std = np.linspace(0, 1, 20), rng.normal(size=20), np.full(20, 0.5)
    grad = [torch.tensor(a).requires_grad_(True) for a in (x, mean, std)]
    display = UncertaintyDisplay.from_predictions(
        *grad, y_true=grad[1], x_true=grad[0], interval=(grad[1] - 1, grad[1] + 1))
    np.testing.assert_array_equal(display.line_.get_ydata(), mean)
    plt.close("all")


def test_from_predictions_refuses_numeric_text():
    mean, std = np.array([1.0, 0.0, 0.5]), np.array([0.2, 0.1, 0.3])
    with pytest.raises(ValueError, match="must be numeric; got text"):
        UncertaintyDisplay.from_predictions([2.0, 0.0, 1.0], mean, std,
                                            y_true=pd.Series(["1.1", "-0.1", "0.4"]))
    with pytest.raises(ValueError, match="must be numeric; got text"):
        UncertaintyDisplay.from_predictions([2.0, 0.0, 1.0], pd.Series(["1", "0", "0.5"]), std)


class CountingRegressor(IntervalRegressor):
    """Counts its predict calls: a bad y must fail before the (maybe costly) predictions."""

    calls = 0

    def predict(self, X, return_std=False):
        type(self).calls += 1
        return super().predict(X, return_std=return_std)


def test_bad_y_fails_before_anything_is_predicted(data):
    X, y = data
    reg = CountingRegressor().fit(X, y)
    CountingRegressor.calls = 0
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        UncertaintyDisplay.from_estimator(reg, X, y[:5])
    with pytest.raises(ValueError, match="must be numeric; got text"):
        UncertaintyDisplay.from_estimator(reg, X, y.astype(str))
    assert CountingRegressor.calls == 0


def test_bands_as_an_array_for_a_regressor_without_the_epistemic_one(gp, data):
    X, y = data
    with pytest.raises(ValueError, match="epistemic band was asked for"):
        UncertaintyDisplay.from_estimator(gp, X, y, bands=np.array(["total", "epistemic"]))
    display = UncertaintyDisplay.from_estimator(gp, X, y, bands=np.array(["total"]))
    assert list(display.bands_) == ["total"]


def test_a_date_or_text_feature_is_refused_by_name():
    # The model reads only the numeric column; the display is asked to draw along another.
    from sklearn.compose import make_column_transformer

    frame = pd.DataFrame({"num": np.linspace(0, 1, 12),
                          "when": pd.date_range("2020-01-01", periods=12),
                          "color": ["blue", "red"] * 6})
    model = make_pipeline(make_column_transformer(("passthrough", ["num"])),
                          GaussianProcessRegressor(alpha=0.01)).fit(frame, frame["num"])
    with pytest.raises(ValueError, match=r"feature 'when' must be numeric.*got dates"):
        UncertaintyDisplay.from_estimator(model, frame, frame["num"], feature="when")
    with pytest.raises(ValueError, match=r"feature 'color' must be numeric.*got text"):
        UncertaintyDisplay.from_estimator(model, frame, frame["num"], feature=2)
    display = UncertaintyDisplay.from_estimator(model, frame, frame["num"], feature="num")
    np.testing.assert_allclose(display.line_.get_xdata(), frame["num"])


def test_y_true_is_checked_before_an_infinite_interval_is_clipped():
    import torch

    x = np.linspace(0, 1, 5)
    mean = 2 * x
    grad = torch.tensor(mean, requires_grad=True)
    with pytest.warns(UserWarning, match="interval is infinite"):
        display = UncertaintyDisplay.from_predictions(x, mean, interval=(mean - np.inf, mean + 1),
                                                      y_true=grad)
    np.testing.assert_array_equal(display.scatter_.get_offsets()[:, 1], mean)
    with pytest.raises(ValueError, match="must be numeric; got text"):
        UncertaintyDisplay.from_predictions(x, mean, interval=(mean - np.inf, mean + 1),
                                            y_true=["a"] * 5)
    with pytest.raises(ValueError, match="pass y_true with it"):
        UncertaintyDisplay.from_predictions(x, mean, np.ones(5), x_true=[0.0, 1.0])
